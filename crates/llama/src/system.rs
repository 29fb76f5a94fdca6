//! What this build of llama.cpp is (the bindings' version, the llama-cpp-rs commit they were
//! cut from, ggml's version, recorded by build.rs) and what it says about the CPU at run time.

/// e.g. `llama-cpp-sys-2 0.1.161 (llama-cpp-rs e7af607ebd5e, ggml 0.26.0)`.
pub fn version() -> String {
    format!(
        "llama-cpp-sys-2 {} (llama-cpp-rs {}, ggml {})",
        env!("FRONTIER_LLAMA_SYS_VERSION"),
        env!("FRONTIER_LLAMA_RS_COMMIT"),
        env!("FRONTIER_GGML_VERSION")
    )
}

/// The commit the llama.cpp sources come from (llama-cpp-rs's, short), for llama-bench's
/// `build_commit` column.
pub fn build_commit() -> String {
    env!("FRONTIER_LLAMA_RS_COMMIT").chars().take(7).collect()
}

/// llama.cpp's own `llama_print_system_info()`: the CPU features its kernels use.
pub fn system_info() -> String {
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
