//! The Hugging Face cache layout, as `huggingface_hub` writes it, so `hf`/`huggingface-cli`
//! and frontier share files: `<models|datasets>--<org>--<name>/` holding `blobs/<etag>`,
//! `snapshots/<commit>/<path>` relative symlinks to them, `refs/<revision>` (a commit id),
//! and locks in `.locks/<repo folder>/<etag>.lock`. Partial downloads are
//! `blobs/<etag>.incomplete` (see [`RepoCache::incomplete_path`] for who resumes what).

use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::repo::{folder_name, is_commit, is_sha256, RepoFile, RepoKind};

/// One repo's folder inside the cache.
pub(crate) struct RepoCache {
    cache_dir: PathBuf,
    folder: String,
}

impl RepoCache {
    pub(crate) fn new(cache_dir: &Path, kind: RepoKind, repo: &str) -> RepoCache {
        RepoCache {
            cache_dir: cache_dir.to_path_buf(),
            folder: folder_name(kind, repo),
        }
    }

    fn root(&self) -> PathBuf {
        self.cache_dir.join(&self.folder)
    }

    pub(crate) fn blob_path(&self, etag: &str) -> PathBuf {
        self.root().join("blobs").join(etag)
    }

    /// Where frontier keeps a partial download, and resumes it from (under the blob's
    /// lock). `huggingface_hub` up to 1.17 used this same name and resumed it too, so either
    /// tool continued the other's. Since 1.18 it writes a process-unique
    /// `<etag>.<8 hex>.incomplete`, never resumes one across runs (it deletes its own when
    /// the download ends, however it ends), ignores ours (and `hf cache` lists ours as
    /// orphaned); frontier ignores theirs. Finished blobs are shared both ways.
    pub(crate) fn incomplete_path(&self, etag: &str) -> PathBuf {
        self.root().join("blobs").join(format!("{etag}.incomplete"))
    }

    pub(crate) fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root().join("snapshots").join(commit)
    }

    pub(crate) fn pointer_path(&self, commit: &str, path: &str) -> PathBuf {
        let mut out = self.snapshot_dir(commit);
        out.extend(path.split('/'));
        out
    }

    fn ref_path(&self, revision: &str) -> PathBuf {
        let mut out = self.root().join("refs");
        out.extend(revision.split('/'));
        out
    }

    /// The commit a revision points to: `refs/<revision>`, or the revision itself when it is a
    /// commit id.
    pub(crate) fn commit_for(&self, revision: &str) -> Option<String> {
        match fs::read_to_string(self.ref_path(revision)) {
            Ok(text) if is_commit(text.trim()) => Some(text.trim().to_string()),
            _ => is_commit(revision).then(|| revision.to_string()),
        }
    }

    /// The snapshot path of a cached file, if it is there (and its blob too).
    pub(crate) fn lookup(&self, revision: &str, path: &str) -> Option<PathBuf> {
        let commit = self.commit_for(revision)?;
        let pointer = self.pointer_path(&commit, path);
        // `exists` follows the symlink: a pointer whose blob is gone does not count.
        pointer.exists().then_some(pointer)
    }

    /// Records `refs/<revision>` → commit (nothing to record when the revision is the commit).
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(revision);
        if fs::read_to_string(&path).is_ok_and(|old| old.trim() == commit) {
            return Ok(());
        }
        create_parent(&path)?;
        fs::write(&path, commit).with_context(|| format!("writing {}", path.display()))
    }

    /// Points `snapshots/<commit>/<path>` at `blobs/<etag>` with a relative symlink (a copy
    /// where symlinks are not available), replacing whatever was there.
    pub(crate) fn link(&self, commit: &str, path: &str, etag: &str) -> Result<PathBuf> {
        let blob = self.blob_path(etag);
        let pointer = self.pointer_path(commit, path);
        create_parent(&pointer)?;
        remove_if_present(&pointer)?;
        make_link(&blob, &pointer)
            .with_context(|| format!("linking {} to {}", pointer.display(), blob.display()))?;
        Ok(pointer)
    }

    /// Removes a file's snapshot entry and its blob (after a failed hash check).
    pub(crate) fn forget(&self, pointer: &Path) -> Result<()> {
        if let Ok(blob) = fs::canonicalize(pointer) {
            remove_if_present(&blob)?;
        }
        remove_if_present(pointer)
    }

    /// Files cached under a commit's snapshot, for offline listing; `None` if the commit
    /// has no snapshot. The sha256 is known when the blob is named by one (LFS files).
    pub(crate) fn snapshot_files(&self, commit: &str) -> Option<Vec<RepoFile>> {
        let dir = self.snapshot_dir(commit);
        if !dir.is_dir() {
            return None;
        }
        let mut files = Vec::new();
        walk(&dir, "", &mut files);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Some(files)
    }

    /// An exclusive lock on one blob, shared with Python's `filelock` (which also uses
    /// `flock` on Unix). Waits while another process downloads the same blob.
    pub(crate) fn lock(&self, etag: &str) -> Result<BlobLock> {
        let path = self
            .cache_dir
            .join(".locks")
            .join(&self.folder)
            .join(format!("{etag}.lock"));
        create_parent(&path)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        lock_exclusive(&file, &path)?;
        Ok(BlobLock { _file: file })
    }
}

/// Held while a blob is written; closing the file releases the lock.
pub(crate) struct BlobLock {
    _file: File,
}

#[cfg(unix)]
fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
    let fd = file.as_raw_fd();
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    tracing::info!("waiting for another download holding {}", path.display());
    loop {
        // SAFETY: as above.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File, _path: &Path) -> Result<()> {
    Ok(())
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<RepoFile>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        // `metadata` follows the snapshot symlink to its blob; dangling links are skipped.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, &rel, out);
        } else {
            let sha256 = fs::read_link(&path)
                .ok()
                .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()))
                .filter(|n| is_sha256(n));
            out.push(RepoFile {
                path: rel,
                size: meta.len(),
                sha256,
            });
        }
    }
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(unix)]
fn make_link(blob: &Path, pointer: &Path) -> io::Result<()> {
    let parent = pointer.parent().unwrap_or(Path::new(""));
    std::os::unix::fs::symlink(relative_to(blob, parent), pointer)
}

#[cfg(not(unix))]
fn make_link(blob: &Path, pointer: &Path) -> io::Result<()> {
    fs::copy(blob, pointer).map(|_| ())
}

/// `target` as seen from the folder `base` (both inside the cache, so they share a prefix):
/// `../../blobs/<etag>` for a top-level file, one more `..` per folder of its path.
pub(crate) fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let target: Vec<Component> = target.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = target.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &target[common..] {
        out.push(part.as_os_str());
    }
    out
}
