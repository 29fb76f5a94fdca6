//! What this binary was built with (recorded by build.rs, and by `frontier-llama` for
//! llama.cpp): provenance carried by every result.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BuildInfo {
    pub frontier_version: &'static str,
    pub frontier_commit: &'static str,
    /// llama-cpp-sys-2 version, the llama-cpp-rs commit behind it, and ggml's version.
    pub llama_cpp: String,
    pub backends: &'static str,
    pub target: &'static str,
    pub target_cpu: &'static str,
    pub target_features: &'static str,
    pub profile: &'static str,
    pub rustc: &'static str,
}

impl BuildInfo {
    pub fn get() -> BuildInfo {
        BuildInfo {
            frontier_version: env!("CARGO_PKG_VERSION"),
            frontier_commit: env!("FRONTIER_GIT_COMMIT"),
            llama_cpp: frontier_llama::version(),
            backends: env!("FRONTIER_BACKENDS"),
            target: env!("FRONTIER_TARGET"),
            target_cpu: env!("FRONTIER_TARGET_CPU"),
            target_features: env!("FRONTIER_TARGET_FEATURES"),
            profile: env!("FRONTIER_PROFILE"),
            rustc: env!("FRONTIER_RUSTC"),
        }
    }
}

/// Whether this binary was built without a GPU backend.
pub fn cpu_only() -> bool {
    env!("FRONTIER_BACKENDS") == "cpu"
}
