//! The bubblewrap backend: finding `bwrap`, building its command line, and reading what it
//! reports on its status fd.
//!
//! The sandbox's root is bwrap's own tmpfs, with every top-level entry of the host's `/`
//! bound in read-only (symlinks such as `/bin -> usr/bin` recreated as symlinks) and the
//! root itself remounted read-only at the end. That is `--ro-bind / /` in effect, but it
//! leaves room to create the `/sandbox` mount point, which a read-only `/` would not.
//! `/home`, `/root`, `/tmp`, `/run` (its unix sockets, e.g. docker.sock, stay reachable
//! through a read-only mount) and `$HOME` are empty read-only tmpfs; `/proc` and `/dev` are
//! new (`/dev` read-only: writing to /dev/null still works). The only writable place is the
//! run's temp dir at `/sandbox`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::sandbox::protections::{BwrapInfo, Protections};
use crate::sandbox::python::STANDARD_HIDDEN;
use crate::sandbox::supervise::KILL_GRACE;

/// Where the run's temp dir appears inside the sandbox.
pub(crate) const SANDBOX_DIR: &str = "/sandbox";

/// Top-level entries bwrap provides itself, or that we mount over.
const NOT_BOUND: [&str; 7] = ["proc", "dev", "home", "root", "tmp", "run", "sandbox"];

/// One entry of the host's `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootEntry {
    /// A directory or file, bound in read-only.
    Bind(PathBuf),
    /// A symlink, recreated with the same target.
    Symlink { path: PathBuf, target: PathBuf },
}

/// Find `bwrap` on PATH or in /usr/bin, with its version.
pub(crate) fn find() -> Option<BwrapInfo> {
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path_dirs)
        .map(|dir| dir.join("bwrap"))
        .chain([PathBuf::from("/usr/bin/bwrap"), PathBuf::from("/bin/bwrap")]);
    for path in candidates {
        if !path.is_file() {
            continue;
        }
        let Ok(out) = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        if out.status.success() {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            return Some(BwrapInfo { path, version });
        }
    }
    None
}

/// Whether this bwrap has `--disable-userns` (bubblewrap 0.8 and later).
pub(crate) fn supports_disable_userns(bwrap: &Path) -> bool {
    Command::new(bwrap)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("--disable-userns"))
        .unwrap_or(false)
}

/// The entries of the host's `/` to bind into the sandbox, sorted by name.
pub(crate) fn root_entries() -> std::io::Result<Vec<RootEntry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir("/")? {
        let entry = entry?;
        let name = entry.file_name();
        if NOT_BOUND.iter().any(|skip| name == *skip) {
            continue;
        }
        let path = Path::new("/").join(&name);
        let entry = match fs::read_link(&path) {
            Ok(target) => RootEntry::Symlink { path, target },
            Err(_) => RootEntry::Bind(path),
        };
        entries.push(entry);
    }
    entries.sort_by(|a, b| entry_path(a).cmp(entry_path(b)));
    Ok(entries)
}

fn entry_path(entry: &RootEntry) -> &Path {
    match entry {
        RootEntry::Bind(path) | RootEntry::Symlink { path, .. } => path,
    }
}

/// Everything one bwrap command line depends on.
pub(crate) struct BwrapRun<'a> {
    pub protections: &'a Protections,
    pub root: &'a [RootEntry],
    /// The run's temp dir on the host.
    pub workdir: &'a Path,
    /// Where bwrap reports the child's pid and exit code (`--json-status-fd`).
    pub status_fd: RawFd,
    /// The environment the program gets, already scrubbed.
    pub env: &'a [(&'static str, String)],
    /// The interpreter's arguments after the executable.
    pub python_args: &'a [String],
}

/// The arguments after `bwrap` itself.
pub(crate) fn args(run: &BwrapRun) -> Vec<OsString> {
    let mut a = Args::default();
    a.push(&["--unshare-all"]);
    if run.protections.nested_userns_blocked {
        // --disable-userns needs a user namespace of our own to lock down.
        a.push(&["--unshare-user", "--disable-userns"]);
    }
    // No --new-session: the child setup has already made bwrap a session of its own (no
    // controlling terminal, so no TIOCSTI into the user's), whose autogroup takes the run's
    // priority; a second session inside would be a new autogroup at nice 0.
    a.push(&["--cap-drop", "ALL", "--die-with-parent"]);
    for entry in run.root {
        match entry {
            RootEntry::Bind(path) => a.push_paths("--ro-bind", &[path, path]),
            RootEntry::Symlink { path, target } => a.push_paths("--symlink", &[target, path]),
        }
    }
    a.push(&["--dev", "/dev", "--proc", "/proc"]);
    for dir in STANDARD_HIDDEN {
        a.push(&["--tmpfs", dir]);
    }
    if let Some(home) = &run.protections.extra_hidden_home {
        a.push_paths("--tmpfs", &[home]);
    }
    for dir in &run.protections.python_binds {
        a.push_paths("--ro-bind", &[dir, dir]);
    }
    // The tmpfs and /dev become read-only too (after the binds under them are made), so the
    // run's temp dir is the only place the program can write, and it cannot fill memory
    // through a tmpfs.
    for dir in STANDARD_HIDDEN.iter().chain(&["/dev"]) {
        a.push(&["--remount-ro", dir]);
    }
    if let Some(home) = &run.protections.extra_hidden_home {
        a.push_paths("--remount-ro", &[home]);
    }
    a.push_paths("--bind", &[run.workdir, Path::new(SANDBOX_DIR)]);
    a.push(&["--chdir", SANDBOX_DIR, "--remount-ro", "/"]);
    for (key, value) in run.env {
        a.push(&["--setenv", key, value]);
    }
    a.push(&["--json-status-fd", &run.status_fd.to_string(), "--"]);
    a.push_paths("", &[&run.protections.python]);
    for arg in run.python_args {
        a.push(&[arg]);
    }
    a.0
}

/// A growing argument list.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push(&mut self, items: &[&str]) {
        self.0.extend(items.iter().map(OsString::from));
    }

    /// An option (none when empty) followed by paths, which need not be UTF-8.
    fn push_paths(&mut self, option: &str, paths: &[&Path]) {
        if !option.is_empty() {
            self.0.push(option.into());
        }
        self.0
            .extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    }
}

/// A close-on-exec pipe: (read end, write end). The write end is numbered 3 or above, so
/// the child's stdio setup (which dup2s onto 0, 1 and 2) cannot clobber it even when this
/// process runs with a standard stream closed.
pub(crate) fn status_pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two fds and nothing else owns them.
    let (read, write) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if write.as_raw_fd() > 2 {
        return Ok((read, write));
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new fd that we then own alone.
    let high = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if high == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl just returned this fd and nothing else owns it.
    Ok((read, unsafe { OwnedFd::from_raw_fd(high) }))
}

/// The pid (in our namespace) of bwrap's init, pid 1 of the run's pid namespace, as bwrap
/// reports it on its status fd once the sandbox is set up; None when setting up failed.
/// Read without blocking: bwrap wrote it long before it exited.
pub(crate) fn init_pid(mut read: File) -> Option<libc::pid_t> {
    // SAFETY: fcntl on an fd we own has no memory preconditions.
    unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut bytes = Vec::new();
    let _ = read.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().find(|l| l.contains("\"child-pid\""))?;
    let status: serde_json::Value = serde_json::from_str(line).ok()?;
    let pid = status.get("child-pid")?.as_i64()?;
    libc::pid_t::try_from(pid).ok()
}

/// bwrap exits as soon as the program does, while its init (pid 1 of the run's namespace)
/// may still be killing what is left. Wait, for a bounded time, until that init is gone or
/// a zombie: by then the kernel has killed and reaped every other process of the namespace.
pub(crate) fn wait_for_namespace_end(init_pid: libc::pid_t) {
    let until = Instant::now() + KILL_GRACE;
    let mut signalled = false;
    while Instant::now() < until {
        let Ok(stat) = fs::read_to_string(format!("/proc/{init_pid}/stat")) else {
            return; // gone
        };
        // "PID (COMM) STATE ...": COMM may hold anything, so split at the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            return;
        };
        if !head.ends_with("(bwrap") {
            return; // exited, and the pid already belongs to someone else
        }
        if matches!(tail.trim_start().chars().next(), Some('Z' | 'X')) {
            return;
        }
        if !signalled {
            // bwrap's --die-with-parent sends the same; this only makes it sooner.
            // SAFETY: kill has no memory preconditions; the pid is still that bwrap.
            unsafe { libc::kill(init_pid, libc::SIGKILL) };
            signalled = true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    tracing::warn!("the sandbox's pid namespace (init {init_pid}) outlived its run");
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::sandbox::policy::{BackendKind, SandboxPolicy};
    use crate::sandbox::protections::ProcessLimit;

    fn protections() -> Protections {
        Protections {
            backend: BackendKind::Bwrap,
            bwrap: None,
            python: PathBuf::from("/usr/bin/python3"),
            python_note: String::new(),
            python_binds: vec![PathBuf::from("/root/.pyenv/versions/3.11.7")],
            extra_hidden_home: None,
            run_as_uid: Some(65534),
            pid_namespace: true,
            network_isolated: true,
            read_only_filesystem: true,
            home_hidden: true,
            capabilities_dropped: true,
            nested_userns_blocked: true,
            rlimits: true,
            process_limit: ProcessLimit::Unlimited,
            memory_cgroup: None,
            new_session: true,
            scrubbed_environment: true,
            notes: Vec::new(),
            policy: SandboxPolicy::default(),
        }
    }

    fn joined(args: &[OsString]) -> String {
        let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        words.join(" ")
    }

    #[test]
    fn command_line_hides_homes_and_binds_python_back_after() {
        let p = protections();
        let root = vec![
            RootEntry::Symlink {
                path: PathBuf::from("/bin"),
                target: PathBuf::from("usr/bin"),
            },
            RootEntry::Bind(PathBuf::from("/usr")),
        ];
        let env = [("PATH", "/usr/bin:/bin".to_string())];
        let python_args = ["-S".to_string(), "/sandbox/main.py".to_string()];
        let run = BwrapRun {
            protections: &p,
            root: &root,
            workdir: Path::new("/tmp/run1"),
            status_fd: 7,
            env: &env,
            python_args: &python_args,
        };
        let line = joined(&args(&run));
        assert!(line.starts_with("--unshare-all --unshare-user --disable-userns --cap-drop ALL --die-with-parent --symlink usr/bin /bin --ro-bind /usr /usr --dev /dev --proc /proc --tmpfs /home --tmpfs /root"), "{line}");
        let hide = line.find("--tmpfs /root").unwrap();
        let bind_back = line.find("--ro-bind /root/.pyenv").unwrap();
        assert!(hide < bind_back, "{line}");
        assert!(
            line.contains("--remount-ro /tmp --remount-ro /run --remount-ro /dev --bind"),
            "{line}"
        );
        assert!(line.ends_with("--bind /tmp/run1 /sandbox --chdir /sandbox --remount-ro / --setenv PATH /usr/bin:/bin --json-status-fd 7 -- /usr/bin/python3 -S /sandbox/main.py"), "{line}");
    }

    #[test]
    fn root_entries_skip_what_we_mount_ourselves() {
        let entries = root_entries().unwrap();
        for entry in &entries {
            let name = entry_path(entry).file_name().unwrap().to_owned();
            assert!(!NOT_BOUND.iter().any(|n| name == *n), "{entry:?}");
        }
    }
}
