//! A GGUF header read from the Hub without the weights: HTTP range requests on the file's
//! resolve URL, starting small and doubling until the tensor table is complete (the file's
//! size comes from the repo listing).

use anyhow::{bail, Result};

use crate::hub::{Hub, RepoFile, RepoKind};
use frontier_gguf::{parse, GgufError, GgufHeader};

const FIRST_READ: u64 = 1 << 20;
const MAX_READ: u64 = 256 << 20;

/// The header of a remote GGUF file and the number of bytes fetched to read it.
pub fn read_header(
    hub: &Hub,
    repo: &str,
    revision: &str,
    file: &RepoFile,
) -> Result<(GgufHeader, u64)> {
    let mut want = FIRST_READ.min(file.size);
    let mut fetched = 0u64;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        if (bytes.len() as u64) < want {
            let more = hub.read_range(
                RepoKind::Model,
                repo,
                revision,
                &file.path,
                bytes.len() as u64,
                want,
            )?;
            fetched += more.len() as u64;
            bytes.extend_from_slice(&more);
        }
        match parse(bytes.as_slice(), file.size, false) {
            Ok(h) => return Ok((h, fetched)),
            Err(GgufError::NeedMore { .. }) if want < file.size.min(MAX_READ) => {
                want = (want * 2).min(file.size).min(MAX_READ);
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
