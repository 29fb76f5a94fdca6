//! A real memory cap on one worker process (`--mem-limit`): a memory cgroup where we may
//! make one (v1 `memory.limit_in_bytes` or v2 `memory.max`; the kernel OOM-kills the worker
//! above it), else `RLIMIT_AS` with mmap off (allocations above the cap fail), else a
//! watchdog that samples the worker's resident memory and kills it above the cap.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use frontier_core::{bad_input, units};

use crate::cgroup::{self, Controller, RunCgroup};

/// Which mechanism `--mem-cap` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CapMethod {
    /// The strongest this machine offers: cgroup, else RLIMIT_AS (Linux), else watchdog.
    Auto,
    /// A memory cgroup (needs write access to the cgroup hierarchy).
    Cgroup,
    /// `RLIMIT_AS` on the worker; forces --no-mmap (mapped files count as address space).
    Rlimit,
    /// Sample the worker's resident memory every 20 ms and kill it above the cap.
    Watchdog,
}

/// The mechanism that held a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    CgroupV1,
    CgroupV2,
    RlimitAs,
    Watchdog,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::CgroupV1 => "cgroup v1 memory.limit_in_bytes",
            Mechanism::CgroupV2 => "cgroup v2 memory.max",
            Mechanism::RlimitAs => "RLIMIT_AS (mmap off)",
            Mechanism::Watchdog => "watchdog (RSS sampled every 20 ms)",
        }
    }

    pub fn parse(s: &str) -> Option<Mechanism> {
        [
            Mechanism::CgroupV1,
            Mechanism::CgroupV2,
            Mechanism::RlimitAs,
            Mechanism::Watchdog,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// Whether the model must be read into memory rather than mapped.
    pub fn needs_no_mmap(self) -> bool {
        self == Mechanism::RlimitAs
    }
}

/// A memory cap, with the mechanism this machine will use for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemCap {
    pub limit: u64,
    pub mechanism: Mechanism,
    /// Run even when the cap is below the model's weights.
    pub force: bool,
}

impl MemCap {
    /// `--mem-limit SIZE --mem-cap METHOD`: fails when the machine lacks the mechanism asked
    /// for, or the size is too small for any model.
    pub fn resolve(limit: u64, method: CapMethod, force: bool) -> Result<MemCap> {
        if limit < (16 << 20) {
            return Err(bad_input(format!(
                "--mem-limit {} is below 16 MiB; no model runs in that",
                units::bytes(limit)
            )));
        }
        let mechanism = match method {
            CapMethod::Auto => cgroup_mechanism().unwrap_or(if cfg!(target_os = "linux") {
                Mechanism::RlimitAs
            } else {
                Mechanism::Watchdog
            }),
            CapMethod::Cgroup => cgroup_mechanism().ok_or_else(|| {
                bad_input(
                    "--mem-cap cgroup: no memory cgroup can be created here (it needs write \
                     access to /sys/fs/cgroup/memory or a cgroup v2 subtree with the memory \
                     controller); use --mem-cap rlimit or watchdog",
                )
            })?,
            CapMethod::Rlimit if cfg!(target_os = "linux") => Mechanism::RlimitAs,
            CapMethod::Rlimit => {
                return Err(bad_input(
                    "--mem-cap rlimit: RLIMIT_AS is not enforced on this system; use --mem-cap watchdog",
                ))
            }
            CapMethod::Watchdog => Mechanism::Watchdog,
        };
        Ok(MemCap {
            limit,
            mechanism,
            force,
        })
    }

    /// `4 GiB (cgroup v1 memory.limit_in_bytes)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", units::bytes(self.limit), self.mechanism.as_str())
    }
}

/// Where memory cgroups can be made, found once per process.
fn memory_cgroup_parent() -> Option<&'static Path> {
    static PARENT: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    PARENT
        .get_or_init(|| cgroup::find_parent(Controller::Memory))
        .as_deref()
}

fn cgroup_mechanism() -> Option<Mechanism> {
    let parent = memory_cgroup_parent()?;
    Some(if parent.join("memory.limit_in_bytes").is_file() {
        Mechanism::CgroupV1
    } else {
        Mechanism::CgroupV2
    })
}

/// A cap being applied to one worker: its cgroup, if that is the mechanism.
pub struct Enforcer {
    pub cap: MemCap,
    cgroup: Option<RunCgroup>,
}

impl Enforcer {
    pub fn new(cap: MemCap) -> Result<Enforcer> {
        let cgroup = match cap.mechanism {
            Mechanism::CgroupV1 | Mechanism::CgroupV2 => {
                let parent = memory_cgroup_parent()
                    .ok_or_else(|| anyhow::anyhow!("the memory cgroup hierarchy went away"))?;
                Some(RunCgroup::create(parent, Controller::Memory, cap.limit)?)
            }
            Mechanism::RlimitAs | Mechanism::Watchdog => None,
        };
        Ok(Enforcer { cap, cgroup })
    }

    /// Makes the child join the cgroup or take the address-space limit before it execs.
    pub fn configure(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let procs = self.cgroup.as_ref().map(|c| c.procs_path().clone());
        let rlimit = (self.cap.mechanism == Mechanism::RlimitAs).then_some(self.cap.limit);
        // SAFETY: the hook only makes system calls (open/write/close, setrlimit) on data
        // prepared before the fork; it does not allocate.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(procs) = &procs {
                    crate::limits::join_cgroup(procs)?;
                }
                if let Some(bytes) = rlimit {
                    crate::limits::set_limit(libc::RLIMIT_AS, bytes, bytes)?;
                }
                Ok(())
            });
        }
    }

    /// The limit the watchdog enforces, when it is the mechanism.
    pub fn watchdog_limit(&self) -> Option<u64> {
        (self.cap.mechanism == Mechanism::Watchdog).then_some(self.cap.limit)
    }

    /// Processes of the worker the kernel's OOM killer killed.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup.as_ref().map_or(0, |c| c.oom_kills())
    }

    /// The cgroup's peak charge (resident memory and page cache), where the kernel keeps it.
    pub fn cgroup_peak(&self) -> Option<u64> {
        self.cgroup.as_ref().and_then(|c| c.memory_peak())
    }
}

/// Drops the model file's clean pages from the page cache, so that under a cgroup cap the
/// worker's own reads are charged to it — as on a machine that has only the capped memory —
/// rather than served from pages another process brought in. Pages still mapped elsewhere
/// stay; that is harmless.
pub fn evict_page_cache(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        if let Ok(file) = std::fs::File::open(path) {
            // SAFETY: posix_fadvise only takes an open fd and a range.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// Refuses a cap below the model's weights (they alone would not fit) unless forced; the
/// message carries the estimate.
pub fn refusal(cap: &MemCap, weights: u64, estimate: u64) -> Option<String> {
    (cap.limit < weights && !cap.force).then(|| {
        format!(
            "refused: the cap {} is below the model's weights ({}; estimated peak {}); \
             --force runs it anyway",
            units::bytes(cap.limit),
            units::bytes(weights),
            units::bytes(estimate)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip() {
        for m in [
            Mechanism::CgroupV1,
            Mechanism::CgroupV2,
            Mechanism::RlimitAs,
            Mechanism::Watchdog,
        ] {
            assert_eq!(Mechanism::parse(m.as_str()), Some(m));
        }
        assert_eq!(Mechanism::parse("none"), None);
    }

    #[test]
    fn bad_limits_are_bad_input() {
        let e = MemCap::resolve(1 << 20, CapMethod::Watchdog, false).unwrap_err();
        assert_eq!(frontier_core::exit_code(&e), 2);
        let cap = MemCap::resolve(4 << 30, CapMethod::Watchdog, false).unwrap();
        assert_eq!(cap.limit, 4 << 30);
        assert_eq!(cap.mechanism, Mechanism::Watchdog);
    }

    #[test]
    fn refuses_below_the_weights_unless_forced() {
        let mut cap = MemCap {
            limit: 200 << 20,
            mechanism: Mechanism::Watchdog,
            force: false,
        };
        let why = refusal(&cap, 270 << 20, 600 << 20).unwrap();
        assert!(why.contains("200 MiB") && why.contains("270 MiB"), "{why}");
        cap.force = true;
        assert_eq!(refusal(&cap, 270 << 20, 600 << 20), None);
        cap.force = false;
        cap.limit = 1 << 30;
        assert_eq!(refusal(&cap, 270 << 20, 600 << 20), None);
    }
}
