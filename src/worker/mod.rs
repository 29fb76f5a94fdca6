//! Child processes that do the measuring: the job they are given, the events they stream
//! back (one JSON object per line on stdout), and the `frontier worker` entry point.
//!
//! A model runs in its own process so its peak RSS is its own, a llama.cpp abort or an OOM
//! kill loses only that model, and a memory cap applies to exactly one process tree. The
//! protocol is plain JSON lines so a worker need not share a host with its parent.

mod spawn;

pub use spawn::{run_job, run_job_capped, CapApplied, ChildExit, ChildOutcome};

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::{ContextOptions, EngineStats, ModelOptions};
use crate::error::exit_code;
use crate::eval::infer::{WorkResult, WorkUnit};
use crate::measure::speed::{self, SpeedConfig, SpeedMeasurement};

/// What a worker is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    Speed {
        model: PathBuf,
        config: SpeedConfig,
    },
    Eval(EvalJob),
    /// llama.cpp's memory projection (`common_fit_params`), reported on stderr.
    Projection {
        model: PathBuf,
        n_ctx: u32,
        n_seq: u32,
        n_ubatch: u32,
        mmap: bool,
    },
}

impl Job {
    /// Whether the worker will memory-map the model file.
    pub fn uses_mmap(&self) -> bool {
        match self {
            Job::Speed { config, .. } => config.model.use_mmap,
            Job::Eval(job) => job.model_options.use_mmap,
            Job::Projection { mmap, .. } => *mmap,
        }
    }
}

/// Run these units through a model, `parallel` sequences at a time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalJob {
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
    pub units: Vec<WorkUnit>,
}

/// What an evaluation worker reports once its model is ready.
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
}

/// What a worker reports, one per line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Speed(SpeedMeasurement),
    /// The model is loaded and the context made.
    Ready(EvalReady),
    /// One unit done.
    Result(WorkResult),
    /// One unit could not run (e.g. its prompt does not fit the context); the others go on.
    UnitError {
        key: String,
        message: String,
    },
    /// The projection is on stderr.
    Projected,
    /// All units done, and where the engine's time went.
    Finished {
        elapsed_ms: f64,
        stats: EngineStats,
    },
    /// The job failed; `bad_input` when the cause was the input (a bad file, a bad value).
    Error {
        message: String,
        bad_input: bool,
    },
}

/// `frontier worker`: reads one job (JSON) from stdin, runs it, streams events to stdout.
pub fn main_worker() -> Result<i32> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the job from stdin")?;
    let job: Job = serde_json::from_str(&line).context("parsing the job")?;
    // A full MMLU job line is tens of megabytes; it is not needed once parsed.
    drop(line);
    inject_fault(&job);
    let stdout = std::io::stdout();
    let emit = |event: &Event| -> Result<()> {
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    };
    let result = match job {
        Job::Speed { model, config } => speed::measure(&model, &config).map(Event::Speed),
        Job::Eval(job) => crate::eval::worker::run(job, &mut |e| emit(&e))
            .map(|(elapsed_ms, stats)| Event::Finished { elapsed_ms, stats }),
        Job::Projection {
            model,
            n_ctx,
            n_seq,
            n_ubatch,
            mmap,
        } => {
            crate::engine::run_fit(&model, n_ctx, n_seq, n_ubatch, mmap).map(|()| Event::Projected)
        }
    };
    match result {
        Ok(event) => {
            emit(&event)?;
            Ok(0)
        }
        Err(e) => {
            let code = exit_code(&e);
            emit(&Event::Error {
                message: format!("{e:#}"),
                bad_input: code == crate::error::EXIT_BAD_INPUT,
            })?;
            Ok(code)
        }
    }
}

/// Test hook: `FRONTIER_WORKER_FAULT=abort:NAME` makes a worker whose model path contains
/// NAME abort as llama.cpp does on a failed assertion, so tests can show that one crashing
/// model does not take the run down with it.
fn inject_fault(job: &Job) {
    let Ok(spec) = std::env::var("FRONTIER_WORKER_FAULT") else {
        return;
    };
    let Some(name) = spec.strip_prefix("abort:") else {
        return;
    };
    let model = match job {
        Job::Speed { model, .. } | Job::Projection { model, .. } => model,
        Job::Eval(j) => &j.model,
    };
    if model.to_string_lossy().contains(name) {
        eprintln!("GGML_ASSERT failed (injected by FRONTIER_WORKER_FAULT)");
        std::process::abort();
    }
}
