//! What a sandbox actually enforces on this machine ([`Protections`]), found by
//! `detect.rs`, and the report `frontier sandbox-check` prints.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sandbox::outcome::human_bytes;
use crate::sandbox::policy::{BackendKind, SandboxPolicy};

/// The bubblewrap binary that was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BwrapInfo {
    pub path: PathBuf,
    /// As `bwrap --version` prints it, e.g. "bubblewrap 0.8.0".
    pub version: String,
}

/// How the number of processes of a run is capped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mechanism", rename_all = "snake_case")]
pub enum ProcessLimit {
    /// A fresh `pids` cgroup per run, created under `parent`, with `pids.max` set. Holds for
    /// root too, and counts only the run's own processes.
    PidsCgroup { parent: PathBuf },
    /// `RLIMIT_NPROC` while running as `uid`. The kernel ignores it for root, and it counts
    /// every process of that uid, so it is set to the uid's current count plus the limit.
    RlimitNproc { uid: u32 },
    /// Nothing caps the number of processes (root without a writable pids cgroup); only the
    /// wall-clock timeout ends a fork bomb.
    Unlimited,
}

/// What holds for every run of a sandbox. Fields are facts found on this machine (and
/// checked by running a probe program through the sandbox), not wishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protections {
    pub backend: BackendKind,
    /// The bubblewrap found, used or not.
    pub bwrap: Option<BwrapInfo>,
    /// The interpreter each run executes.
    pub python: PathBuf,
    /// How that interpreter was chosen.
    pub python_note: String,
    /// Interpreter directories bound back in, read-only, after the home directories are hidden.
    pub python_binds: Vec<PathBuf>,
    /// Other than the standard hidden directories: the user's `$HOME`, hidden with a tmpfs.
    pub extra_hidden_home: Option<PathBuf>,
    /// The uid the program runs as when the sandbox drops root (65534), else `None`.
    pub run_as_uid: Option<u32>,
    /// A new pid namespace: the program sees and can signal only its own processes.
    pub pid_namespace: bool,
    /// No network: a new network namespace with only loopback (checked by the probe).
    pub network_isolated: bool,
    /// The whole filesystem is read-only except the run's temp dir.
    pub read_only_filesystem: bool,
    /// /home, /root and `$HOME` are empty.
    pub home_hidden: bool,
    /// No capabilities and no way to gain privileges (bwrap `--cap-drop ALL` or a uid that
    /// is not root, plus no-new-privileges).
    pub capabilities_dropped: bool,
    /// The program cannot create user namespaces of its own (bwrap `--disable-userns`).
    pub nested_userns_blocked: bool,
    /// Address space, CPU, file size, open files (and core dumps off).
    pub rlimits: bool,
    pub process_limit: ProcessLimit,
    /// Where a per-run memory cgroup is made, capping the resident memory of the whole run
    /// at `memory_bytes`; `None` when no memory cgroup is writable (then only each process
    /// is capped, by `RLIMIT_AS`).
    pub memory_cgroup: Option<PathBuf>,
    /// The program runs in a new session and process group (`setsid`).
    pub new_session: bool,
    /// The environment holds only PATH, HOME, LANG, PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED
    /// (and PWD, which bwrap always sets).
    pub scrubbed_environment: bool,
    /// Why something does not hold, or why a stronger option was not used.
    pub notes: Vec<String>,
    /// The limits these protections were detected with.
    pub policy: SandboxPolicy,
}

impl Protections {
    /// The backend runs use.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// True when nothing the program does can reach outside its run: bwrap with every
    /// namespace protection and a process limit that holds.
    pub fn is_strong(&self) -> bool {
        self.missing().is_empty()
    }

    /// The protections that do not hold, in words, for error messages.
    pub fn missing(&self) -> Vec<&'static str> {
        let checks = [
            (self.backend == BackendKind::Bwrap, "bubblewrap"),
            (self.pid_namespace, "pid namespace"),
            (self.network_isolated, "network isolation"),
            (self.read_only_filesystem, "read-only filesystem"),
            (self.home_hidden, "hidden home directories"),
            (self.capabilities_dropped, "dropped capabilities"),
            (self.rlimits, "rlimits"),
            (
                self.process_limit != ProcessLimit::Unlimited,
                "process-count limit",
            ),
            (self.new_session, "new session"),
            (self.scrubbed_environment, "scrubbed environment"),
        ];
        checks
            .iter()
            .filter(|(holds, _)| !holds)
            .map(|(_, name)| *name)
            .collect()
    }

    /// A multi-line report for `frontier sandbox-check`.
    pub fn report(&self) -> String {
        let p = &self.policy;
        let mut out = String::new();
        let strength = if self.is_strong() { "strong" } else { "WEAK" };
        let _ = writeln!(out, "sandbox backend: {} ({strength})", self.backend.name());
        let bwrap = match &self.bwrap {
            Some(b) => format!("{} ({})", b.path.display(), b.version),
            None => "not found".to_string(),
        };
        line(&mut out, "bwrap", &bwrap);
        let python = format!("{} ({})", self.python.display(), self.python_note);
        line(&mut out, "python", &python);
        let user = match self.run_as_uid {
            Some(uid) => format!("uid {uid} (root dropped before the sandbox starts)"),
            None => format!("uid {} (unchanged)", current_uid()),
        };
        line(&mut out, "runs as", &user);
        line(&mut out, "pid namespace", yes_no(self.pid_namespace));
        let network = if self.network_isolated {
            "isolated (new network namespace, loopback only)"
        } else {
            "NOT isolated"
        };
        line(&mut out, "network", network);
        let fs = if self.read_only_filesystem {
            "read-only except the run's temp dir (mounted at /sandbox)"
        } else {
            "NOT read-only: writable wherever the user may write"
        };
        line(&mut out, "filesystem", fs);
        let home = if self.home_hidden {
            match &self.extra_hidden_home {
                Some(h) => format!(
                    "hidden (/home, /root, /tmp, /run and {} are empty)",
                    h.display()
                ),
                None => "hidden (/home, /root, /tmp and /run are empty)".to_string(),
            }
        } else {
            "NOT hidden".to_string()
        };
        line(&mut out, "home directories", &home);
        let caps = match (self.capabilities_dropped, self.nested_userns_blocked) {
            (true, true) => "none; no new privileges; no new user namespaces",
            (true, false) => "none; no new privileges (new user namespaces allowed)",
            (false, _) => "NOT dropped",
        };
        line(&mut out, "capabilities", caps);
        let rlimits = format!(
            "address space {}, CPU {} s, file size {}, {} open files, no core dumps",
            human_bytes(p.memory_bytes),
            p.cpu_seconds,
            human_bytes(p.max_file_bytes),
            p.max_open_files
        );
        line(&mut out, "rlimits", &rlimits);
        let memory = match &self.memory_cgroup {
            Some(parent) => format!(
                "whole run capped at {} by a memory cgroup per run under {}",
                human_bytes(p.memory_bytes),
                parent.display()
            ),
            None => format!(
                "NOT capped for the whole run (no writable memory cgroup): up to {} processes × {}",
                p.max_processes,
                human_bytes(p.memory_bytes)
            ),
        };
        line(&mut out, "memory", &memory);
        let procs = match &self.process_limit {
            ProcessLimit::PidsCgroup { parent } => format!(
                "pids cgroup per run under {} ({} processes)",
                parent.display(),
                p.max_processes
            ),
            ProcessLimit::RlimitNproc { uid } => format!(
                "RLIMIT_NPROC as uid {uid} ({} processes above what uid {uid} already runs)",
                p.max_processes
            ),
            ProcessLimit::Unlimited => "NONE (root without a writable pids cgroup)".to_string(),
        };
        line(&mut out, "process limit", &procs);
        line(&mut out, "new session", yes_no(self.new_session));
        let env = match (self.scrubbed_environment, self.backend) {
            (true, BackendKind::Bwrap) => {
                "scrubbed (PATH, HOME, LANG, PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED; bwrap adds PWD)"
            }
            (true, BackendKind::RlimitsOnly) => {
                "scrubbed (PATH, HOME, LANG, PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED only)"
            }
            (false, _) => "NOT scrubbed",
        };
        line(&mut out, "environment", env);
        let wall = format!(
            "{:.1} s, kills every process of the run",
            p.wall_timeout_ms as f64 / 1000.0
        );
        line(&mut out, "wall clock", &wall);
        let output = format!(
            "{} of stdout+stderr, then killed",
            human_bytes(p.max_output_bytes)
        );
        line(&mut out, "output", &output);
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        if !self.is_strong() {
            let _ = writeln!(out, "  missing: {}", self.missing().join(", "));
        }
        out
    }
}

/// One aligned "  label: value" line.
fn line(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {:<18} {value}", format!("{label}:"));
}

fn yes_no(holds: bool) -> &'static str {
    if holds {
        "yes"
    } else {
        "NO"
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}
