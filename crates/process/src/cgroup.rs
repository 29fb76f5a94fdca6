//! Per-run cgroups, one per controller, for the sandbox and for model workers under a
//! memory cap: `pids` caps the number of processes even for root (where `RLIMIT_NPROC` is
//! ignored) and `memory` caps the resident memory of the whole run (`RLIMIT_AS` is per
//! process). Either one lists every process of the run, so all can be
//! killed; it is removed when the run ends. A run cgroup is a child of this process's own
//! cgroup, so every limit above us still applies, with cgroup v1 or v2 (where the
//! controller must be enabled for our children).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long killing and removing a cgroup may take before we give up and leave it behind.
const CLEANUP_LIMIT: Duration = Duration::from_secs(5);

/// Run cgroups are named `frontier-run-<our pid>-<n>`.
const NAME_PREFIX: &str = "frontier-run-";

/// Makes cgroup names unique within this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A cgroup controller the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Pids,
    Memory,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
        }
    }

    /// The file holding the limit, for cgroup v1 and for v2.
    fn limit_files(self) -> [&'static str; 2] {
        match self {
            Controller::Pids => ["pids.max", "pids.max"],
            Controller::Memory => ["memory.limit_in_bytes", "memory.max"],
        }
    }
}

/// The first place under which we can create a cgroup with a writable limit for
/// `controller`, checked by creating and removing a probe cgroup.
pub fn find_parent(controller: Controller) -> Option<PathBuf> {
    parent_candidates(controller)
        .into_iter()
        .find_map(|parent| {
            // Only a real cgroup directory has cgroup.procs (a tmpfs at /sys/fs/cgroup does not).
            if !parent.join("cgroup.procs").is_file() {
                return None;
            }
            let probe = RunCgroup::create(&parent, controller, 1 << 20).ok()?;
            drop(probe);
            remove_stale(&parent);
            Some(parent)
        })
}

/// Our own cgroup in the v1 hierarchy of `controller`, then in the v2 hierarchy.
fn parent_candidates(controller: Controller) -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v1_root = Path::new("/sys/fs/cgroup").join(controller.name());
    let mut candidates = Vec::new();
    if let Some(path) = own_cgroup(&own, controller.name()) {
        candidates.push(under(&v1_root, path));
    }
    if let Some(path) = own_cgroup(&own, "") {
        candidates.push(under(Path::new("/sys/fs/cgroup"), path));
    }
    candidates
}

/// A cgroup path ("/" or "/a/b") below a hierarchy's mount point.
fn under(mount: &Path, cgroup_path: &str) -> PathBuf {
    let relative = cgroup_path.trim_matches('/');
    if relative.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(relative)
    }
}

/// The path of our cgroup for `controller` from a /proc/self/cgroup text
/// ("ID:CONTROLLERS:PATH" lines); the empty name picks the cgroup v2 line ("0::PATH").
fn own_cgroup<'a>(proc_self_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        matches.then_some(path)
    })
}

/// Remove run cgroups left behind by frontier processes that no longer exist (killed in
/// the middle of a run). Only empty cgroups can be removed, so a live run is never touched.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let owner = rest.split('-').next().unwrap_or("");
        if !owner.is_empty() && !Path::new("/proc").join(owner).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// One run's cgroup. Dropping it kills whatever is still inside and removes it.
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
    /// `cgroup.procs` as a C string, so the child can join with no allocation.
    procs: CString,
}

impl RunCgroup {
    /// Create `parent/frontier-run-<pid>-<n>` with `limit` for `controller`.
    pub fn create(parent: &Path, controller: Controller, limit: u64) -> Result<RunCgroup> {
        let name = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        fs::create_dir(&dir).with_context(|| format!("could not create {}", dir.display()))?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .context("cgroup path holds a NUL byte")?;
        // From here on Drop removes the directory, also when writing the limit fails.
        let cgroup = RunCgroup { dir, procs };
        let [v1, v2] = controller.limit_files();
        let file = if cgroup.dir.join(v1).is_file() {
            v1
        } else {
            v2
        };
        cgroup.write_existing(file, &limit.to_string())?;
        if controller == Controller::Memory {
            // No swapping past the limit either, where swap is accounted (best effort).
            let _ = cgroup.write_existing("memory.memsw.limit_in_bytes", &limit.to_string());
            let _ = cgroup.write_existing("memory.swap.max", "0");
        }
        Ok(cgroup)
    }

    /// Write to a control file the kernel made; never create it as a plain file.
    fn write_existing(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .with_context(|| format!("could not write {}", path.display()))
    }

    /// How many processes of the run the kernel's OOM killer has killed (memory cgroups).
    pub fn oom_kills(&self) -> u64 {
        ["memory.oom_control", "memory.events"]
            .iter()
            .filter_map(|file| fs::read_to_string(self.dir.join(file)).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// The highest memory use the kernel charged to the cgroup (`memory.max_usage_in_bytes`
    /// on v1, `memory.peak` on v2 from Linux 5.19), page cache included.
    pub fn memory_peak(&self) -> Option<u64> {
        ["memory.max_usage_in_bytes", "memory.peak"]
            .iter()
            .find_map(|file| fs::read_to_string(self.dir.join(file)).ok())
            .and_then(|text| text.trim().parse().ok())
    }

    /// `cgroup.procs`; a process joins by writing "0" to it.
    pub fn procs_path(&self) -> &CString {
        &self.procs
    }

    /// The processes in the cgroup now.
    pub fn pids(&self) -> Vec<libc::pid_t> {
        let text = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// SIGKILL every process in the cgroup once (and, on cgroup v2, the whole cgroup).
    pub fn signal_all(&self) {
        let _ = fs::write(self.dir.join("cgroup.kill"), "1");
        for pid in self.pids() {
            // SAFETY: kill has no memory preconditions. A pid read from cgroup.procs
            // belongs to this run unless it exited and was reused in between, which
            // takes a full turn of the pid space.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// SIGKILL every process in the cgroup until it is empty (a fork bomb keeps adding
    /// processes, so this loops). Returns false if it is still not empty after the limit.
    pub fn kill_all(&self) -> bool {
        let start = Instant::now();
        loop {
            if self.pids().is_empty() {
                return true;
            }
            if start.elapsed() > CLEANUP_LIMIT {
                return false;
            }
            self.signal_all();
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if !self.kill_all() {
            tracing::warn!("processes left in {} after SIGKILL", self.dir.display());
        }
        // The kernel may need a moment to release the last exited tasks.
        let start = Instant::now();
        while let Err(err) = fs::remove_dir(&self.dir) {
            if start.elapsed() > CLEANUP_LIMIT {
                tracing::warn!("could not remove {}: {err}", self.dir.display());
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    const PROC_SELF_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n2:cpu,cpuacct:/a\n4:memory:/process_api/e11d\n0::/user.slice\n";

    #[test]
    fn finds_our_own_cgroup_per_controller() {
        assert_eq!(own_cgroup(PROC_SELF_CGROUP, "pids"), Some("/"));
        assert_eq!(
            own_cgroup(PROC_SELF_CGROUP, "memory"),
            Some("/process_api/e11d")
        );
        assert_eq!(own_cgroup(PROC_SELF_CGROUP, "cpuacct"), Some("/a"));
        assert_eq!(own_cgroup(PROC_SELF_CGROUP, ""), Some("/user.slice"));
        assert_eq!(own_cgroup("8:pids:/\n", "memory"), None);
        let mount = Path::new("/sys/fs/cgroup/pids");
        assert_eq!(under(mount, "/"), mount);
        assert_eq!(under(mount, "/a/b"), mount.join("a/b"));
    }
}
