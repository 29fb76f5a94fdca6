//! A fresh `pids` cgroup per run: caps the number of processes even for root (where
//! `RLIMIT_NPROC` is ignored), lists every process of the run so all of them can be killed,
//! and is removed when the run ends. Works with cgroup v1 (`/sys/fs/cgroup/pids`) and with
//! cgroup v2 when the `pids` controller is enabled for children of `/sys/fs/cgroup`.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Where a per-run cgroup may be created, in order of preference.
const PARENTS: [&str; 2] = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"];

/// How long killing and removing a cgroup may take before we give up and leave it behind.
const CLEANUP_LIMIT: Duration = Duration::from_secs(5);

/// Makes cgroup names unique within this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The first parent under which we can create a cgroup with a writable `pids.max`, checked
/// by creating and removing a probe cgroup.
pub(crate) fn find_parent() -> Option<PathBuf> {
    PARENTS.iter().map(Path::new).find_map(|parent| {
        // Only a real cgroup directory has cgroup.procs (a tmpfs at /sys/fs/cgroup does not).
        if !parent.join("cgroup.procs").is_file() {
            return None;
        }
        let probe = RunCgroup::create(parent, 1).ok()?;
        drop(probe);
        remove_stale(parent);
        Some(parent.to_path_buf())
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
        let Some(rest) = name.strip_prefix("frontier-sandbox-") else {
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
pub(crate) struct RunCgroup {
    dir: PathBuf,
    /// `cgroup.procs` as a C string, so the child can join with no allocation.
    procs: CString,
}

impl RunCgroup {
    /// Create `parent/frontier-sandbox-<pid>-<n>` allowing at most `max_tasks` tasks.
    pub(crate) fn create(parent: &Path, max_tasks: u64) -> Result<RunCgroup> {
        let name = format!(
            "frontier-sandbox-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        fs::create_dir(&dir).with_context(|| format!("could not create {}", dir.display()))?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .context("cgroup path holds a NUL byte")?;
        // From here on Drop removes the directory, also when writing the limit fails.
        let cgroup = RunCgroup { dir, procs };
        // pids.max must already exist (made by the kernel): never create it as a plain file.
        let max = cgroup.dir.join("pids.max");
        fs::OpenOptions::new()
            .write(true)
            .open(&max)
            .and_then(|mut f| f.write_all(max_tasks.to_string().as_bytes()))
            .with_context(|| format!("could not write {}", max.display()))?;
        Ok(cgroup)
    }

    /// `cgroup.procs`; a process joins by writing "0" to it.
    pub(crate) fn procs_path(&self) -> &CString {
        &self.procs
    }

    /// The processes in the cgroup now.
    pub(crate) fn pids(&self) -> Vec<libc::pid_t> {
        let text = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// SIGKILL every process in the cgroup once (and, on cgroup v2, the whole cgroup).
    pub(crate) fn signal_all(&self) {
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
    pub(crate) fn kill_all(&self) -> bool {
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
