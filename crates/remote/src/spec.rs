//! Where the server is and how to reach it: `--backend openai:URL`, `--api-key-env NAME`,
//! the request timeout. The URL shown anywhere is stripped of credentials and query; the key
//! itself is read from the environment when a request is made and never stored.

use anyhow::Result;
use frontier_core::bad_input;
use serde::{Deserialize, Serialize};

/// The default time one request may take before it is abandoned (and retried).
pub const DEFAULT_TIMEOUT_S: u64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSpec {
    /// The server's base URL, without a trailing `/` or `/v1`.
    pub url: String,
    /// The environment variable holding the API key, if the server wants one.
    pub api_key_env: Option<String>,
    /// Seconds one request may take.
    pub timeout_s: u64,
}

impl RemoteSpec {
    /// `openai:http://host:port[/v1]` (or the URL alone).
    pub fn parse(text: &str) -> Result<RemoteSpec> {
        let url = text.strip_prefix("openai:").unwrap_or(text).trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad_input(format!(
                "'{text}': give the server as openai:http://HOST:PORT"
            )));
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad_input(format!(
                "'{text}': the server URL must be http:// or https://"
            )));
        }
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad_input(format!("'{text}': the server URL has no host")));
        }
        let mut url = url.trim_end_matches('/').to_string();
        if let Some(base) = url.strip_suffix("/v1") {
            url = base.to_string();
        }
        Ok(RemoteSpec {
            url,
            api_key_env: None,
            timeout_s: DEFAULT_TIMEOUT_S,
        })
    }

    /// The URL as it may be shown, logged and stored: no user, password or query.
    pub fn display_url(&self) -> String {
        display_url(&self.url)
    }

    /// The host part of the URL.
    pub fn host(&self) -> &str {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host_port.split(':').next().unwrap_or(host_port),
        }
    }

    /// A warning when requests (and a key) would cross the network unencrypted.
    pub fn plain_http_warning(&self) -> Option<String> {
        let loopback = matches!(self.host(), "localhost" | "127.0.0.1" | "::1")
            || self.host().starts_with("127.");
        (self.url.starts_with("http://") && !loopback).then(|| {
            format!(
                "{} is plain http:// to another host: prompts, outputs{} travel unencrypted",
                self.display_url(),
                if self.api_key_env.is_some() {
                    " and the API key"
                } else {
                    ""
                }
            )
        })
    }

    /// The API key, read now from the named variable.
    pub fn api_key(&self) -> Result<Option<String>> {
        let Some(name) = &self.api_key_env else {
            return Ok(None);
        };
        match std::env::var(name) {
            Ok(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(bad_input(format!(
                "--api-key-env {name}: the variable is not set (or empty)"
            ))),
        }
    }
}

/// `url` without credentials or query.
pub fn display_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_shown_without_secrets() {
        let s = RemoteSpec::parse("openai:http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(s.url, "http://127.0.0.1:8080");
        assert_eq!(s.host(), "127.0.0.1");
        assert!(s.plain_http_warning().is_none());
        let s = RemoteSpec::parse("openai:https://me:secret@gpu.example.org:8000?key=abc").unwrap();
        assert_eq!(s.display_url(), "https://gpu.example.org:8000");
        assert_eq!(s.host(), "gpu.example.org");
        let s = RemoteSpec::parse("openai:http://gpu.example.org:8000").unwrap();
        assert!(s.plain_http_warning().unwrap().contains("unencrypted"));
        for bad in [
            "openai:",
            "openai:ftp://x",
            "openai:http://",
            "localhost:8080",
        ] {
            assert!(RemoteSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_key_variable_is_bad_input() {
        let mut s = RemoteSpec::parse("openai:http://127.0.0.1:1").unwrap();
        s.api_key_env = Some("FRONTIER_TEST_NO_SUCH_KEY_VARIABLE".into());
        let e = s.api_key().unwrap_err();
        assert_eq!(frontier_core::exit_code(&e), 2, "{e}");
    }
}
