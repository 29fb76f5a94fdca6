//! A GGUF header read from the Hub without the weights: HTTP range requests on the file at
//! the listed commit, starting at a few KiB and growing fourfold until the tensor table is
//! complete (the file's size comes from the repo listing). Only the new bytes are asked for
//! each time, so a header costs at most about four times its size.

use anyhow::{bail, Result};

use crate::hub::{Hub, Listing, RepoFile};
use frontier_gguf::{parse, GgufError, GgufHeader};

const FIRST_READ: u64 = 8 << 10;
const MAX_READ: u64 = 256 << 20;

/// The header of a listed GGUF file and the number of bytes fetched to read it.
pub fn read_header(hub: &Hub, listing: &Listing, file: &RepoFile) -> Result<(GgufHeader, u64)> {
    let repo = &listing.repo;
    let mut want = FIRST_READ.min(file.size);
    let mut fetched = 0u64;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        if (bytes.len() as u64) < want {
            let more = hub.read_range(listing, &file.path, bytes.len() as u64, want)?;
            fetched += more.len() as u64;
            bytes.extend_from_slice(&more);
        }
        match parse(bytes.as_slice(), file.size, false) {
            Ok(h) => return Ok((h, fetched)),
            Err(GgufError::NeedMore { .. }) if want < file.size.min(MAX_READ) => {
                want = (want * 4).min(file.size).min(MAX_READ);
            }
            Err(GgufError::NeedMore { have }) => {
                bail!(
                    "{repo}/{}: the header is larger than {have} bytes",
                    file.path
                )
            }
            Err(e) => bail!("{repo}/{}: {e}", file.path),
        }
    }
}
