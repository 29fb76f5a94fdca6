//! Hub settings (endpoint, token, cache folder, offline mode) resolved from environment
//! variables the way Python's `huggingface_hub` resolves them, so both tools agree.

use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the Hub is, who we are, where files go.
#[derive(Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL without a trailing `/`, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer <token>` to the endpoint's host only.
    pub token: Option<String>,
    /// The `hub` cache folder holding `models--org--name/` and `datasets--org--name/`.
    pub cache_dir: PathBuf,
    /// Never touch the network: answer from the cache or fail.
    pub offline: bool,
}

impl HubConfig {
    /// Reads the process environment: `HF_ENDPOINT`, `HF_TOKEN` (then `HF_TOKEN_PATH`, then
    /// `$HF_HOME/token`), `HF_HUB_CACHE` (then `$HF_HOME/hub`, then
    /// `~/.cache/huggingface/hub`) and `HF_HUB_OFFLINE`.
    pub fn from_env() -> HubConfig {
        HubConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// The same resolution as [`HubConfig::from_env`] with variables looked up through `var`
    /// (tests pass a map; `HOME` must be among them for `~` paths). Token files are read.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubConfig {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let home = get("HOME")
            .or_else(|| get("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let path_var = |name: &str| get(name).map(|v| expand_home(&v, &home));

        let endpoint = get("HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let hf_home = path_var("HF_HOME").unwrap_or_else(|| {
            path_var("XDG_CACHE_HOME")
                .unwrap_or_else(|| home.join(".cache"))
                .join("huggingface")
        });
        let cache_dir = path_var("HF_HUB_CACHE")
            .or_else(|| path_var("HUGGINGFACE_HUB_CACHE"))
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = if get("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some_and(|v| is_true(&v)) {
            None
        } else {
            get("HF_TOKEN")
                .or_else(|| get("HUGGING_FACE_HUB_TOKEN"))
                .and_then(|t| clean_token(&t))
                .or_else(|| {
                    let file = path_var("HF_TOKEN_PATH").unwrap_or_else(|| hf_home.join("token"));
                    read_token_file(&file)
                })
        };
        let offline = get("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v));
        HubConfig {
            endpoint,
            token,
            cache_dir,
            offline,
        }
    }
}

/// Never prints the token itself.
impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .finish()
    }
}

/// `huggingface_hub`'s truthy values: 1, ON, YES, TRUE in any case.
fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

fn clean_token(raw: &str) -> Option<String> {
    let token = raw.trim();
    (!token.is_empty()).then(|| token.to_string())
}

fn read_token_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| clean_token(&t))
}

fn expand_home(value: &str, home: &Path) -> PathBuf {
    if value == "~" {
        home.to_path_buf()
    } else if let Some(rest) = value.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(value)
    }
}
