//! Content checks: the sha256 of a file on disk and the error for a file that does not match
//! the hash the Hub listed.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};

/// Lowercase hex sha256 of a file's contents.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A downloaded file whose content is not what the Hub listed (a plain failure, exit 1).
pub(crate) fn mismatch(repo: &str, path: &str, expected: &str, actual: &str) -> anyhow::Error {
    anyhow!(
        "{repo}: {path} failed its sha256 check (expected {expected}, got {actual}); the download was deleted, try again"
    )
}
