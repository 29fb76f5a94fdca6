//! Watching one running child: drain its output, wait for its exit, enforce the wall clock
//! and the output limit, and kill every process of the run.

use std::io;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::sandbox::outcome::{KillCause, TAIL_BYTES};
use crate::sandbox::output::{drain, Event, SharedTail};
use crate::sandbox::policy::SandboxPolicy;
use frontier_process::cgroup::RunCgroup;

/// How long a SIGKILLed run may take to be reported dead before it counts as a sandbox
/// failure.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// How long the output threads may take to see end-of-file once every process is dead.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What the supervisor saw.
pub(crate) struct Watched {
    pub killed: Option<KillCause>,
    /// From spawn to the exit of the spawned process.
    pub exited_after: Duration,
    pub stdout: SharedTail,
    pub stderr: SharedTail,
}

/// Drain output, wait for the exit, enforce the wall clock and the output limit, and kill
/// every process of the run before the spawned process is reaped (so no pid it held can be
/// reused under us).
pub(crate) fn supervise(
    child: &mut Child,
    cgroups: &[&RunCgroup],
    policy: &SandboxPolicy,
) -> Result<Watched> {
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let total = Arc::new(AtomicU64::new(0));
    let limit = policy.max_output_bytes;
    let stdout = child.stdout.take().context("stdout was not piped")?;
    let stderr = child.stderr.take().context("stderr was not piped")?;
    let stdout = drain(
        "sandbox-stdout",
        stdout,
        TAIL_BYTES,
        total.clone(),
        limit,
        tx.clone(),
    )?;
    let stderr = drain(
        "sandbox-stderr",
        stderr,
        TAIL_BYTES,
        total.clone(),
        limit,
        tx.clone(),
    )?;
    spawn_waiter(pid, tx)?;

    let deadline = started + Duration::from_millis(policy.wall_timeout_ms);
    let mut killed = None;
    let mut killed_at: Option<Instant> = None;
    let mut drained = 0;
    loop {
        let wait = match killed_at {
            Some(at) => (at + KILL_GRACE).saturating_duration_since(Instant::now()),
            None => deadline.saturating_duration_since(Instant::now()),
        };
        match rx.recv_timeout(wait) {
            Ok(Event::Exited) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Event::Drained) => drained += 1,
            Ok(Event::OutputLimit) if killed.is_none() => {
                killed = Some(KillCause::OutputLimit);
                killed_at = Some(Instant::now());
                kill_run(pid, cgroups);
            }
            Ok(Event::OutputLimit) => {}
            Err(RecvTimeoutError::Timeout) if killed.is_none() => {
                killed = Some(KillCause::WallTimeout);
                killed_at = Some(Instant::now());
                kill_run(pid, cgroups);
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!("the sandboxed process {pid} did not die within {KILL_GRACE:?} of SIGKILL")
            }
        }
    }
    let exited_after = started.elapsed();
    // Whatever is left of the run (in rlimits mode a child may outlive the main process).
    kill_run(pid, cgroups);
    wait_drained(&rx, drained);
    if killed.is_none() && total.load(Ordering::SeqCst) > limit {
        // The limit was passed just before the exit; the run counts as killed all the same.
        killed = Some(KillCause::OutputLimit);
    }
    Ok(Watched {
        killed,
        exited_after,
        stdout,
        stderr,
    })
}

/// SIGKILL the spawned process, its process group and everything in its cgroup. Only
/// called while the spawned process is not yet reaped, so its pid is still ours.
fn kill_run(pid: libc::pid_t, cgroups: &[&RunCgroup]) {
    // SAFETY: kill and killpg have no memory preconditions; pid is our unreaped child and
    // the leader of its own process group (setsid in ChildSetup).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::killpg(pid, libc::SIGKILL);
    }
    for cgroup in cgroups {
        cgroup.signal_all();
    }
}

/// Wait, for a bounded time, until both output streams have reached end-of-file.
fn wait_drained(rx: &Receiver<Event>, mut drained: u32) {
    let until = Instant::now() + DRAIN_GRACE;
    while drained < 2 {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Event::Drained) => drained += 1,
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("sandbox output still open after the run ended; tails may be short");
                return;
            }
        }
    }
}

/// A thread that reports when `pid` exits without reaping it (`WNOWAIT`), so the
/// supervisor can still signal the pid and its group safely.
fn spawn_waiter(pid: libc::pid_t, events: Sender<Event>) -> Result<()> {
    thread::Builder::new()
        .name("sandbox-wait".to_string())
        .spawn(move || {
            loop {
                // SAFETY: info is a valid, zeroed siginfo_t for waitid to fill.
                let ret = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                if ret == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            let _ = events.send(Event::Exited);
        })
        .context("could not start the sandbox wait thread")?;
    Ok(())
}
