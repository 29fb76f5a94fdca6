//! `frontier worker JOB` (hidden): a child process that runs one job from stdin and streams
//! its events to stdout, for a parent frontier process.

use anyhow::Result;

use crate::cli::WorkerArgs;
use frontier_core::bad_input;

pub fn run(args: &WorkerArgs) -> Result<i32> {
    match args.job.as_str() {
        crate::eval::job::JOB => crate::eval::worker::serve(),
        crate::measure::speed::JOB => crate::measure::speed::serve(),
        crate::memory::projection::JOB => crate::memory::projection::serve(),
        crate::fidelity::job::JOB => crate::fidelity::job::serve(),
        other => Err(bad_input(format!("no worker job '{other}'"))),
    }
}
