//! A repo's files at one commit. Online: the repo info for the commit the revision points
//! to now, then the whole tree at that commit (`/api/{models|datasets}/{repo}/tree/{commit}
//! ?recursive=true`), page after page through `Link: <...>; rel="next"` — never the repo
//! info's `siblings`, which the Hub cuts short on large repos. Offline, or with the Hub
//! unreachable: the saved listing or the cached snapshot.

use std::collections::HashSet;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::cache::RepoCache;
use super::client::Hub;
use super::error::{request_error, unreachable_cause};
use super::http::{join, Follow};
use super::repo::{
    api_url, check_file_path, check_repo_id, check_revision, encode, is_commit, is_sha256,
    RepoFile, RepoKind,
};
use super::saved;
use frontier_core::error::bad_input;

/// At most this many pages (1000 files each on the Hub).
const MAX_PAGES: usize = 10_000;

/// What a listing found: every file of a repo at one commit. Downloads and range reads of
/// its files go to that commit, so a push after the listing cannot mix two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub kind: RepoKind,
    pub repo: String,
    /// The revision asked for (`main`, a tag, a `refs/...` name or a commit).
    pub revision: String,
    /// The commit it pointed to when listed.
    pub commit: String,
    /// In path order.
    pub files: Vec<RepoFile>,
    /// Read from the cache (offline, or the Hub unreachable) instead of the Hub.
    pub from_cache: bool,
}

impl Listing {
    pub fn file(&self, path: &str) -> Option<&RepoFile> {
        self.files.iter().find(|f| f.path == path)
    }

    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

impl Hub {
    /// Every file of a repo at a revision, with sizes and LFS sha256s, and the commit the
    /// revision points to. Offline, or once the Hub proved unreachable: the listing saved
    /// when it was last listed online, else the files of the cached snapshot.
    pub fn list(&self, kind: RepoKind, repo: &str, revision: &str) -> Result<Listing> {
        check_repo_id(repo)?;
        check_revision(revision)?;
        if self.config.offline {
            return self.cached_listing(kind, repo, revision).ok_or_else(|| {
                bad_input(format!(
                    "{} repo {repo} at revision '{revision}' is not in the cache ({}) and HF_HUB_OFFLINE is set",
                    kind.as_str(),
                    self.config.cache_dir.display()
                ))
            });
        }
        if self.unreachable().is_none() {
            match self.list_online(kind, repo, revision) {
                Ok(listing) => {
                    if let Some(dir) = &self.config.listings_dir {
                        let key = self.saved_key(kind, repo, revision);
                        if let Err(e) = saved::save(dir, &key, &listing.commit, &listing.files) {
                            tracing::debug!("not saving the listing of {repo}: {e:#}");
                        }
                    }
                    return Ok(listing);
                }
                Err(e) if unreachable_cause(&e).is_none() => return Err(e),
                Err(_) => {}
            }
        }
        let unreachable = self
            .unreachable()
            .cloned()
            .expect("set by the failed listing");
        self.cached_listing(kind, repo, revision).ok_or_else(|| {
            unreachable
                .with_detail(format!(
                    "{} repo {repo} (revision '{revision}') has no listing in the cache",
                    kind.as_str()
                ))
                .into()
        })
    }

    fn list_online(&self, kind: RepoKind, repo: &str, revision: &str) -> Result<Listing> {
        let target = self.target(kind, repo, revision, None);
        let endpoint = &self.config.endpoint;
        let commit = if is_commit(revision) {
            revision.to_string()
        } else {
            let url = api_url(
                endpoint,
                kind,
                repo,
                &format!("revision/{}", encode(revision)),
            );
            let answer = self
                .send("GET", &url, None, Follow::All)
                .map_err(|f| request_error(&target, "GET", f))?;
            let info: RepoInfo = serde_json::from_reader(answer.response.into_reader())
                .with_context(|| format!("GET {url}: unexpected repo info"))?;
            info.sha.filter(|s| is_commit(s)).ok_or_else(|| {
                anyhow!("GET {url}: no commit in the answer (is HF_ENDPOINT a Hugging Face Hub?)")
            })?
        };
        let mut next = Some(api_url(
            endpoint,
            kind,
            repo,
            &format!("tree/{commit}?recursive=true&expand=false"),
        ));
        let mut seen = HashSet::new();
        let mut files = Vec::new();
        while let Some(url) = next.take() {
            if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
                bail!("GET {url}: the tree listing's pages do not end");
            }
            let answer = self
                .send("GET", &url, None, Follow::All)
                .map_err(|f| request_error(&target, "GET", f))?;
            next = answer
                .response
                .header("link")
                .and_then(next_link)
                .and_then(|link| join(&answer.url, link));
            let items: Vec<TreeItem> = serde_json::from_reader(answer.response.into_reader())
                .with_context(|| format!("GET {url}: unexpected tree listing"))?;
            for item in items.into_iter().filter(|i| i.kind == "file") {
                if check_file_path(repo, &item.path).is_err() {
                    bail!("GET {url}: the listing has an unsafe path '{}'", item.path);
                }
                let lfs = item.lfs.unwrap_or_default();
                files.push(RepoFile {
                    size: lfs.size.unwrap_or(item.size),
                    sha256: lfs
                        .oid
                        .map(|s| s.to_ascii_lowercase())
                        .filter(|s| is_sha256(s)),
                    path: item.path,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Ok(Listing {
            kind,
            repo: repo.to_string(),
            revision: revision.to_string(),
            commit,
            files,
            from_cache: false,
        })
    }

    /// The listing the cache can give: the saved one when it is of the commit `refs/`
    /// names (or nothing was downloaded), else the files of that commit's snapshot.
    fn cached_listing(&self, kind: RepoKind, repo: &str, revision: &str) -> Option<Listing> {
        let cache = RepoCache::new(&self.config.cache_dir, kind, repo);
        let in_refs = cache.commit_for(revision);
        let stored = self
            .config
            .listings_dir
            .as_ref()
            .and_then(|dir| saved::load(dir, &self.saved_key(kind, repo, revision)));
        let (commit, files) = match (in_refs, stored) {
            (Some(commit), Some((listed, files))) if listed == commit => (commit, files),
            (Some(commit), _) => {
                let files = cache.snapshot_files(&commit)?;
                (commit, files)
            }
            (None, Some(stored)) => stored,
            (None, None) => return None,
        };
        Some(Listing {
            kind,
            repo: repo.to_string(),
            revision: revision.to_string(),
            commit,
            files,
            from_cache: true,
        })
    }
}

impl Hub {
    fn saved_key<'a>(&'a self, kind: RepoKind, repo: &'a str, revision: &'a str) -> saved::Key<'a> {
        saved::Key {
            endpoint: &self.config.endpoint,
            kind,
            repo,
            revision,
        }
    }
}

/// The URL of `rel="next"` in a `Link` header (`<url>; rel="next", <url>; rel="prev"`).
pub(crate) fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let url = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let end = after.find('<').unwrap_or(after.len());
        let is_next = after[..end].split(';').any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            let value = value.trim().trim_end_matches(',').trim().trim_matches('"');
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .split_whitespace()
                    .any(|v| v.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(url);
        }
        rest = &after[end..];
    }
    None
}

/// The part of `GET /api/{models|datasets}/{repo}/revision/{rev}` we use.
#[derive(Deserialize)]
struct RepoInfo {
    sha: Option<String>,
}

/// One entry of a tree listing: a file or a directory.
#[derive(Deserialize)]
struct TreeItem {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<TreeLfs>,
}

/// `lfs.oid` is the sha256 in tree listings (the repo info calls it `lfs.sha256`).
#[derive(Deserialize, Default)]
struct TreeLfs {
    oid: Option<String>,
    size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link("<https://h/api/x?cursor=abc%3D>; rel=\"next\""),
            Some("https://h/api/x?cursor=abc%3D")
        );
        assert_eq!(
            next_link("<https://h/p1>; rel=\"prev\", <https://h/p3>; rel=\"next\""),
            Some("https://h/p3")
        );
        assert_eq!(next_link("<https://h/p3>; rel=next"), Some("https://h/p3"));
        assert_eq!(next_link("<https://h/p1>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }
}
