//! Where frontier keeps its own files: the cache directory.

use std::path::PathBuf;

/// `$FRONTIER_CACHE_DIR`, else `$XDG_CACHE_HOME/frontier`, else `~/.cache/frontier`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FRONTIER_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("frontier");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("frontier"),
        None => std::env::temp_dir().join("frontier-cache"),
    }
}
