//! The Hub client: its HTTP agents and retries, repo listings (online from the repo info API,
//! offline from the cache), cache lookups, and ranged reads of remote files.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::cache::RepoCache;
use super::config::HubConfig;
use super::error::{is_retryable, request_error, Target};
use super::repo::{
    check_file_path, check_repo_id, check_revision, is_sha256, resolve_url, RepoFile, RepoKind,
};
use frontier_core::error::bad_input;

const USER_AGENT: &str = concat!("frontier/", env!("CARGO_PKG_VERSION"));

/// A Hugging Face Hub client bound to one endpoint, token and cache folder.
pub struct Hub {
    pub(crate) config: HubConfig,
    /// Follows redirects, sending the token to the same host only.
    pub(crate) agent: ureq::Agent,
    /// Follows nothing: metadata comes from the Hub's own (possibly redirecting) answer.
    pub(crate) probe_agent: ureq::Agent,
    pub(crate) retries: u32,
}

impl Hub {
    pub fn new(config: HubConfig) -> Result<Hub> {
        let endpoint = config.endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(bad_input(format!(
                "HF_ENDPOINT '{endpoint}' is not an http:// or https:// URL"
            )));
        }
        let config = HubConfig { endpoint, ..config };
        let builder = || {
            ureq::AgentBuilder::new()
                .try_proxy_from_env(true)
                .timeout_connect(Duration::from_secs(30))
                .timeout_read(Duration::from_secs(60))
                .user_agent(USER_AGENT)
        };
        Ok(Hub {
            config,
            agent: builder()
                .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
                .build(),
            probe_agent: builder().redirects(0).build(),
            retries: 3,
        })
    }

    /// How often a failed request or a broken download is tried again (default 3).
    pub fn with_retries(mut self, retries: u32) -> Hub {
        self.retries = retries;
        self
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Every file of a repo at a revision with its size and LFS sha256. Offline, the files of
    /// the cached snapshot (only those downloaded before).
    pub fn list_files(&self, kind: RepoKind, repo: &str, revision: &str) -> Result<Vec<RepoFile>> {
        check_repo_id(repo)?;
        check_revision(revision)?;
        if self.config.offline {
            return RepoCache::new(&self.config.cache_dir, kind, repo)
                .snapshot_files(revision)
                .ok_or_else(|| {
                    bad_input(format!(
                        "{} repo {repo} at revision '{revision}' is not in the cache ({}) and HF_HUB_OFFLINE is set",
                        kind.as_str(),
                        self.config.cache_dir.display()
                    ))
                });
        }
        // hf-hub's URL for the repo info, asked with `blobs=true` for sizes and LFS hashes
        // (through our agent, which has timeouts).
        let hf_repo =
            hf_hub::Repo::with_revision(repo.to_string(), kind.hf_hub_type(), revision.into());
        let url = format!(
            "{}/api/{}?blobs=true",
            self.config.endpoint,
            hf_repo.api_url()
        );
        let request = || self.request(&self.agent, "GET", &url);
        let target = self.target(kind, repo, revision, None);
        let response = self
            .call(&request)
            .map_err(|e| request_error(&target, "GET", &url, *e))?;
        let info: RepoInfo = serde_json::from_reader(response.into_reader())
            .with_context(|| format!("GET {url}: unexpected listing"))?;
        let mut files = Vec::with_capacity(info.siblings.len());
        for sibling in info.siblings {
            if check_file_path(repo, &sibling.rfilename).is_err() {
                bail!(
                    "GET {url}: the listing has an unsafe path '{}'",
                    sibling.rfilename
                );
            }
            let lfs = sibling.lfs.unwrap_or_default();
            let sha256 = lfs
                .sha256
                .or(lfs.oid)
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| is_sha256(s));
            files.push(RepoFile {
                path: sibling.rfilename,
                size: sibling.size.or(lfs.size).unwrap_or(0),
                sha256,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The snapshot path of a file already in the cache, without touching the network.
    pub fn cached(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
        path: &str,
    ) -> Option<PathBuf> {
        let valid = check_repo_id(repo).is_ok()
            && check_revision(revision).is_ok()
            && check_file_path(repo, path).is_ok();
        if !valid {
            return None;
        }
        RepoCache::new(&self.config.cache_dir, kind, repo).lookup(revision, path)
    }

    /// Bytes `start..end` (exclusive) of a file: from the cache when it is there, otherwise
    /// through an HTTP Range request (only those bytes cross the network). Shorter when the
    /// file ends before `end`.
    pub fn read_range(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>> {
        check_repo_id(repo)?;
        check_revision(revision)?;
        check_file_path(repo, path)?;
        if end <= start {
            return Ok(Vec::new());
        }
        let want = end - start;
        if let Some(local) = self.cached(kind, repo, revision, path) {
            let mut file =
                File::open(&local).with_context(|| format!("opening {}", local.display()))?;
            file.seek(SeekFrom::Start(start))?;
            return read_up_to(&mut file, want)
                .with_context(|| format!("reading {}", local.display()));
        }
        if self.config.offline {
            return Err(self.offline_miss(kind, repo, revision, path));
        }
        let url = resolve_url(&self.config.endpoint, kind, repo, revision, path);
        let target = self.target(kind, repo, revision, Some(path));
        let range = format!("bytes={start}-{}", end - 1);
        let response =
            match self.call(&|| self.request(&self.agent, "GET", &url).set("Range", &range)) {
                Ok(response) => response,
                Err(e) if matches!(*e, ureq::Error::Status(416, _)) => {
                    return Err(bad_input(format!(
                        "{repo}: {path} has fewer than {} bytes",
                        start + 1
                    )))
                }
                Err(e) => return Err(request_error(&target, "GET", &url, *e)),
            };
        let status = response.status();
        let mut body = response.into_reader();
        if status == 200 {
            // The server ignored the Range: skip to `start` and stop reading after `end`.
            io::copy(&mut (&mut body).take(start), &mut io::sink())
                .with_context(|| format!("GET {url}"))?;
        } else if status != 206 {
            bail!("GET {url}: expected 206 Partial Content, got HTTP {status}");
        }
        read_up_to(&mut body, want).with_context(|| format!("GET {url}"))
    }

    /// The user's error for a file that is neither cached nor allowed to be downloaded.
    pub(crate) fn offline_miss(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
        path: &str,
    ) -> anyhow::Error {
        bad_input(format!(
            "{repo}: {path} ({} repo, revision '{revision}') is not in the cache ({}) and HF_HUB_OFFLINE is set",
            kind.as_str(),
            self.config.cache_dir.display()
        ))
    }

    pub(crate) fn target<'a>(
        &'a self,
        kind: RepoKind,
        repo: &'a str,
        revision: &'a str,
        path: Option<&'a str>,
    ) -> Target<'a> {
        Target {
            endpoint: &self.config.endpoint,
            kind,
            repo,
            revision,
            path,
            had_token: self.config.token.is_some(),
        }
    }

    /// A request with the token and without compression (sizes must be the file's).
    pub(crate) fn request(&self, agent: &ureq::Agent, method: &str, url: &str) -> ureq::Request {
        let request = agent
            .request(method, url)
            .set("Accept-Encoding", "identity");
        match &self.config.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    /// Sends a request, trying again after network errors, 429 and 5xx.
    pub(crate) fn call(
        &self,
        make: &dyn Fn() -> ureq::Request,
    ) -> std::result::Result<ureq::Response, Box<ureq::Error>> {
        let mut attempt = 0;
        loop {
            match make().call() {
                Err(e) if attempt < self.retries && is_retryable(&e) => {
                    attempt += 1;
                    tracing::warn!("{e}; trying again ({attempt}/{})", self.retries);
                    std::thread::sleep(backoff(attempt));
                }
                other => return other.map_err(Box::new),
            }
        }
    }
}

/// 250 ms, 500 ms, 1 s, ... at most 4 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt.saturating_sub(1).min(4))
}

fn read_up_to(reader: &mut dyn Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(1 << 20) as usize);
    reader.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// The Hub's answer to `GET /api/{models|datasets}/{repo}/revision/{rev}?blobs=true`.
#[derive(Deserialize)]
struct RepoInfo {
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    lfs: Option<Lfs>,
}

/// `lfs.sha256` in repo info; the tree API calls it `oid`.
#[derive(Deserialize, Default)]
struct Lfs {
    sha256: Option<String>,
    oid: Option<String>,
    size: Option<u64>,
}
