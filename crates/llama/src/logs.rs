//! llama.cpp's log, routed into `tracing` (under [`LOG_TARGETS`]) instead of stderr, with a
//! tap that keeps llama.cpp's last error line for our error messages and lets a command
//! watch its progress lines (quantize).

use std::sync::{Mutex, Once};

use tracing::Level;

type Listener = Box<dyn FnMut(&str) + Send>;

struct Tap {
    last_error: Option<String>,
    listener: Option<Listener>,
}

static TAP: Mutex<Tap> = Mutex::new(Tap {
    last_error: None,
    listener: None,
});

/// Target of the events made from llama.cpp's (and ggml's) log lines.
const LLAMA_TARGET: &str = "llama.cpp";

/// The `tracing` targets llama.cpp's lines arrive under (its own, and the bindings'), for a
/// subscriber that shows them only when asked.
pub const LOG_TARGETS: &[&str] = &[LLAMA_TARGET, "llama_cpp_2"];

/// Sends llama.cpp's log output through [`on_llama_log`] (once per process) instead of
/// stderr: to the tap, and to `tracing` under the target `llama.cpp`.
pub(crate) fn route_llama_logs() {
    static ONCE: Once = Once::new();
    // SAFETY: the callback is a plain function valid for the whole process.
    ONCE.call_once(|| unsafe {
        llama_cpp_sys_2::llama_log_set(Some(on_llama_log), std::ptr::null_mut())
    });
}

/// A line being assembled from llama.cpp's log calls (which may continue a line).
static PARTIAL: Mutex<(llama_cpp_sys_2::ggml_log_level, String)> =
    Mutex::new((llama_cpp_sys_2::GGML_LOG_LEVEL_INFO, String::new()));

extern "C" fn on_llama_log(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const std::ffi::c_char,
    _user: *mut std::ffi::c_void,
) {
    if text.is_null() {
        return;
    }
    let Ok(mut partial) = PARTIAL.lock() else {
        return;
    };
    if level != llama_cpp_sys_2::GGML_LOG_LEVEL_CONT {
        partial.0 = level;
    }
    let level = partial.0;
    let wanted = level != llama_cpp_sys_2::GGML_LOG_LEVEL_DEBUG
        || tracing::enabled!(target: "llama.cpp", Level::DEBUG);
    if !wanted {
        partial.1.clear();
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for this call.
    let text = unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy();
    partial.1.push_str(&text);
    while let Some(nl) = partial.1.find('\n') {
        let line: String = partial.1.drain(..=nl).collect();
        emit_llama_line(level, line.trim_end());
    }
}

fn emit_llama_line(level: llama_cpp_sys_2::ggml_log_level, line: &str) {
    if line.is_empty() {
        return;
    }
    match level {
        llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR => tracing::error!(target: "llama.cpp", "{line}"),
        llama_cpp_sys_2::GGML_LOG_LEVEL_WARN => tracing::warn!(target: "llama.cpp", "{line}"),
        llama_cpp_sys_2::GGML_LOG_LEVEL_INFO => tracing::info!(target: "llama.cpp", "{line}"),
        _ => tracing::debug!(target: "llama.cpp", "{line}"),
    }
    if level == llama_cpp_sys_2::GGML_LOG_LEVEL_DEBUG {
        return;
    }
    let Ok(mut tap) = TAP.lock() else { return };
    if level == llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR {
        tap.last_error = Some(line.to_string());
    }
    if let Some(listener) = tap.listener.as_mut() {
        listener(line);
    }
}

/// The last error line llama.cpp logged since the previous call, if any.
pub fn last_llama_error() -> Option<String> {
    TAP.lock().ok()?.last_error.take()
}

/// Calls `f` with every llama.cpp log line (info and above) until the guard is dropped.
pub fn watch_llama_lines(f: impl FnMut(&str) + Send + 'static) -> WatchGuard {
    if let Ok(mut tap) = TAP.lock() {
        tap.listener = Some(Box::new(f));
    }
    WatchGuard(())
}

/// Stops a [`watch_llama_lines`] listener when dropped.
#[must_use]
pub struct WatchGuard(());

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Ok(mut tap) = TAP.lock() {
            tap.listener = None;
        }
    }
}
