//! Peak resident memory: of a finished child (from `wait4`'s rusage) and of this process.

use frontier_core::units::Bytes;

/// `ru_maxrss` in bytes: Linux reports KiB, macOS bytes.
pub fn maxrss_bytes(ru: &libc::rusage) -> Bytes {
    let v = ru.ru_maxrss.max(0) as u64;
    if cfg!(target_os = "macos") {
        v
    } else {
        v * 1024
    }
}

/// This process's peak RSS so far (`VmHWM`), where /proc exists.
pub fn own_peak_rss() -> Option<Bytes> {
    proc_status_kib("VmHWM").map(|k| k * 1024)
}

/// A `kB` field of /proc/self/status.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
