//! What the child does between fork and exec ([`ChildSetup`]): new session, join the run's
//! cgroup, rlimits, an optional new network namespace, drop root. Everything is computed
//! before the fork; the hook itself only makes system calls and never allocates, as code
//! between fork and exec in a multi-threaded program must.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::io::RawFd;

/// The uid and gid the sandbox drops root to ("nobody" on Debian, Fedora, Arch, macOS).
pub const NOBODY: u32 = 65534;

/// The type `setrlimit` takes for a resource, which differs between C libraries.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub type Resource = libc::c_int;

/// Everything the child applies to itself before it execs bwrap or python.
#[derive(Debug)]
pub struct ChildSetup {
    /// `RLIMIT_AS`, bytes.
    pub memory_bytes: u64,
    /// `RLIMIT_CPU` soft limit, seconds; the hard limit is one second more, so the program
    /// gets `SIGXCPU` (a timeout) rather than an anonymous `SIGKILL`.
    pub cpu_seconds: u64,
    /// `RLIMIT_FSIZE`, bytes.
    pub file_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// `RLIMIT_NPROC`, when that is the process-limit mechanism.
    pub nproc: Option<u64>,
    /// The run cgroups' `cgroup.procs` files, joined before anything else is forked.
    pub cgroup_procs: Vec<CString>,
    /// `unshare(CLONE_NEWNET)`: no network but a loopback that is down.
    pub unshare_net: bool,
    /// setgroups([]), setgid and setuid to this id.
    pub drop_to: Option<u32>,
    /// An fd to pass on across exec (bwrap's status fd); every other fd above 2 is closed.
    pub keep_fd: Option<RawFd>,
    /// `PR_SET_NO_NEW_PRIVS` and `PR_SET_PDEATHSIG(SIGKILL)`: for the rlimits backend; bwrap
    /// does both itself.
    pub harden_process: bool,
    /// The nice value to run at (`setpriority`), inherited by everything the child starts,
    /// and given to the new session's autogroup (see [`set_autogroup_nice`]).
    pub nice: Option<i32>,
}

impl ChildSetup {
    /// Apply everything, in the only order that works: the cgroup and network namespace need
    /// root, so they come before root is dropped; the death signal is cleared by a change of
    /// uid, so it comes after.
    ///
    /// Runs in the forked child: only async-signal-safe calls, no allocation.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: setsid has no memory preconditions; the forked child is never a group
        // leader, so it cannot fail.
        check(unsafe { libc::setsid() })?;
        for procs in &self.cgroup_procs {
            join_cgroup(procs)?;
        }
        if self.unshare_net {
            unshare_network()?;
        }
        set_limit(libc::RLIMIT_AS, self.memory_bytes, self.memory_bytes)?;
        set_limit(
            libc::RLIMIT_CPU,
            self.cpu_seconds,
            self.cpu_seconds.saturating_add(1),
        )?;
        set_limit(libc::RLIMIT_FSIZE, self.file_bytes, self.file_bytes)?;
        set_limit(libc::RLIMIT_NOFILE, self.open_files, self.open_files)?;
        set_limit(libc::RLIMIT_CORE, 0, 0)?;
        if let Some(nice) = self.nice {
            set_autogroup_nice(nice);
            // SAFETY: setpriority has no memory preconditions. A nice value may always be
            // raised (priority lowered), by any user.
            check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) })?;
        }
        if let Some(nproc) = self.nproc {
            set_limit(libc::RLIMIT_NPROC, nproc, nproc)?;
        }
        close_other_fds(self.keep_fd)?;
        if let Some(id) = self.drop_to {
            drop_root(id)?;
        }
        if self.harden_process {
            harden_process()?;
        }
        Ok(())
    }
}

/// Turn a -1 return into the current errno.
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Move this process into a cgroup by writing "0" to its `cgroup.procs`.
pub fn join_cgroup(procs: &CString) -> io::Result<()> {
    // SAFETY: procs is a valid NUL-terminated path; the fd is closed on every path.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(err);
        }
    }
    Ok(())
}

/// Gives this process's autogroup the nice value. With `CONFIG_SCHED_AUTOGROUP` (on unless
/// `kernel.sched_autogroup_enabled=0`), a process in the root cgroup — everything on a host
/// without systemd, as in most containers and VMs — belongs to its session's autogroup, every
/// `setsid` makes a new one, and the scheduler shares the CPU between autogroups before nice
/// values count: a nice-19 program in a session of its own takes as much CPU as the caller's
/// whole session. Measured on a 2-core VM (kernel 6.18, SmolLM2-135M, 153-token prompts,
/// 2 threads): a nice-19 busy loop in its own session made llama.cpp's prompts 17x slower, in
/// the caller's session not slower; a loop starting Python in a new session, 16x slower, with
/// its autogroup at nice 19, 1.1x. Best effort: without autogroups (no such file) nothing is
/// needed, and an unprivileged process may change an autogroup's nice only once per 0.1 s
/// system-wide (EAGAIN), so it tries up to ten times, 20 ms apart.
///
/// Runs in the forked child: only async-signal-safe calls, no allocation.
#[cfg(target_os = "linux")]
fn set_autogroup_nice(nice: i32) {
    let mut text = [0u8; 3];
    let digits = nice.unsigned_abs().min(99);
    let mut n = 0;
    if nice < 0 {
        text[n] = b'-';
        n += 1;
    }
    if digits >= 10 {
        text[n] = b'0' + (digits / 10) as u8;
        n += 1;
    }
    text[n] = b'0' + (digits % 10) as u8;
    n += 1;
    for _ in 0..10 {
        // SAFETY: the path is NUL-terminated, text holds n bytes, the fd is closed on every
        // path, and the timespec lives across the call.
        unsafe {
            let fd = libc::open(
                c"/proc/self/autogroup".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd == -1 {
                return;
            }
            let written = libc::write(fd, text.as_ptr().cast(), n);
            let again =
                written == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN);
            libc::close(fd);
            if !again {
                return;
            }
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn set_autogroup_nice(_nice: i32) {}

#[cfg(target_os = "linux")]
fn unshare_network() -> io::Result<()> {
    // SAFETY: unshare has no memory preconditions.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) })
}

#[cfg(not(target_os = "linux"))]
fn unshare_network() -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Set a soft and hard limit, never above the current hard limit (which only root may raise).
pub fn set_limit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: current is a valid rlimit to write into.
    check(unsafe { libc::getrlimit(resource, &mut current) })?;
    let hard = (hard as libc::rlim_t).min(current.rlim_max);
    let soft = (soft as libc::rlim_t).min(hard);
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: limit is a valid rlimit.
    check(unsafe { libc::setrlimit(resource, &limit) })
}

/// Mark every fd above 2 close-on-exec, so nothing the parent opened leaks into the sandbox,
/// then let `keep` through. Marking (not closing) keeps the standard library's own
/// exec-error pipe working.
fn close_other_fds(keep: Option<RawFd>) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range only changes fd flags. Older kernels lack it (ENOSYS, EINVAL);
        // Rust opens every fd close-on-exec anyway, so that is not an error.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
    }
    if let Some(fd) = keep {
        // SAFETY: fcntl on an fd number has no memory preconditions.
        check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
    }
    Ok(())
}

/// Drop all groups, then gid, then uid (in that order: afterwards we could not).
fn drop_root(id: u32) -> io::Result<()> {
    // SAFETY: setgroups with a count of 0 reads nothing; setgid/setuid have no memory
    // preconditions.
    unsafe {
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setgid(id as libc::gid_t))?;
        check(libc::setuid(id as libc::uid_t))?;
        if libc::getuid() != id as libc::uid_t || libc::geteuid() != id as libc::uid_t {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn harden_process() -> io::Result<()> {
    // SAFETY: prctl with integer arguments has no memory preconditions.
    unsafe {
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn harden_process() -> io::Result<()> {
    Ok(())
}

/// Tasks (threads included, as `RLIMIT_NPROC` counts them) whose real uid is `uid`, from
/// /proc; 0 where there is no /proc.
pub fn tasks_of_uid(uid: u32) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if status_real_uid(&status) == Some(uid) {
            total += status_threads(&status).unwrap_or(1);
        }
    }
    total
}

/// The real uid from a /proc/PID/status text.
fn status_real_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The thread count from a /proc/PID/status text.
fn status_threads(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let status = "Name:\tpython3\nUid:\t65534\t65534\t65534\t65534\nThreads:\t3\n";
        assert_eq!(status_real_uid(status), Some(65534));
        assert_eq!(status_threads(status), Some(3));
    }

    #[test]
    fn counts_our_own_tasks() {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        assert!(tasks_of_uid(uid) >= 1);
    }
}
