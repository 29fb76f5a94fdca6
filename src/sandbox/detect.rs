//! Finding out which protections hold on this machine: look for bwrap, a writable pids
//! cgroup and a Python interpreter, then run a probe program through each candidate
//! configuration, strongest first, and keep the first one that works.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::sandbox::bwrap;
use crate::sandbox::outcome::Verdict;
use crate::sandbox::policy::{BackendKind, Priority, SandboxPolicy};
use crate::sandbox::protections::{BwrapInfo, ProcessLimit, Protections};
use crate::sandbox::python::{self, Interpreter};
use crate::sandbox::run;
use frontier_process::cgroup::{self, Controller};
use frontier_process::limits::NOBODY;

/// The environment variable that forces a backend.
pub(crate) const BACKEND_ENV: &str = "FRONTIER_SANDBOX";

/// The probe prints this marker, its uid and its network interfaces.
const PROBE_MARKER: &str = "frontier-sandbox-probe";

/// The probe program: proves the interpreter starts, and shows which network it sees.
const PROBE: &str = "import os, socket\nnames = sorted(n for _, n in socket.if_nameindex())\nprint('frontier-sandbox-probe', os.getuid(), ','.join(names))\n";

/// Longest a probe may run.
const PROBE_TIMEOUT_MS: u64 = 10_000;

/// Which backend the caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preference {
    /// The strongest that works.
    Auto,
    /// This one or nothing.
    Only(BackendKind),
}

/// The backend `FRONTIER_SANDBOX` asks for.
pub(crate) fn preference_from_env() -> Result<Preference> {
    parse_preference(&std::env::var(BACKEND_ENV).unwrap_or_default())
}

/// A `FRONTIER_SANDBOX` value: empty or "auto", "bwrap", or "rlimits".
fn parse_preference(value: &str) -> Result<Preference> {
    match value {
        "" | "auto" => Ok(Preference::Auto),
        "bwrap" => Ok(Preference::Only(BackendKind::Bwrap)),
        "rlimits" => Ok(Preference::Only(BackendKind::RlimitsOnly)),
        other => bail!("{BACKEND_ENV}={other:?}: expected bwrap, rlimits or auto"),
    }
}

/// The outcome of detection.
#[derive(Debug, Clone)]
pub(crate) struct Detected {
    pub protections: Protections,
    /// Whether the probe program ran under these protections.
    pub works: bool,
}

impl Protections {
    /// What a sandbox made with `policy` would enforce on this machine, honouring
    /// `FRONTIER_SANDBOX`. Runs a probe program through each candidate configuration.
    pub fn detect(policy: &SandboxPolicy) -> Protections {
        let (preference, env_note) = match preference_from_env() {
            Ok(p) => (p, None),
            Err(err) => (Preference::Auto, Some(format!("{err:#}; ignored"))),
        };
        let mut detected = probe(policy, preference);
        detected.protections.notes.extend(env_note);
        detected.protections
    }
}

/// Try the candidate configurations allowed by `preference`, strongest first.
pub(crate) fn probe(policy: &SandboxPolicy, preference: Preference) -> Detected {
    let mut notes = Vec::new();
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let home = std::env::var_os("HOME").map(|h| {
        let h = PathBuf::from(h);
        h.canonicalize().unwrap_or(h)
    });
    let hidden = python::hidden_dirs(home.as_deref());
    let interpreter = python::resolve(&hidden).unwrap_or_else(|err| {
        notes.push(format!("{err:#}"));
        Interpreter {
            executable: PathBuf::from("/usr/bin/python3"),
            binds: Vec::new(),
            note: "not found".to_string(),
        }
    });
    let cgroup_parent = cgroup::find_parent(Controller::Pids);
    if cgroup_parent.is_none() {
        notes.push("no writable pids cgroup (needs root and cgroup v1 pids, or v2 with the pids controller)".to_string());
    }
    let memory_cgroup = cgroup::find_parent(Controller::Memory);
    if memory_cgroup.is_none() {
        notes.push("no writable memory cgroup: memory is capped per process only".to_string());
    }
    let base = Protections {
        backend: BackendKind::RlimitsOnly,
        bwrap: bwrap::find(),
        python: interpreter.executable.clone(),
        python_note: interpreter.note.clone(),
        python_binds: interpreter.binds.clone(),
        extra_hidden_home: python::extra_home(home.as_deref()),
        run_as_uid: None,
        pid_namespace: false,
        network_isolated: false,
        read_only_filesystem: false,
        home_hidden: false,
        capabilities_dropped: false,
        nested_userns_blocked: false,
        rlimits: true,
        process_limit: ProcessLimit::Unlimited,
        memory_cgroup,
        new_session: true,
        scrubbed_environment: true,
        notes: Vec::new(),
        policy: policy.clone(),
    };

    if preference != Preference::Only(BackendKind::RlimitsOnly) {
        match base.bwrap.clone() {
            Some(info) => {
                for candidate in bwrap_candidates(&base, &info, euid, cgroup_parent.clone()) {
                    match self_test(&candidate) {
                        Ok(network_isolated) => {
                            let mut protections = Protections {
                                network_isolated,
                                ..candidate
                            };
                            protections.notes.extend(notes);
                            return Detected {
                                protections,
                                works: true,
                            };
                        }
                        Err(err) => notes.push(format!(
                            "bwrap as {}{} failed its self-test: {err:#}",
                            describe_uid(candidate.run_as_uid, euid),
                            if candidate.nested_userns_blocked {
                                " with --disable-userns"
                            } else {
                                ""
                            },
                        )),
                    }
                }
            }
            None => notes
                .push("bwrap not found on PATH or in /usr/bin (install bubblewrap)".to_string()),
        }
    }
    rlimits_detected(base, euid, cgroup_parent, notes)
}

/// bwrap configurations to try, strongest first: as root, dropping to nobody (needs
/// unprivileged user namespaces) before staying root with all capabilities dropped; with
/// `--disable-userns` before without.
fn bwrap_candidates(
    base: &Protections,
    info: &BwrapInfo,
    euid: u32,
    cgroup_parent: Option<PathBuf>,
) -> Vec<Protections> {
    let can_block = bwrap::supports_disable_userns(&info.path);
    let mut users = vec![None];
    if euid == 0 {
        users.insert(0, Some(NOBODY));
    }
    let mut candidates = Vec::new();
    for run_as in users {
        let blocks: &[bool] = if can_block { &[true, false] } else { &[false] };
        for &block in blocks {
            candidates.push(Protections {
                backend: BackendKind::Bwrap,
                run_as_uid: run_as,
                pid_namespace: true,
                network_isolated: true,
                read_only_filesystem: true,
                home_hidden: true,
                capabilities_dropped: true,
                nested_userns_blocked: block,
                process_limit: process_limit(cgroup_parent.clone(), run_as.unwrap_or(euid)),
                ..base.clone()
            });
        }
    }
    candidates
}

/// The rlimits-only configuration: as nobody when we are root, with a new network
/// namespace when `unshare` is allowed.
fn rlimits_detected(
    base: Protections,
    euid: u32,
    cgroup_parent: Option<PathBuf>,
    mut notes: Vec<String>,
) -> Detected {
    let run_as = if euid == 0 { Some(NOBODY) } else { None };
    let candidate = Protections {
        backend: BackendKind::RlimitsOnly,
        run_as_uid: run_as,
        capabilities_dropped: run_as.unwrap_or(euid) != 0,
        process_limit: process_limit(cgroup_parent, run_as.unwrap_or(euid)),
        ..base
    };
    let with_net = Protections {
        network_isolated: true,
        ..candidate.clone()
    };
    let (mut protections, works) = match self_test(&with_net) {
        Ok(isolated) => (
            Protections {
                network_isolated: isolated,
                ..with_net
            },
            true,
        ),
        Err(err) => {
            notes.push(format!(
                "no new network namespace for the rlimits backend: {err:#}"
            ));
            match self_test(&candidate) {
                Ok(_) => (candidate, true),
                Err(err) => {
                    notes.push(format!("the rlimits backend failed its self-test: {err:#}"));
                    (candidate, false)
                }
            }
        }
    };
    notes.push(format!(
        "rlimits only: the program can read whatever uid {} can read and write wherever it may",
        run_as.unwrap_or(euid)
    ));
    protections.notes = notes;
    Detected { protections, works }
}

/// A pids cgroup when one can be made; else `RLIMIT_NPROC`, which holds only when the
/// program does not run as root.
fn process_limit(cgroup_parent: Option<PathBuf>, program_uid: u32) -> ProcessLimit {
    match cgroup_parent {
        Some(parent) => ProcessLimit::PidsCgroup { parent },
        None if program_uid != 0 => ProcessLimit::RlimitNproc { uid: program_uid },
        None => ProcessLimit::Unlimited,
    }
}

/// Run the probe program under `candidate`. Ok(true) when it saw no network but loopback.
fn self_test(candidate: &Protections) -> Result<bool> {
    let mut probe = candidate.clone();
    probe.policy.wall_timeout_ms = probe.policy.wall_timeout_ms.min(PROBE_TIMEOUT_MS);
    let outcome = run::run(&probe, &std::env::temp_dir(), PROBE, Priority::Normal)?;
    let line = outcome
        .stdout_tail
        .lines()
        .find(|l| l.starts_with(PROBE_MARKER));
    match (outcome.verdict, line) {
        (Verdict::Pass, Some(line)) => {
            let interfaces = line.split(' ').nth(2).unwrap_or("");
            Ok(interfaces.is_empty() || interfaces == "lo")
        }
        _ => bail!(
            "{}: {}",
            outcome.reason,
            outcome.stderr_tail.lines().last().unwrap_or("")
        ),
    }
}

fn describe_uid(run_as: Option<u32>, euid: u32) -> String {
    match run_as {
        Some(uid) => format!("uid {uid}"),
        None => format!("uid {euid}"),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn backend_names_in_the_environment() {
        assert_eq!(parse_preference("").unwrap(), Preference::Auto);
        assert_eq!(parse_preference("auto").unwrap(), Preference::Auto);
        assert_eq!(
            parse_preference("bwrap").unwrap(),
            Preference::Only(BackendKind::Bwrap)
        );
        assert_eq!(
            parse_preference("rlimits").unwrap(),
            Preference::Only(BackendKind::RlimitsOnly)
        );
        let err = parse_preference("docker").unwrap_err().to_string();
        assert!(err.contains("FRONTIER_SANDBOX"), "{err}");
    }

    #[test]
    fn root_without_cgroup_has_no_process_limit() {
        assert_eq!(process_limit(None, 0), ProcessLimit::Unlimited);
        assert_eq!(
            process_limit(None, 1000),
            ProcessLimit::RlimitNproc { uid: 1000 }
        );
        let parent = PathBuf::from("/sys/fs/cgroup/pids");
        assert_eq!(
            process_limit(Some(parent.clone()), 0),
            ProcessLimit::PidsCgroup { parent }
        );
    }
}
