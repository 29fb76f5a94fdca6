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
    /// Where listings are saved for offline use (frontier's own cache; `None`: nowhere).
    pub listings_dir: Option<PathBuf>,
}

impl HubConfig {
    /// Reads the process environment: `HF_ENDPOINT`, `HF_TOKEN` (then `HF_TOKEN_PATH`, then
    /// `$HF_HOME/token`), `HF_HUB_CACHE` (then `$HF_HOME/hub`, then
    /// `~/.cache/huggingface/hub`) and `HF_HUB_OFFLINE`; listings are saved under
    /// frontier's cache folder.
    pub fn from_env() -> HubConfig {
        HubConfig {
            listings_dir: Some(crate::paths::cache_dir().join("hub-listings")),
            ..HubConfig::from_vars(|name| std::env::var(name).ok())
        }
    }

    /// The same resolution as [`HubConfig::from_env`] with variables looked up through `var`
    /// (tests pass a map; `HOME` must be among them for `~` paths). Token files are read;
    /// no listings are saved.
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
            listings_dir: None,
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
            .field("listings_dir", &self.listings_dir)
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;
    use std::path::PathBuf;

    use super::HubConfig;

    fn config_from(vars: &[(&str, &str)]) -> HubConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn config_defaults_follow_home() {
        let config = config_from(&[("HOME", "/home/u")]);
        assert_eq!(config.endpoint, "https://huggingface.co");
        assert_eq!(
            config.cache_dir,
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
        assert_eq!(config.token, None);
        assert!(!config.offline);
        let config = config_from(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(config.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
    }

    #[test]
    fn config_reads_hf_home_and_its_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let hf_home = dir.path().join("hf");
        fs::create_dir_all(&hf_home).unwrap();
        fs::write(hf_home.join("token"), "  hf_from_file\n").unwrap();
        let home = hf_home.to_str().unwrap();
        let config = config_from(&[("HOME", "/home/u"), ("HF_HOME", home)]);
        assert_eq!(config.cache_dir, hf_home.join("hub"));
        assert_eq!(config.token.as_deref(), Some("hf_from_file"));

        let config = config_from(&[("HF_HOME", home), ("HF_TOKEN", "hf_env")]);
        assert_eq!(config.token.as_deref(), Some("hf_env"));

        let other = dir.path().join("other-token");
        fs::write(&other, "hf_path\n").unwrap();
        let config = config_from(&[
            ("HF_HOME", home),
            ("HF_TOKEN_PATH", other.to_str().unwrap()),
        ]);
        assert_eq!(config.token.as_deref(), Some("hf_path"));

        let config = config_from(&[("HF_HOME", home), ("HF_TOKEN", "  ")]);
        assert_eq!(
            config.token.as_deref(),
            Some("hf_from_file"),
            "a blank HF_TOKEN is unset"
        );

        let config = config_from(&[
            ("HF_HOME", home),
            ("HF_TOKEN", "hf_env"),
            ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1"),
        ]);
        assert_eq!(config.token, None);
    }

    #[test]
    fn config_reads_endpoint_cache_and_offline() {
        let config = config_from(&[
            ("HOME", "/home/u"),
            ("HF_HOME", "~/hf"),
            ("HF_HUB_CACHE", "/data/hub"),
            ("HF_ENDPOINT", "http://127.0.0.1:8080/"),
            ("HF_HUB_OFFLINE", "1"),
        ]);
        assert_eq!(config.endpoint, "http://127.0.0.1:8080");
        assert_eq!(config.cache_dir, PathBuf::from("/data/hub"));
        assert!(config.offline);
        let config = config_from(&[("HOME", "/home/u"), ("HF_HOME", "~/hf")]);
        assert_eq!(config.cache_dir, PathBuf::from("/home/u/hf/hub"));
        for (value, offline) in [
            ("true", true),
            ("YES", true),
            ("on", true),
            ("0", false),
            ("false", false),
            ("", false),
        ] {
            let config = config_from(&[("HOME", "/h"), ("HF_HUB_OFFLINE", value)]);
            assert_eq!(config.offline, offline, "HF_HUB_OFFLINE={value}");
        }
    }

    #[test]
    fn config_debug_hides_the_token() {
        let config = config_from(&[("HOME", "/h"), ("HF_TOKEN", "hf_secret")]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("hf_secret"), "{shown}");
        assert!(shown.contains("<set>"));
    }
}
