//! The parent's side of a worker process: spawn it (under a memory cap if asked), hand it
//! one request line, read its event lines ([`Frame`]s), sample its memory, keep the tail of
//! its stderr, and reap it with `wait4` for its peak RSS and page faults. It knows nothing
//! of what the request asks: the request and event types belong to the job.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use frontier_core::units::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cap::{Enforcer, MemCap};
use crate::protocol::{Failure, Frame};
use crate::rss::maxrss_bytes;
use crate::usage::{SampledPeaks, Sampler};

const STDERR_TAIL_LINES: usize = 40;

/// How a worker process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
}

impl ChildExit {
    pub fn success(&self) -> bool {
        *self == ChildExit::Code(0)
    }

    /// `exit code 2`, `killed by signal 9 (SIGKILL)`.
    pub fn describe(&self) -> String {
        match *self {
            ChildExit::Code(c) => format!("exit code {c}"),
            ChildExit::Signal(s) => format!("killed by signal {s} ({})", signal_name(s)),
        }
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGXCPU => "SIGXCPU",
        _ => "signal",
    }
}

/// A finished worker: how it ended, the failure it reported (if any), its peak RSS, and the
/// last lines it wrote to stderr.
#[derive(Debug, Clone)]
pub struct ChildOutcome {
    pub exit: ChildExit,
    /// What the worker said went wrong, when it ended with a [`Frame::Failed`].
    pub failure: Option<Failure>,
    pub peak_rss_bytes: Bytes,
    pub stderr_tail: Vec<String>,
    pub wall: Duration,
    /// RssAnon / RssFile / disk reads, sampled while it ran.
    pub sampled: SampledPeaks,
    /// Page faults that had to read from disk (`ru_majflt`).
    pub major_faults: u64,
    /// What the memory cap saw, when there was one.
    pub cap: Option<CapApplied>,
}

/// What the mechanism holding a capped worker reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapApplied {
    /// Processes the kernel's OOM killer killed in the worker's cgroup.
    pub oom_kills: u64,
    /// The watchdog killed the worker.
    pub watchdog_fired: bool,
    /// The cgroup's peak charge (resident memory and page cache).
    pub cgroup_peak: Option<u64>,
}

impl ChildOutcome {
    /// One line for a failure report: how it ended and its last stderr line.
    pub fn failure_summary(&self) -> String {
        match self.stderr_tail.last() {
            Some(line) => format!("worker {}: {}", self.exit.describe(), line.trim()),
            None => format!("worker {}", self.exit.describe()),
        }
    }
}

/// How to start a worker: the program and its arguments (e.g. `frontier worker eval`), and
/// whether its stderr (its log) is shown as it comes.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    pub show_stderr: bool,
    /// Whether the worker memory-maps its model (a cap that counts address space needs it off).
    pub uses_mmap: bool,
    /// When this turns true (the run is being stopped), the worker is sent SIGTERM: a
    /// signal to the parent alone must not leave its worker running.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Sends the worker SIGTERM once `stop` turns true, until `done`.
fn watch_stop(pid: libc::pid_t, stop: Arc<AtomicBool>, done: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            if stop.load(Ordering::SeqCst) {
                // SAFETY: kill has no memory preconditions; the pid is our unreaped child
                // (this thread is joined before the reaping), so it cannot be reused.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    })
}

/// Runs a worker: writes `request` as one JSON line to its stdin (straight into the pipe,
/// and dropped once written: a full MMLU job is ~100 MB), calls `on_event` for each event
/// line it prints, and reaps it. A memory cap, when given, holds the worker from its start;
/// a cap that needs mmap off refuses a worker that maps its model.
pub fn run_worker<R: Serialize, E: DeserializeOwned>(
    command: &WorkerCommand,
    request: R,
    cap: Option<&MemCap>,
    mut on_event: impl FnMut(E),
) -> Result<ChildOutcome> {
    if let Some(cap) = cap {
        if cap.mechanism.needs_no_mmap() && command.uses_mmap {
            anyhow::bail!(
                "internal: a {} cap needs the model read with mmap off",
                cap.mechanism.as_str()
            );
        }
    }
    let enforcer = cap.map(|c| Enforcer::new(*c)).transpose()?;
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(e) = &enforcer {
        e.configure(&mut cmd);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting a frontier worker process")?;
    let pid = child.id() as libc::pid_t;
    let sampler = Sampler::start(pid, enforcer.as_ref().and_then(Enforcer::watchdog_limit));
    let ended = Arc::new(AtomicBool::new(false));
    let stopper = command
        .stop
        .clone()
        .map(|stop| watch_stop(pid, stop, ended.clone()));

    let stdin = child.stdin.take().context("worker stdin")?;
    let mut job = BufWriter::new(stdin);
    // A worker that dies at once closes its stdin; its exit status says why.
    let _ = serde_json::to_writer(&mut job, &request)
        .map_err(std::io::Error::from)
        .and_then(|_| job.write_all(b"\n"))
        .and_then(|_| job.flush());
    drop(job);
    drop(request);

    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr = child.stderr.take().context("worker stderr")?;
    let tail_writer = tail.clone();
    let verbose = command.show_stderr;
    let stderr_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if verbose {
                eprintln!("{line}");
            }
            let Ok(mut t) = tail_writer.lock() else { break };
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    });

    let stdout = child.stdout.take().context("worker stdout")?;
    let mut failure = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Frame<E>>(&line) {
            Ok(Frame::Event(event)) => on_event(event),
            Ok(Frame::Failed(f)) => failure = Some(f),
            Err(e) => tracing::warn!(
                "ignoring a line the worker printed that is not an event ({e}): {line}"
            ),
        }
    }

    let (sampled, watchdog_fired) = sampler.finish();
    ended.store(true, Ordering::SeqCst);
    if let Some(t) = stopper {
        let _ = t.join();
    }
    let (exit, ru) = wait4(pid)?;
    let _ = stderr_thread.join();
    let stderr_tail = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    let cap = enforcer.as_ref().map(|e| CapApplied {
        oom_kills: e.oom_kills(),
        watchdog_fired,
        cgroup_peak: e.cgroup_peak(),
    });
    Ok(ChildOutcome {
        exit,
        failure,
        peak_rss_bytes: maxrss_bytes(&ru),
        stderr_tail,
        wall: start.elapsed(),
        sampled,
        major_faults: ru.ru_majflt.max(0) as u64,
        cap,
    })
}

/// Reaps `pid` and returns how it ended and its resource use (peak RSS, page faults).
fn wait4(pid: libc::pid_t) -> Result<(ChildExit, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waiting for the worker process");
        }
    }
    let exit = if libc::WIFSIGNALED(status) {
        ChildExit::Signal(libc::WTERMSIG(status))
    } else {
        ChildExit::Code(libc::WEXITSTATUS(status))
    };
    Ok((exit, ru))
}
