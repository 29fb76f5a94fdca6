//! How frontier starts its own worker processes: `frontier worker JOB` from the same
//! executable, with the parent's verbosity. Each job (`eval`, `speed`, `projection`) owns
//! its request and event types beside its code; `frontier_process` runs and frames them.
//!
//! A model runs in its own process so its peak RSS is its own, a llama.cpp abort or an OOM
//! kill loses only that model, and a memory cap applies to exactly one process tree.

use anyhow::{Context, Result};
use frontier_process::WorkerCommand;

/// The command that runs `job` in a child of this executable.
pub fn command(job: &str, verbosity: u8, uses_mmap: bool) -> Result<WorkerCommand> {
    let program = std::env::current_exe().context("finding the frontier executable")?;
    let mut args = vec!["worker".to_string(), job.to_string()];
    args.extend((0..verbosity).map(|_| "-v".to_string()));
    Ok(WorkerCommand {
        program,
        args,
        show_stderr: verbosity > 0,
        uses_mmap,
        stop: Some(crate::interrupt::stop_flag()),
    })
}
