//! What a run ended as ([`Verdict`], [`Outcome`]) and the pure rules that turn an exit
//! status into a verdict and a one-line reason.

use serde::{Deserialize, Serialize};

/// How a program did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Exit code 0.
    Pass,
    /// A non-zero exit code (an exception, a failed assert, `sys.exit(1)`).
    Fail,
    /// The wall-clock or the CPU-time limit was reached.
    Timeout,
    /// Ended by any other signal, or killed for printing too much.
    Killed,
}

/// The result of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub verdict: Verdict,
    /// One line for people, e.g. "exit code 1: AssertionError".
    pub reason: String,
    /// The program's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended the program, when one did.
    pub signal: Option<i32>,
    /// The last [`TAIL_BYTES`] of stdout.
    pub stdout_tail: String,
    /// The last [`TAIL_BYTES`] of stderr.
    pub stderr_tail: String,
    /// From spawn to exit.
    pub duration_ms: u64,
}

impl Outcome {
    /// Ended by the wall clock (not by its CPU-time limit): the one verdict that depends on
    /// how much of the CPU the program got.
    pub fn hit_wall_clock(&self) -> bool {
        self.verdict == Verdict::Timeout && self.signal != Some(libc::SIGXCPU)
    }
}

/// How much of each output stream an [`Outcome`] keeps.
pub const TAIL_BYTES: usize = 2048;

/// Why the supervisor killed a run itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillCause {
    WallTimeout,
    OutputLimit,
}

/// How the process the sandbox spawned ended, already decoded: a bwrap exit code of 128+n
/// has been turned into signal n by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Exited(i32),
    Signaled(i32),
}

/// The limits the reason strings mention.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitsForReason {
    pub wall_timeout_ms: u64,
    pub cpu_seconds: u64,
    pub max_output_bytes: u64,
    pub memory_bytes: u64,
}

/// Verdict, reason, exit code and signal for a run. A kill by the supervisor wins over
/// whatever status the kill produced; `oom_killed` (the run's memory cgroup saw the kernel
/// kill one of its processes) only changes the reason.
pub(crate) fn classify(
    ending: Ending,
    killed: Option<KillCause>,
    oom_killed: bool,
    limits: LimitsForReason,
    stderr_tail: &str,
) -> (Verdict, String, Option<i32>, Option<i32>) {
    let (exit_code, signal) = match ending {
        Ending::Exited(code) => (Some(code), None),
        Ending::Signaled(sig) => (None, Some(sig)),
    };
    let (verdict, reason) = match (killed, ending) {
        (Some(KillCause::OutputLimit), _) => (
            Verdict::Killed,
            format!(
                "output limit {} exceeded",
                human_bytes(limits.max_output_bytes)
            ),
        ),
        (Some(KillCause::WallTimeout), _) => (
            Verdict::Timeout,
            format!(
                "wall-clock timeout after {:.1} s",
                limits.wall_timeout_ms as f64 / 1000.0
            ),
        ),
        (None, Ending::Exited(0)) => (Verdict::Pass, "exit code 0".to_string()),
        (None, Ending::Exited(code)) => (Verdict::Fail, fail_reason(code, stderr_tail)),
        (None, Ending::Signaled(sig)) if sig == libc::SIGXCPU => (
            Verdict::Timeout,
            format!(
                "CPU time limit of {} s exceeded (SIGXCPU)",
                limits.cpu_seconds
            ),
        ),
        (None, Ending::Signaled(libc::SIGKILL)) if oom_killed => (
            Verdict::Killed,
            format!(
                "killed by SIGKILL (memory: the run passed {})",
                human_bytes(limits.memory_bytes)
            ),
        ),
        (None, Ending::Signaled(sig)) => (Verdict::Killed, signal_reason(sig)),
    };
    let reason = if oom_killed && !reason.contains("(memory") {
        format!("{reason} (a process of the run was killed for memory)")
    } else {
        reason
    };
    (verdict, reason, exit_code, signal)
}

/// "exit code N", plus the exception from the last line of stderr when there is one.
fn fail_reason(code: i32, stderr_tail: &str) -> String {
    match exception_line(stderr_tail) {
        Some(line) => format!("exit code {code}: {line}"),
        None => format!("exit code {code}"),
    }
}

/// The last non-empty line of stderr if it looks like Python's final traceback line
/// (`Name` or `Name: message`, where Name may be dotted), cut to 200 characters.
pub(crate) fn exception_line(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let name = line.split(':').next().unwrap_or("");
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !(first_ok && rest_ok) {
        return None;
    }
    Some(line.chars().take(200).collect())
}

/// "killed by SIGKILL", with a hint for the signals our limits send.
fn signal_reason(sig: i32) -> String {
    let hint = match sig {
        libc::SIGXFSZ => " (file size limit)",
        libc::SIGKILL => " (CPU hard limit, or killed from outside)",
        _ => "",
    };
    format!("killed by {}{hint}", signal_name(sig))
}

/// The usual name of a signal, or "signal N".
pub(crate) fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// "1 MiB", "16 MiB", "2 GiB", or plain bytes when not a whole number of MiB.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    const LIMITS: LimitsForReason = LimitsForReason {
        wall_timeout_ms: 2_000,
        cpu_seconds: 1,
        max_output_bytes: 1024 * 1024,
        memory_bytes: 2 * 1024 * 1024 * 1024,
    };

    #[test]
    fn exit_zero_passes() {
        let (v, r, code, sig) = classify(Ending::Exited(0), None, false, LIMITS, "");
        assert_eq!(
            (v, r.as_str(), code, sig),
            (Verdict::Pass, "exit code 0", Some(0), None)
        );
    }

    #[test]
    fn failure_names_the_exception() {
        let stderr = "Traceback (most recent call last):\n  File \"/sandbox/main.py\", line 2, in <module>\n    assert add(2,3)==6\nAssertionError\n";
        let (v, r, ..) = classify(Ending::Exited(1), None, false, LIMITS, stderr);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(r, "exit code 1: AssertionError");
    }

    #[test]
    fn failure_without_traceback_has_no_exception() {
        let (_, r, ..) = classify(Ending::Exited(3), None, false, LIMITS, "some words here\n");
        assert_eq!(r, "exit code 3");
    }

    #[test]
    fn exception_with_message_and_dotted_name() {
        assert_eq!(
            exception_line("x\nurllib.error.URLError: <urlopen error>\n\n").as_deref(),
            Some("urllib.error.URLError: <urlopen error>")
        );
    }

    #[test]
    fn sigxcpu_is_a_timeout_and_other_signals_are_kills() {
        let (v, r, code, sig) = classify(Ending::Signaled(libc::SIGXCPU), None, false, LIMITS, "");
        assert_eq!(v, Verdict::Timeout);
        assert!(r.contains("SIGXCPU"), "{r}");
        assert_eq!((code, sig), (None, Some(libc::SIGXCPU)));
        let (v, r, ..) = classify(Ending::Signaled(libc::SIGSEGV), None, false, LIMITS, "");
        assert_eq!((v, r.as_str()), (Verdict::Killed, "killed by SIGSEGV"));
    }

    #[test]
    fn supervisor_kills_win_over_the_status() {
        let (v, r, ..) = classify(
            Ending::Signaled(libc::SIGKILL),
            Some(KillCause::WallTimeout),
            false,
            LIMITS,
            "",
        );
        assert_eq!(
            (v, r.as_str()),
            (Verdict::Timeout, "wall-clock timeout after 2.0 s")
        );
        let (v, r, ..) = classify(
            Ending::Exited(0),
            Some(KillCause::OutputLimit),
            false,
            LIMITS,
            "",
        );
        assert_eq!(
            (v, r.as_str()),
            (Verdict::Killed, "output limit 1 MiB exceeded")
        );
    }

    #[test]
    fn oom_kills_are_named() {
        let (v, r, ..) = classify(Ending::Signaled(libc::SIGKILL), None, true, LIMITS, "");
        assert_eq!(v, Verdict::Killed);
        assert_eq!(r, "killed by SIGKILL (memory: the run passed 2 GiB)");
        let (v, r, ..) = classify(Ending::Exited(1), None, true, LIMITS, "SystemExit: 1\n");
        assert_eq!(v, Verdict::Fail);
        assert_eq!(
            r,
            "exit code 1: SystemExit: 1 (a process of the run was killed for memory)"
        );
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(2 * 1024 * 1024 * 1024), "2 GiB");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
