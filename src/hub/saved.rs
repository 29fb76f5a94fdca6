//! Listings kept for later, in frontier's own cache (not the HF cache, whose layout
//! `huggingface_hub` owns): each online listing is saved per endpoint, repo and revision,
//! so that offline or with the Hub unreachable a repo's whole file list (and the commit it
//! was of) is still known, not only the files downloaded.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::repo::{folder_name, RepoFile, RepoKind};

/// Which listing: of what, from where.
pub(crate) struct Key<'a> {
    pub endpoint: &'a str,
    pub kind: RepoKind,
    pub repo: &'a str,
    pub revision: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    commit: String,
    files: Vec<RepoFile>,
}

/// Writes a listing (atomically: a temporary file renamed into place).
pub(crate) fn save(dir: &Path, key: &Key, commit: &str, files: &[RepoFile]) -> Result<()> {
    let path = location(dir, key);
    let parent = path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let saved = Saved {
        commit: commit.to_string(),
        files: files.to_vec(),
    };
    let partial = path.with_extension(format!("json.{}.tmp", std::process::id()));
    fs::write(&partial, serde_json::to_vec(&saved)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))
}

/// The commit and files last listed for a repo's revision, if any.
pub(crate) fn load(dir: &Path, key: &Key) -> Option<(String, Vec<RepoFile>)> {
    let text = fs::read(location(dir, key)).ok()?;
    let saved: Saved = serde_json::from_slice(&text).ok()?;
    Some((saved.commit, saved.files))
}

/// `DIR/<endpoint>/<models--org--name>/<revision>.json`; the revision's `/`s make folders
/// (it was checked to be a safe relative path).
fn location(dir: &Path, key: &Key) -> PathBuf {
    let host: String = key
        .endpoint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut path = dir.join(host).join(folder_name(key.kind, key.repo));
    let parts: Vec<&str> = key.revision.split('/').collect();
    if let Some((last, folders)) = parts.split_last() {
        path.extend(folders);
        path.push(format!("{last}.json"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_per_endpoint_repo_and_revision() {
        let dir = Path::new("/c");
        let key = |endpoint, kind, repo, revision| Key {
            endpoint,
            kind,
            repo,
            revision,
        };
        assert_eq!(
            location(
                dir,
                &key("https://huggingface.co", RepoKind::Model, "org/m", "v1.0")
            ),
            Path::new("/c/https___huggingface.co/models--org--m/v1.0.json")
        );
        assert_eq!(
            location(
                dir,
                &key(
                    "http://127.0.0.1:8080",
                    RepoKind::Dataset,
                    "org/d",
                    "refs/convert/parquet"
                )
            ),
            Path::new("/c/http___127.0.0.1_8080/datasets--org--d/refs/convert/parquet.json")
        );
    }
}
