//! SHA-256 of model files, streamed, and remembered by path + size + mtime so a large file
//! is hashed once, not on every run.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Streams a reader through SHA-256, calling `progress` with the bytes done so far.
pub fn sha256_reader(mut r: impl Read, mut progress: impl FnMut(u64)) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The cache of file hashes: one line per file, `sha256 TAB size TAB mtime_ns TAB path`.
/// Appends only, so concurrent runs can share it; the last matching line wins.
#[derive(Debug, Clone)]
pub struct HashCache {
    path: PathBuf,
}

impl HashCache {
    pub fn new(path: PathBuf) -> HashCache {
        HashCache { path }
    }

    /// `$FRONTIER_CACHE_DIR/sha256.tsv`, default `~/.cache/frontier/sha256.tsv`.
    pub fn default_location() -> HashCache {
        HashCache::new(crate::paths::cache_dir().join("sha256.tsv"))
    }

    /// The file's sha256, from the cache when path, size and mtime match, else computed.
    pub fn sha256_file(&self, path: &Path, progress: impl FnMut(u64)) -> Result<String> {
        let canonical = fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
        let meta = fs::metadata(&canonical).with_context(|| format!("{}", path.display()))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let key = format!("{}\t{}\t{}", meta.len(), mtime_ns, canonical.display());
        if let Some(hit) = self.lookup(&key) {
            return Ok(hit);
        }
        let file = File::open(&canonical).with_context(|| format!("{}", path.display()))?;
        let digest =
            sha256_reader(file, progress).with_context(|| format!("hashing {}", path.display()))?;
        // A cache that cannot be written only costs time on the next run.
        let _ = self.store(&key, &digest);
        Ok(digest)
    }

    fn lookup(&self, key: &str) -> Option<String> {
        let file = File::open(&self.path).ok()?;
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let (digest, rest) = line.split_once('\t')?;
                (rest == key && digest.len() == 64).then(|| digest.to_string())
            })
            .last()
    }

    fn store(&self, key: &str, digest: &str) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{digest}\t{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cache_hits_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HashCache::new(dir.path().join("cache.tsv"));
        let file = dir.path().join("m.gguf");
        fs::write(&file, b"abc").unwrap();
        let mut calls = 0;
        let first = cache.sha256_file(&file, |_| calls += 1).unwrap();
        assert_eq!(first, sha256_hex(b"abc"));
        assert_eq!(calls, 1);
        let mut calls2 = 0;
        assert_eq!(cache.sha256_file(&file, |_| calls2 += 1).unwrap(), first);
        assert_eq!(calls2, 0, "second call must come from the cache");
        fs::write(&file, b"abcd").unwrap();
        assert_eq!(
            cache.sha256_file(&file, |_| {}).unwrap(),
            sha256_hex(b"abcd")
        );
    }
}
