//! The `eval` job's protocol: what the parent asks of an evaluation worker, and what the
//! worker reports back, line by line (see [`frontier_process::protocol`] for the framing).

use std::path::PathBuf;

use frontier_engine::{ContextOptions, EngineStats, ModelOptions};
use serde::{Deserialize, Serialize};

use super::infer::{WorkResult, WorkUnit};
use crate::backend::Backend;

/// The job's name: `frontier worker eval`.
pub const JOB: &str = "eval";

/// Run these units through a model, `parallel` sequences at a time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalRequest {
    pub model: PathBuf,
    pub model_options: ModelOptions,
    /// `n_ctx` 0 = sized from the longest unit × `parallel` (capped at the training context).
    pub context: ContextOptions,
    /// Sequences evaluated together; 0 = the worker chooses (see `eval::parallel`).
    pub parallel: u32,
    /// The memory the worker may use in all (the cap), for choosing `parallel`; None = what
    /// the machine has free.
    #[serde(default)]
    pub memory_budget: Option<u64>,
    /// Evaluate each shared prefix once (off for the one-prompt-at-a-time reference path).
    pub share_prefix: bool,
    /// The engine that loads the model.
    #[serde(default)]
    pub backend: Backend,
    pub units: Vec<WorkUnit>,
}

/// What an evaluation worker reports when its model is loaded and a context made: once for
/// the scoring context and once for the generation context when the job has both.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalReady {
    pub load_ms: f64,
    pub n_ctx: u32,
    pub n_seq: u32,
    pub kv_cache_bytes: Option<u64>,
    pub n_params: u64,
    pub threads: u32,
    /// How the number of sequences was chosen, when the worker chose it.
    #[serde(default)]
    pub parallel_reason: Option<String>,
    /// The context is for generation (a KV stream per sequence), not scoring.
    #[serde(default)]
    pub generates: bool,
    /// Generated tokens per decode (`ContextOptions::batch_rows`; 0: all sequences at once).
    #[serde(default)]
    pub batch_rows: u32,
    /// Generation batches hold only the generating sequences (`--no-padding`).
    #[serde(default)]
    pub no_padding: bool,
}

/// What an evaluation worker reports, one per line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum EvalEvent {
    /// The model is loaded and the context made.
    Ready(EvalReady),
    /// One unit done.
    Result(WorkResult),
    /// One unit could not run (e.g. its prompt does not fit the context); the others go on.
    UnitError { key: String, message: String },
    /// All units done, and where the engine's time went.
    Finished { elapsed_ms: f64, stats: EngineStats },
}
