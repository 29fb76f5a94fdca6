//! The process-wide llama.cpp backend, initialised once (with llama.cpp's log routed into
//! `tracing` first), and which compute backends this build of llama.cpp has.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use llama_cpp_2::llama_backend::LlamaBackend;

use crate::logs;

static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();

/// Initialises llama.cpp for this process if it is not yet (logs routed to tracing).
pub fn ensure_backend() -> Result<()> {
    backend().map(|_| ())
}

/// The process-wide llama.cpp backend, initialised on first use (once, even when threads
/// race: llama.cpp refuses a second initialisation).
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    let _guard = INIT
        .lock()
        .map_err(|_| anyhow!("llama.cpp initialisation lock poisoned"))?;
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    logs::route_llama_logs();
    let b = LlamaBackend::init().map_err(|e| anyhow!("initialising llama.cpp: {e}"))?;
    Ok(BACKEND.get_or_init(|| b))
}

/// Which compute backends this build of llama.cpp has, e.g. `CPU` or `CPU+Metal`.
pub fn backend_description() -> String {
    let mut parts = vec!["CPU"];
    if cfg!(feature = "metal") || cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        parts.push("Metal");
    }
    if cfg!(feature = "cuda") {
        parts.push("CUDA");
    }
    if cfg!(feature = "vulkan") {
        parts.push("Vulkan");
    }
    parts.join("+")
}
