//! The Hub client: one endpoint, token and cache folder, what it learnt in this run (the Hub
//! unreachable), and cache lookups. Requests (`http.rs`), listings, downloads and ranged
//! reads are its methods in their own modules.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;

use super::cache::RepoCache;
use super::config::HubConfig;
use super::error::{Target, Unreachable};
use super::repo::{check_file_path, check_repo_id, check_revision, RepoKind};
use frontier_core::error::bad_input;

const USER_AGENT: &str = concat!("frontier/", env!("CARGO_PKG_VERSION"));

/// A Hub that does not take a connection within this long counts as unreachable, so that
/// with no network a command fails (or goes on offline) in under 5 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// A Hugging Face Hub client bound to one endpoint, token and cache folder.
pub struct Hub {
    pub(crate) config: HubConfig,
    /// Follows no redirects: [`Hub::send`] does, deciding where the token goes.
    pub(crate) agent: ureq::Agent,
    pub(crate) retries: u32,
    /// Set by the first failed DNS lookup or connection: from then on the Hub is offline.
    pub(crate) unreachable: OnceLock<Unreachable>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Result<Hub> {
        let endpoint = config.endpoint.trim_end_matches('/').to_string();
        let valid = (endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            && url::Url::parse(&endpoint).is_ok_and(|u| u.host_str().is_some());
        if !valid {
            return Err(bad_input(format!(
                "HF_ENDPOINT '{endpoint}' is not an http:// or https:// URL"
            )));
        }
        let config = HubConfig { endpoint, ..config };
        let agent = ureq::AgentBuilder::new()
            .try_proxy_from_env(true)
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_read(Duration::from_secs(60))
            .user_agent(USER_AGENT)
            .redirects(0)
            .build();
        Ok(Hub {
            config,
            agent,
            retries: 3,
            unreachable: OnceLock::new(),
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

    /// Why the Hub could not be reached, once a request found out; the client then works
    /// from the cache as if offline.
    pub fn unreachable(&self) -> Option<&Unreachable> {
        self.unreachable.get()
    }

    /// The snapshot path of a file already in the cache, without touching the network.
    /// `revision` may be a branch (through `refs/`) or a commit.
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
}
