//! Child processes for frontier, knowing nothing of the jobs they run:
//!
//! - [`run_worker`] / [`protocol::serve`]: a worker process and its JSON-lines protocol
//!   (one request in, the job's events out, a failure frame last), reaped with `wait4` for
//!   its exit, peak RSS and page faults;
//! - [`cap`]: a real memory cap on a worker (cgroup v1/v2, `RLIMIT_AS`, or a watchdog);
//! - [`usage`]: its resident memory and disk reads, sampled while it runs;
//! - [`limits`]: what a child applies to itself between fork and exec (session, cgroup,
//!   rlimits, network namespace, dropped root), also used by the code sandbox;
//! - [`cgroup`]: making and reading cgroups.

pub mod cap;
pub mod cgroup;
pub mod limits;
pub mod protocol;
pub mod rss;
mod spawn;
pub mod usage;

pub use cap::{CapMethod, Mechanism, MemCap};
pub use protocol::{Failure, Frame};
pub use spawn::{run_worker, signal_name, CapApplied, ChildExit, ChildOutcome, WorkerCommand};
