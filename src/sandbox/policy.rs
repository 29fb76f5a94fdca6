//! The limits a sandboxed run gets ([`SandboxPolicy`]) and the two ways of enforcing them
//! ([`BackendKind`]).

use serde::{Deserialize, Serialize};

/// One mebibyte, for the defaults below.
const MIB: u64 = 1024 * 1024;

/// Hard limits for one run of untrusted code. Every run gets all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxPolicy {
    /// Address space of each process (`RLIMIT_AS`), in bytes.
    pub memory_bytes: u64,
    /// CPU time of each process (`RLIMIT_CPU`), in seconds; past it the process gets `SIGXCPU`.
    pub cpu_seconds: u64,
    /// Wall-clock limit for the whole run, in milliseconds; past it every process of the run
    /// is killed.
    pub wall_timeout_ms: u64,
    /// Processes (and threads) the program may have at once, not counting the sandbox's own
    /// helper processes.
    pub max_processes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`), in bytes.
    pub max_file_bytes: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub max_open_files: u64,
    /// Bytes of stdout plus stderr the run may print; past it the run is killed.
    pub max_output_bytes: u64,
    /// Run even when only rlimits are available (no namespaces, no read-only filesystem).
    pub allow_weak: bool,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            memory_bytes: 2 * 1024 * MIB,
            cpu_seconds: 10,
            wall_timeout_ms: 10_000,
            max_processes: 32,
            max_file_bytes: 16 * MIB,
            max_open_files: 64,
            max_output_bytes: MIB,
            allow_weak: false,
        }
    }
}

/// How much of the CPU a run takes from the rest of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The caller's own.
    Normal,
    /// The lowest (nice 19, for the program and for its session's autogroup): the run gets
    /// the CPU time other work leaves, so checking a program does not slow a model generating
    /// on the same cores (llama-batched-bench, 4 sequences, 2 threads on 2 cores, beside one
    /// busy Python loop: 24-28 generated tokens/s with the loop at nice 0, 97-117 at nice 19,
    /// 95-98 alone; a loop in a session of its own slowed llama.cpp 17x unless its autogroup
    /// was at nice 19 too). A program starved this way may reach the wall clock where it
    /// would not alone.
    Background,
}

/// How the limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// bubblewrap: new namespaces (pid, network, mount, ipc, uts, cgroup, user), a read-only
    /// root, hidden home directories, plus the rlimits.
    Bwrap,
    /// Only a new session, rlimits, a scrubbed environment and, when allowed, a new network
    /// namespace. Weak: the program sees and can write whatever its user can.
    RlimitsOnly,
}

impl BackendKind {
    /// The name used in `FRONTIER_SANDBOX` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Bwrap => "bwrap",
            BackendKind::RlimitsOnly => "rlimits",
        }
    }
}
