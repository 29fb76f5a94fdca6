//! Naming things on the Hub: repo kinds, listed files, checks on repo ids, revisions and file
//! paths (nothing from a user or a server may escape the cache folder), and resolve URLs.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use frontier_core::error::bad_input;

/// What kind of repository a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoKind {
    Model,
    Dataset,
}

impl RepoKind {
    /// "model" or "dataset", for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        }
    }

    /// "models" or "datasets": the API's and the cache's word for the kind.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }

    /// What comes between the endpoint and the repo id in web and resolve URLs.
    pub(crate) fn url_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
        }
    }
}

/// One file of a repo at a revision, as the Hub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFile {
    /// Path inside the repo, `/`-separated (e.g. `all/test-00000-of-00001.parquet`).
    pub path: String,
    pub size: u64,
    /// The LFS sha256 (lowercase hex) when the file is stored in LFS/Xet.
    pub sha256: Option<String>,
}

/// `{endpoint}/{repo}` or `{endpoint}/datasets/{repo}`: the page where a license is accepted.
pub(crate) fn web_url(endpoint: &str, kind: RepoKind, repo: &str) -> String {
    format!("{endpoint}/{}{repo}", kind.url_prefix())
}

/// `{endpoint}/[datasets/]{repo}/resolve/{revision}/{path}` with the revision's `/` and any
/// unusual character of the path percent-encoded.
pub(crate) fn resolve_url(
    endpoint: &str,
    kind: RepoKind,
    repo: &str,
    revision: &str,
    path: &str,
) -> String {
    let path: Vec<String> = path.split('/').map(encode).collect();
    format!(
        "{}/resolve/{}/{}",
        web_url(endpoint, kind, repo),
        encode(revision),
        path.join("/")
    )
}

/// `{endpoint}/api/{models|datasets}/{repo}/{rest}` (the repo id's `/` stays as it is).
pub(crate) fn api_url(endpoint: &str, kind: RepoKind, repo: &str, rest: &str) -> String {
    format!("{endpoint}/api/{}/{repo}/{rest}", kind.plural())
}

/// The cache folder of a repo, as `huggingface_hub` names it: `models--org--name` or
/// `datasets--org--name` (the kind in the plural, every `/` of the id as `--`).
pub(crate) fn folder_name(kind: RepoKind, repo: &str) -> String {
    format!("{}--{}", kind.plural(), repo.replace('/', "--"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `name` or `owner/name`, Hub rules: letters, digits, `-`, `_`, `.`; no `--` or `..`; a part
/// does not start or end with `-` or `.`; at most 96 characters.
pub(crate) fn check_repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !p.starts_with(['-', '.'])
            && !p.ends_with(['-', '.'])
    };
    let ok = repo.len() <= 96
        && parts.len() <= 2
        && parts.iter().all(|p| part_ok(p))
        && !repo.contains("--")
        && !repo.contains("..");
    if ok {
        Ok(())
    } else {
        Err(bad_input(format!(
            "'{repo}' is not a Hugging Face repo id (expected owner/name)"
        )))
    }
}

/// A branch, tag, `refs/...` name or commit: `/`-separated parts, none empty, `.` or `..`.
pub(crate) fn check_revision(revision: &str) -> Result<()> {
    if relative_path_ok(revision) {
        Ok(())
    } else {
        Err(bad_input(format!("'{revision}' is not a valid revision")))
    }
}

/// A file path inside a repo; `repo` is only used in the message.
pub(crate) fn check_file_path(repo: &str, path: &str) -> Result<()> {
    if relative_path_ok(path) {
        Ok(())
    } else {
        Err(bad_input(format!(
            "{repo}: '{path}' is not a valid file path inside a repo"
        )))
    }
}

fn relative_path_ok(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 1024
        && !path.contains(['\\', '\0', '\n', '\r'])
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A 40-hex git commit id, as `X-Repo-Commit` and the listing's `sha` carry.
pub(crate) fn is_commit(value: &str) -> bool {
    value.len() == 40 && is_lower_hex(value)
}

/// A 64-hex sha256, as LFS etags are.
pub(crate) fn is_sha256(value: &str) -> bool {
    value.len() == 64 && is_lower_hex(value)
}

fn is_lower_hex(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Blob names come from the server's ETag: accept only what can be a plain file name.
pub(crate) fn is_safe_etag(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}
