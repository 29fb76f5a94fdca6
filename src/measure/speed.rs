//! The `speed` job: the llama-bench equivalent ([`frontier_llama::bench`]) run in a worker
//! process, so the peak RSS the parent reads is the model's own.

use std::path::PathBuf;

use anyhow::Result;
use frontier_engine::bench::{SpeedConfig, SpeedMeasurement};
use frontier_process::{ChildOutcome, MemCap};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;

/// The job's name: `frontier worker speed`.
pub const JOB: &str = "speed";

/// Measure this model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpeedRequest {
    pub model: PathBuf,
    pub config: SpeedConfig,
    /// The engine that loads the model.
    #[serde(default)]
    pub backend: Backend,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SpeedEvent {
    Measured(SpeedMeasurement),
}

/// The worker's side.
pub fn serve() -> Result<i32> {
    frontier_process::protocol::serve(|r: SpeedRequest, emit| {
        let measured = match r.backend {
            Backend::Llama => frontier_llama::bench::measure(&r.model, &r.config)?,
            Backend::Fake => crate::fake::measure_speed(&r.model, &r.config)?,
            Backend::Remote(_) => anyhow::bail!(
                "a served model's speed is measured by the server's requests (frontier speed --backend openai:URL), not by a local worker"
            ),
        };
        emit(SpeedEvent::Measured(measured))
    })
}

/// What one speed worker gave: its measurement (if it got that far) and how it ended.
pub struct SpeedRun {
    pub measured: Option<SpeedMeasurement>,
    pub error: Option<String>,
    pub outcome: ChildOutcome,
}

/// Runs the speed job in a worker, under `cap` when given.
pub fn run(request: &SpeedRequest, cap: Option<&MemCap>, verbosity: u8) -> Result<SpeedRun> {
    let command = crate::worker::command(JOB, verbosity, request.config.model.use_mmap)?;
    let mut measured = None;
    let outcome = frontier_process::run_worker(&command, request, cap, |e| match e {
        SpeedEvent::Measured(m) => measured = Some(m),
    })?;
    Ok(SpeedRun {
        measured,
        error: outcome.failure.as_ref().map(|f| f.message.clone()),
        outcome,
    })
}
