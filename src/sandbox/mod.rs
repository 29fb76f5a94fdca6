//! Running untrusted, model-generated Python (HumanEval completions) with hard limits.
//!
//! Each [`Sandbox::run_python`] writes the program to a fresh temp dir and runs it in its
//! own process tree with a scrubbed environment, a new session, rlimits (address space,
//! CPU, file size, open files, processes), stdin from /dev/null, a wall-clock timeout that
//! kills every process of the run, and an output cap. With bubblewrap (the preferred
//! backend) it also gets new pid, network, mount, ipc, uts, cgroup and user namespaces, a
//! read-only view of the filesystem except its temp dir (at `/sandbox`), and empty
//! `/home`, `/root`, `/tmp`, `/run` and `$HOME`. When we are root the program runs as
//! uid 65534, a per-run pids cgroup caps its processes (root ignores `RLIMIT_NPROC`) and a
//! per-run memory cgroup the memory of all of them together (`RLIMIT_AS` is per process).
//!
//! [`Protections`] says what actually holds on this machine; [`Sandbox::new`] refuses a
//! weak sandbox unless the policy allows it (`--allow-weak-sandbox`).
//!
//! Layout: `policy.rs` (limits), `protections.rs` (what holds, the report), `detect.rs`
//! (finding it out), `python.rs` (the interpreter), `bwrap.rs` (bwrap's command line),
//! `limits.rs` (what the child does before exec), `cgroup.rs` (per-run pids cgroup),
//! `run.rs` (one run), `supervise.rs` (watching it: exit, wall clock, kills), `output.rs`
//! (draining output), `outcome.rs` (verdicts).

mod bwrap;
mod detect;
mod outcome;
mod output;
mod policy;
mod protections;
mod python;
mod run;
mod supervise;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::sandbox::detect::{preference_from_env, probe, Preference, BACKEND_ENV};

pub use crate::sandbox::outcome::{Outcome, Verdict, TAIL_BYTES};
pub use crate::sandbox::policy::{BackendKind, Priority, SandboxPolicy};
pub use crate::sandbox::protections::{BwrapInfo, ProcessLimit, Protections};

/// Runs Python programs under fixed protections. Cheap to share: `run_python` takes
/// `&self` and may be called from many threads at once.
#[derive(Debug, Clone)]
pub struct Sandbox {
    protections: Protections,
    /// Where each run's temp dir is made.
    temp_root: PathBuf,
}

impl Sandbox {
    /// The strongest sandbox that works here, or the one `FRONTIER_SANDBOX` (bwrap,
    /// rlimits, auto) asks for. Fails when only a weak one works and `policy.allow_weak` is
    /// false, or when nothing works.
    pub fn new(policy: SandboxPolicy) -> Result<Sandbox> {
        let preference = preference_from_env()?;
        Sandbox::build(policy, preference)
    }

    /// A sandbox with exactly this backend, whatever `FRONTIER_SANDBOX` says; the weak
    /// check still applies.
    pub fn with_backend(policy: SandboxPolicy, backend: BackendKind) -> Result<Sandbox> {
        Sandbox::build(policy, Preference::Only(backend))
    }

    fn build(policy: SandboxPolicy, preference: Preference) -> Result<Sandbox> {
        let allow_weak = policy.allow_weak;
        let detected = probe(&policy, preference);
        let protections = detected.protections;
        let notes = protections.notes.join("; ");
        if !detected.works {
            bail!("no working sandbox on this machine: {notes}");
        }
        if let Preference::Only(wanted) = preference {
            if protections.backend != wanted {
                bail!(
                    "the {} sandbox was asked for ({BACKEND_ENV} or the caller) but does not work here: {notes}",
                    wanted.name()
                );
            }
        }
        if !protections.is_strong() && !allow_weak {
            bail!(
                "refusing to run untrusted code in a weak sandbox: the {} backend lacks {} ({notes}). \
                 Install bubblewrap and allow user namespaces for a strong one, or pass \
                 --allow-weak-sandbox to run with only what holds",
                protections.backend.name(),
                protections.missing().join(", "),
            );
        }
        tracing::debug!("sandbox: {}", protections.report());
        Ok(Sandbox {
            protections,
            temp_root: std::env::temp_dir(),
        })
    }

    /// Make each run's temp dir under `dir` instead of the system temp dir. The directory
    /// must be searchable by the sandbox user (uid 65534 when we are root).
    pub fn with_temp_root(mut self, dir: impl Into<PathBuf>) -> Sandbox {
        self.temp_root = dir.into();
        self
    }

    /// What holds for every run.
    pub fn protections(&self) -> &Protections {
        &self.protections
    }

    /// Run `program` with `python3 -S -s -B` in a fresh temp dir. `Err` only when the
    /// sandbox itself fails (cannot spawn, cannot set up); whatever the program does is an
    /// [`Outcome`].
    pub fn run_python(&self, program: &str) -> Result<Outcome> {
        self.run_python_at(program, Priority::Normal)
    }

    /// [`Sandbox::run_python`] at a CPU priority.
    pub fn run_python_at(&self, program: &str, priority: Priority) -> Result<Outcome> {
        run::run(&self.protections, &self.temp_root, program, priority)
    }
}
