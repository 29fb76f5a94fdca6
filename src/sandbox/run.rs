//! One sandboxed run: a fresh temp dir with the program in it, the child spawned under the
//! chosen backend, its output drained, the wall clock watched, every process of the run
//! killed at the end, and the temp dir removed.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::sandbox::bwrap::{self, BwrapRun, SANDBOX_DIR};
use crate::sandbox::outcome::{classify, Ending, LimitsForReason, Outcome};
use crate::sandbox::output::lock;
use crate::sandbox::policy::{BackendKind, Priority};
use crate::sandbox::protections::{ProcessLimit, Protections};
use crate::sandbox::supervise::supervise;
use frontier_process::cgroup::{Controller, RunCgroup};
use frontier_process::limits::{tasks_of_uid, ChildSetup};

/// The program's file name inside the temp dir.
const PROGRAM_FILE: &str = "main.py";

/// Processes bwrap adds to a run: itself, and its init (pid 1) in the new pid namespace.
const BWRAP_HELPERS: u64 = 2;

/// Run `program` once under `protections` at `priority`, in a temp dir made under
/// `temp_root`.
pub(crate) fn run(
    protections: &Protections,
    temp_root: &Path,
    program: &str,
    priority: Priority,
) -> Result<Outcome> {
    let workdir = tempfile::Builder::new()
        .prefix("frontier-sandbox-")
        .tempdir_in(temp_root)
        .with_context(|| format!("could not create a temp dir in {}", temp_root.display()))?;
    fs::write(workdir.path().join(PROGRAM_FILE), program)
        .context("could not write the program to the temp dir")?;
    if let Some(uid) = protections.run_as_uid {
        std::os::unix::fs::chown(workdir.path(), Some(uid), Some(uid))
            .context("could not hand the temp dir to the sandbox user")?;
    }
    let outcome = run_in(protections, workdir.path(), priority);
    remove_workdir(workdir);
    outcome
}

/// Remove a run's temp dir. A program may have made directories unreadable (`chmod 0`),
/// which stops the removal unless we are root, so on failure give every directory back its
/// owner's permissions and try again.
fn remove_workdir(workdir: tempfile::TempDir) {
    let path = workdir.path().to_path_buf();
    if workdir.close().is_ok() {
        return;
    }
    restore_permissions(&path);
    if let Err(err) = fs::remove_dir_all(&path) {
        tracing::warn!(
            "could not remove the sandbox temp dir {}: {err}",
            path.display()
        );
    }
}

/// chmod u+rwx every directory under `dir` (symlinks are not followed).
fn restore_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            restore_permissions(&entry.path());
        }
    }
}

/// The part of a run that needs the temp dir to exist.
fn run_in(protections: &Protections, workdir: &Path, priority: Priority) -> Result<Outcome> {
    let policy = &protections.policy;
    let helpers = match protections.backend {
        BackendKind::Bwrap => BWRAP_HELPERS,
        BackendKind::RlimitsOnly => 0,
    };
    let max_tasks = policy.max_processes.saturating_add(helpers);
    let mut cgroups = Vec::new();
    if let ProcessLimit::PidsCgroup { parent } = &protections.process_limit {
        cgroups.push(RunCgroup::create(parent, Controller::Pids, max_tasks)?);
    }
    let memory_cgroup = match &protections.memory_cgroup {
        Some(parent) => Some(RunCgroup::create(
            parent,
            Controller::Memory,
            policy.memory_bytes,
        )?),
        None => None,
    };
    let nproc = match &protections.process_limit {
        ProcessLimit::RlimitNproc { uid } => Some(tasks_of_uid(*uid).saturating_add(max_tasks)),
        _ => None,
    };
    let all_cgroups: Vec<&RunCgroup> = cgroups.iter().chain(&memory_cgroup).collect();
    let mut setup = child_setup(protections, &all_cgroups, nproc, priority);
    let (mut command, status_pipe) = match protections.backend {
        BackendKind::Bwrap => {
            let (read, write) =
                bwrap::status_pipe().context("could not make bwrap's status pipe")?;
            setup.keep_fd = Some(write.as_raw_fd());
            (
                bwrap_command(protections, workdir, write.as_raw_fd())?,
                Some((read, write)),
            )
        }
        BackendKind::RlimitsOnly => (rlimits_command(protections, workdir), None),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: ChildSetup::apply only makes async-signal-safe system calls and does not
    // allocate, as code between fork and exec must.
    unsafe { command.pre_exec(move || setup.apply()) };
    let child = command.spawn().with_context(|| {
        format!(
            "could not start the sandbox ({})",
            command.get_program().to_string_lossy()
        )
    })?;
    // The child has its copy of the status pipe's write end; closing ours lets reads end.
    let status_read = status_pipe.map(|(read, write)| {
        drop(write);
        read
    });
    let mut child = ChildGuard(Some(child));
    let watched = supervise(child.get(), &all_cgroups, policy)?;
    let status = child.reap()?;
    let set_up = match status_read {
        Some(read) => match bwrap::init_pid(read) {
            Some(init_pid) => {
                bwrap::wait_for_namespace_end(init_pid);
                true
            }
            None => false,
        },
        None => true,
    };
    let stdout_tail = lock(&watched.stdout).text();
    let stderr_tail = lock(&watched.stderr).text();
    if !set_up && watched.killed.is_none() {
        let why = stderr_tail.lines().last().unwrap_or("no message");
        bail!("bwrap could not set up the sandbox: {why}");
    }
    let ending = decode_status(status, protections.backend);
    let limits = LimitsForReason {
        wall_timeout_ms: policy.wall_timeout_ms,
        cpu_seconds: policy.cpu_seconds,
        max_output_bytes: policy.max_output_bytes,
        memory_bytes: policy.memory_bytes,
    };
    let oom_killed = memory_cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
    let (verdict, reason, exit_code, signal) =
        classify(ending, watched.killed, oom_killed, limits, &stderr_tail);
    // Dropping the cgroups kills anything left in them and removes them.
    drop(all_cgroups);
    drop(cgroups);
    drop(memory_cgroup);
    Ok(Outcome {
        verdict,
        reason,
        exit_code,
        signal,
        stdout_tail,
        stderr_tail,
        duration_ms: watched.exited_after.as_millis() as u64,
    })
}

/// What the child applies to itself before exec: every limit of the policy, plus what the
/// backend does not do itself.
fn child_setup(
    protections: &Protections,
    cgroups: &[&RunCgroup],
    nproc: Option<u64>,
    priority: Priority,
) -> ChildSetup {
    let policy = &protections.policy;
    let rlimits_only = protections.backend == BackendKind::RlimitsOnly;
    ChildSetup {
        memory_bytes: policy.memory_bytes,
        cpu_seconds: policy.cpu_seconds,
        file_bytes: policy.max_file_bytes,
        open_files: policy.max_open_files,
        nproc,
        cgroup_procs: cgroups.iter().map(|c| c.procs_path().clone()).collect(),
        // bwrap makes its own network namespace.
        unshare_net: rlimits_only && protections.network_isolated,
        drop_to: protections.run_as_uid,
        keep_fd: None,
        harden_process: rlimits_only,
        nice: (priority == Priority::Background).then_some(19),
    }
}

/// `bwrap ARGS -- python ...` with nothing of our environment.
fn bwrap_command(protections: &Protections, workdir: &Path, status_fd: i32) -> Result<Command> {
    let bwrap_info = protections
        .bwrap
        .as_ref()
        .ok_or_else(|| anyhow!("the bwrap backend was chosen without a bwrap"))?;
    let root = bwrap::root_entries().context("could not list / for the sandbox")?;
    let script = format!("{SANDBOX_DIR}/{PROGRAM_FILE}");
    let env = environment(SANDBOX_DIR);
    let python_args = python_args(&script);
    let args = bwrap::args(&BwrapRun {
        protections,
        root: &root,
        workdir,
        status_fd,
        env: &env,
        python_args: &python_args,
    });
    let mut command = Command::new(&bwrap_info.path);
    // bwrap itself gets an empty environment, so nothing of ours can reach the sandbox;
    // the program's environment is set with --setenv.
    command.args(args).env_clear().current_dir(workdir);
    Ok(command)
}

/// `python ...` run directly, for the rlimits-only backend.
fn rlimits_command(protections: &Protections, workdir: &Path) -> Command {
    let script = workdir.join(PROGRAM_FILE);
    let home = workdir.to_string_lossy().into_owned();
    let mut command = Command::new(&protections.python);
    command
        .args(python_args(&script.to_string_lossy()))
        .env_clear()
        .envs(environment(&home))
        .current_dir(workdir);
    command
}

/// The only environment a program gets.
fn environment(home: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", home.to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("PYTHONDONTWRITEBYTECODE", "1".to_string()),
        ("PYTHONHASHSEED", "0".to_string()),
    ]
}

/// `-S -s -B SCRIPT`: no site module, no user site-packages, no bytecode files. Not `-I`:
/// it implies `-E`, which would make Python ignore PYTHONHASHSEED=0 (hashes, and so set
/// order, would change from run to run) and PYTHONDONTWRITEBYTECODE. The environment is
/// already scrubbed to exactly the variables above, so `-E` would protect nothing.
fn python_args(script: &str) -> Vec<String> {
    ["-S", "-s", "-B", script]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The spawned child, killed and reaped if a run ends early with an error.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn get(&mut self) -> &mut Child {
        self.0.as_mut().expect("child is present until reaped")
    }

    fn reap(&mut self) -> Result<ExitStatus> {
        let mut child = self.0.take().expect("child is reaped once");
        child.wait().context("could not reap the sandboxed process")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How the spawned process ended. bwrap reports a program killed by signal n as exit code
/// 128+n, so under bwrap such codes are taken as signals (a Python program exiting with
/// 129..=192 on purpose would be misread; HumanEval programs do not).
fn decode_status(status: ExitStatus, backend: BackendKind) -> Ending {
    if let Some(sig) = status.signal() {
        return Ending::Signaled(sig);
    }
    let code = status.code().unwrap_or(-1);
    if backend == BackendKind::Bwrap && (129..=128 + 64).contains(&code) {
        return Ending::Signaled(code - 128);
    }
    Ending::Exited(code)
}
