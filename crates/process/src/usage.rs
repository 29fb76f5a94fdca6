//! What a running worker uses: its resident memory split into anonymous and file-backed
//! pages, and the bytes it read from disk, sampled from /proc while it runs. The same
//! sampler is the watchdog that stops a worker above its cap where nothing else can.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often the sampler looks at the worker.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// One look at a process's resident memory, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub rss: u64,
    /// `RssAnon`: heap, KV cache, compute buffers, weights read with mmap off.
    pub anon: Option<u64>,
    /// `RssFile`: pages of mapped files, the model's weights with mmap on.
    pub file: Option<u64>,
    /// `read_bytes` of /proc/PID/io: what the process made the kernel read from storage.
    pub disk_read: Option<u64>,
}

/// The highest values seen over a worker's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledPeaks {
    pub rss: u64,
    pub anon: Option<u64>,
    pub file: Option<u64>,
    pub disk_read: Option<u64>,
    pub samples: u32,
}

impl SampledPeaks {
    fn add(&mut self, s: Sample) {
        self.rss = self.rss.max(s.rss);
        self.anon = max_opt(self.anon, s.anon);
        self.file = max_opt(self.file, s.file);
        self.disk_read = max_opt(self.disk_read, s.disk_read);
        self.samples += 1;
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A `kB` field ("RssAnon:   1234 kB") of a /proc/PID/status text, in bytes.
pub fn status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    })
}

/// `read_bytes` from a /proc/PID/io text.
pub fn io_read_bytes(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes:")?.trim().parse().ok())
}

/// Samples `pid` now; None once it is gone.
#[cfg(target_os = "linux")]
pub fn sample(pid: libc::pid_t) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status_field(&status, "VmRSS")?;
    let disk_read = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| io_read_bytes(&io));
    Some(Sample {
        rss,
        anon: status_field(&status, "RssAnon"),
        file: status_field(&status, "RssFile"),
        disk_read,
    })
}

/// Samples `pid` now; None once it is gone. Without /proc only the total is known.
#[cfg(not(target_os = "linux"))]
pub fn sample(pid: libc::pid_t) -> Option<Sample> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let mut sys = System::new().ok()?;
    let pid = Pid::from_u32(pid as u32);
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing().with_memory(),
    );
    let rss = sys.process(pid)?.memory();
    Some(Sample {
        rss,
        ..Sample::default()
    })
}

/// A thread sampling a worker every [`SAMPLE_INTERVAL`] until it exits; with a watchdog
/// limit it SIGKILLs the worker the first time its resident memory is above the limit.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<SampledPeaks>>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: libc::pid_t, watchdog_limit: Option<u64>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(SampledPeaks::default()));
        let fired = Arc::new(AtomicBool::new(false));
        let (s, p, f) = (stop.clone(), peaks.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Some(now) = sample(pid) else { break };
                if let Ok(mut peaks) = p.lock() {
                    peaks.add(now);
                }
                if let Some(limit) = watchdog_limit {
                    if now.rss > limit && !f.swap(true, Ordering::Relaxed) {
                        // SAFETY: kill has no memory preconditions; the pid is our
                        // unreaped child, so it cannot have been reused.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                std::thread::sleep(SAMPLE_INTERVAL);
            }
        });
        Sampler {
            stop,
            peaks,
            fired,
            thread: Some(thread),
        }
    }

    /// Stops sampling (call before reaping the child, so its pid cannot be reused under
    /// the sampler) and returns the peaks and whether the watchdog stopped the worker.
    pub fn finish(mut self) -> (SampledPeaks, bool) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let peaks = self.peaks.lock().map(|p| *p).unwrap_or_default();
        (peaks, self.fired.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_io_fields() {
        let status =
            "Name:\tfrontier\nVmRSS:\t  2048 kB\nRssAnon:\t  1024 kB\nRssFile:\t   512 kB\n";
        assert_eq!(status_field(status, "VmRSS"), Some(2048 * 1024));
        assert_eq!(status_field(status, "RssAnon"), Some(1024 * 1024));
        assert_eq!(status_field(status, "RssFile"), Some(512 * 1024));
        assert_eq!(status_field(status, "RssShmem"), None);
        let io = "rchar: 10\nwchar: 0\nread_bytes: 4096\nwrite_bytes: 0\n";
        assert_eq!(io_read_bytes(io), Some(4096));
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id() as libc::pid_t).expect("own sample");
        assert!(s.rss > 0);
        if cfg!(target_os = "linux") {
            let (anon, file) = (s.anon.unwrap(), s.file.unwrap());
            assert!(anon + file <= s.rss + 4096 * 1024, "{s:?}");
        }
    }
}
