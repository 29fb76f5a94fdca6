//! What this binary was built with (recorded by build.rs) and what llama.cpp reports about
//! the CPU at run time: provenance carried by every result.

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
            llama_cpp: llama_cpp_version(),
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

/// e.g. `llama-cpp-sys-2 0.1.161 (llama-cpp-rs e7af607ebd5e, ggml 0.26.0)`.
pub fn llama_cpp_version() -> String {
    format!(
        "llama-cpp-sys-2 {} (llama-cpp-rs {}, ggml {})",
        env!("FRONTIER_LLAMA_SYS_VERSION"),
        env!("FRONTIER_LLAMA_RS_COMMIT"),
        env!("FRONTIER_GGML_VERSION")
    )
}

/// llama.cpp's own `llama_print_system_info()`: the CPU features its kernels use.
pub fn llama_system_info() -> String {
    // SAFETY: returns a pointer to a static, NUL-terminated string.
    let ptr = unsafe { llama_cpp_sys_2::llama_print_system_info() };
    if ptr.is_null() {
        return String::new();
    }
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}
