//! What the mock Hub holds: repos as a history of commits of files, the access rules
//! (gated, private), the modes that shape its answers, and the faults queued for the next
//! requests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Default)]
pub(crate) struct State {
    /// Keyed by (kind, repo id).
    pub repos: BTreeMap<(String, String), MockRepo>,
    /// repo id → the token that opens its files (401/403 `GatedRepo` otherwise).
    pub gated: HashMap<String, String>,
    /// repo id → the token that sees it (401/404 `RepoNotFound` otherwise).
    pub private: HashMap<String, String>,
    pub cuts: HashMap<(String, String), u64>,
    pub corrupt: HashSet<(String, String)>,
    pub served: HashMap<(String, String), u64>,
    pub requests: Vec<String>,
    /// Requests that reached the CDN host carrying `Authorization` (it refuses them).
    pub cdn_auth_attempts: usize,
    pub modes: Modes,
    pub faults: Vec<Fault>,
    /// repo id → files to push as a new commit once its next tree listing is served.
    pub pushes: HashMap<String, Vec<(String, MockFile)>>,
}

/// How the mock answers, each switch one behaviour of the real Hub.
#[derive(Clone)]
pub(crate) struct Modes {
    /// LFS files: a 302 to a signed URL on the CDN host (`localhost`, another listener).
    pub cdn: bool,
    /// resolve answers a relative 307 to `/api/resolve-cache/...` first.
    pub resolve_cache: bool,
    /// `W/"..."` ETags and `X-Linked-Etag`s.
    pub weak_etags: bool,
    /// Items per tree page (the Hub's is 1000).
    pub page_size: usize,
    /// The repo info's `siblings` list stops after this many files.
    pub siblings_limit: Option<usize>,
}

impl Default for Modes {
    fn default() -> Modes {
        Modes {
            cdn: false,
            resolve_cache: false,
            weak_etags: false,
            page_size: 1000,
            siblings_limit: None,
        }
    }
}

/// An answer queued for the next `count` requests whose target contains `pattern`.
pub(crate) struct Fault {
    pub pattern: String,
    pub count: u32,
    pub answer: FaultAnswer,
}

/// What a queued fault answers.
#[derive(Clone, Copy)]
pub(crate) struct FaultAnswer {
    pub status: u16,
    /// `Retry-After: seconds`.
    pub retry_after: Option<u64>,
    /// `RateLimit: "api";r=0;t=seconds`: a used-up window.
    pub reset: Option<u64>,
}

pub(crate) struct MockRepo {
    /// Oldest first; the last one is where `main` (and every named revision) points.
    pub commits: Vec<Commit>,
    pub revisions: Vec<String>,
}

#[derive(Clone)]
pub(crate) struct Commit {
    pub id: String,
    pub files: BTreeMap<String, MockFile>,
}

#[derive(Clone)]
pub(crate) struct MockFile {
    pub source: Source,
    pub size: u64,
    /// sha256 for LFS files, a 40-hex id for plain git files.
    pub etag: String,
    pub lfs: bool,
}

#[derive(Clone)]
pub(crate) enum Source {
    Memory(Arc<Vec<u8>>),
    Disk(PathBuf),
}

impl MockRepo {
    pub fn head(&self) -> &Commit {
        self.commits.last().expect("a mock repo has a commit")
    }

    /// The commit a revision names: a branch or ref (the head), or a commit id.
    pub fn commit(&self, revision: &str) -> Option<&Commit> {
        if self.revisions.iter().any(|r| r == revision) {
            return Some(self.head());
        }
        self.commits.iter().find(|c| c.id == revision)
    }
}

impl State {
    pub fn repo(&self, kind: &str, repo: &str) -> Option<&MockRepo> {
        self.repos.get(&(kind.to_string(), repo.to_string()))
    }

    /// A new head commit of `repo` with `changes` applied to the current head's files.
    pub fn push(&mut self, repo: &str, changes: Vec<(String, MockFile)>) {
        for ((_, id), entry) in self.repos.iter_mut() {
            if id != repo {
                continue;
            }
            let mut files = entry.head().files.clone();
            for (path, file) in &changes {
                files.insert(path.clone(), file.clone());
            }
            let id = commit_id(repo, entry.commits.len());
            entry.commits.push(Commit { id, files });
        }
    }

    /// New contents for `path` in `repo`, of the kind of the file they replace (LFS when
    /// there is none).
    pub fn replacement(&self, repo: &str, path: &str, bytes: Vec<u8>) -> MockFile {
        let small = self.repos.iter().any(|((_, id), entry)| {
            id == repo && entry.head().files.get(path).is_some_and(|f| !f.lfs)
        });
        if small {
            crate::small_file(bytes)
        } else {
            crate::lfs_file(bytes)
        }
    }

    /// The queued answer for this request, if one is due (and counts it).
    pub fn take_fault(&mut self, target: &str) -> Option<FaultAnswer> {
        let fault = self
            .faults
            .iter_mut()
            .find(|f| f.count > 0 && target.contains(&f.pattern))?;
        fault.count -= 1;
        Some(fault.answer)
    }

    /// The (repo, path) of an LFS blob by its sha256, for the CDN.
    pub fn blob(&self, sha256: &str) -> Option<(String, String, MockFile)> {
        for ((_, repo), entry) in &self.repos {
            for commit in entry.commits.iter().rev() {
                for (path, file) in &commit.files {
                    if file.lfs && file.etag == sha256 {
                        return Some((repo.clone(), path.clone(), file.clone()));
                    }
                }
            }
        }
        None
    }
}

/// The id of a repo's `n`th commit (0 = the first).
pub(crate) fn commit_id(repo: &str, n: usize) -> String {
    let seed = if n == 0 {
        format!("commit of {repo}")
    } else {
        format!("commit {n} of {repo}")
    };
    crate::sha256_hex(seed.as_bytes())[..40].to_string()
}
