//! The parent's half of evaluating one cell (a model file), in named steps:
//!
//! 1. [`register`]: the cell and its task runs in the store, the items not yet stored;
//! 2. the memory gate: a cap below the weights is refused before anything loads;
//! 3. [`live::Threads::start`]: the worker process and the sandbox threads;
//! 4. [`live::Live::handle`]: each message on its own — an answer scored and stored at once
//!    (HumanEval programs in sandbox threads, overlapping with generation);
//! 5. [`finish`]: the memory record, the cell's error ([`cell_error`]: which failure
//!    explains the cell, in one place), and its status.
//!
//! A worker that crashes or is killed ends the cell as failed with its error; everything
//! stored before stays.

mod live;
mod register;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};

use frontier_engine::{ContextOptions, EngineStats, ModelOptions};
use frontier_process::MemCap;

use super::job::{EvalReady, EvalRequest, JOB};
use crate::backend::Backend;
use crate::memory::guard;
use crate::memory::verdict::{JobEnd, MemoryRecord, Verdict};
use crate::sandbox::Sandbox;
use crate::store::{CellInfo, CellStatus, Store};
use crate::tasks::{score, TaskPlan};
use live::{CellProgress, Live, Seen, Threads};

/// How to run the model: load options, context, sequences evaluated together.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub model: ModelOptions,
    pub context: ContextOptions,
    pub parallel: u32,
    /// Evaluate shared few-shot prefixes once (off: every prompt whole, the reference path).
    pub share_prefix: bool,
    /// The engine that loads the model.
    pub backend: Backend,
}

/// What to evaluate in one cell and how.
pub struct CellRun<'a> {
    pub store: &'a Store,
    pub run_id: i64,
    pub cell: CellInfo,
    pub model_path: PathBuf,
    pub plans: &'a [TaskPlan],
    pub engine: EngineSettings,
    /// Needed when a plan is HumanEval.
    pub sandbox: Option<Arc<Sandbox>>,
    pub sandbox_threads: usize,
    pub verbosity: u8,
    pub quiet: bool,
    /// In a sweep: the display the cell's bar joins, and the overall bar it advances.
    pub progress: Option<&'a SweepProgress>,
    /// `--mem-limit`: the worker runs under it (the load options already fit its mechanism).
    pub mem_cap: Option<MemCap>,
}

/// A sweep's progress display: one bar per cell under an overall bar with ETA.
#[derive(Debug, Clone)]
pub struct SweepProgress {
    pub multi: indicatif::MultiProgress,
    pub overall: indicatif::ProgressBar,
    pub quiet: bool,
}

impl SweepProgress {
    /// A line above the bars, or on stderr when no bars are drawn (a log file, CI), so what
    /// happened to a cell is never silent; nothing with --quiet.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.multi.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            let _ = self.multi.println(line.as_ref());
        }
    }
}

/// How a cell's evaluation went.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    pub cell_id: i64,
    pub status: CellStatus,
    pub error: Option<String>,
    pub peak_rss_bytes: Option<u64>,
    /// The worker's contexts (scoring, generation), as it reported them.
    pub contexts: Vec<EvalReady>,
    /// Items scored and stored in this run.
    pub stored: usize,
    /// Items found already stored and not recomputed.
    pub skipped: usize,
    pub elapsed_ms: f64,
    /// Where the worker's engine time went (prefix, questions, generation).
    pub engine_stats: Option<EngineStats>,
    /// Time spent running generated code in the sandbox (summed over programs).
    pub sandbox_ms: f64,
    /// Programs run again at normal priority once the worker exited, after the wall clock
    /// stopped them at the lowest beside it.
    pub sandbox_reruns: usize,
    /// Wall time of each task plan (by its key) in this run: from the previous plan's last
    /// item (or the model being ready) to its own last item, in milliseconds.
    pub task_wall_ms: Vec<(String, f64)>,
    /// The worker's memory, and its verdict under the cap.
    pub memory: Option<MemoryRecord>,
}

impl CellOutcome {
    /// A cell that ended before any worker ran: nothing left to do, or refused.
    fn without_worker(cell_id: i64, skipped: usize, refused: Option<MemoryRecord>) -> Self {
        CellOutcome {
            cell_id,
            status: if refused.is_some() {
                CellStatus::Failed
            } else {
                CellStatus::Done
            },
            error: refused.as_ref().map(|r| r.detail.clone()),
            peak_rss_bytes: None,
            contexts: Vec::new(),
            stored: 0,
            skipped,
            elapsed_ms: 0.0,
            task_wall_ms: Vec::new(),
            engine_stats: None,
            sandbox_ms: 0.0,
            sandbox_reruns: 0,
            memory: refused,
        }
    }
}

/// Evaluates one cell: the named steps above, in order.
pub fn run_cell(run: &CellRun<'_>) -> Result<CellOutcome> {
    let start = Instant::now();
    let store = run.store;
    let registered = register::register(store, run.run_id, &run.cell, run.plans)?;
    let cell_id = registered.cell_id;
    let skipped = registered.skipped;
    if let Some(p) = run.progress {
        p.overall.inc(skipped as u64);
    }
    if registered.units.is_empty() {
        store.finish_cell(cell_id, CellStatus::Done, None, None, None)?;
        return Ok(CellOutcome::without_worker(cell_id, skipped, None));
    }
    let runs_code = run
        .plans
        .iter()
        .any(|p| p.items.iter().any(score::needs_sandbox));
    if runs_code && run.sandbox.is_none() {
        return Err(anyhow!("HumanEval needs a sandbox"));
    }

    let gate = MemoryGate::new(run);
    if let Some(refused) = gate.refused(run) {
        store.record_memory(cell_id, &refused)?;
        store.finish_cell(
            cell_id,
            CellStatus::Failed,
            Some(&refused.detail),
            None,
            None,
        )?;
        return Ok(CellOutcome::without_worker(cell_id, skipped, Some(refused)));
    }
    guard::before_run(run.mem_cap.as_ref(), &run.model_path, &run.engine.model);

    let progress = CellProgress::new(
        registered.units.len(),
        &format!("{} {}", run.cell.model, run.cell.quant),
        run.quiet,
        run.progress,
    );
    let request = EvalRequest {
        model: run.model_path.clone(),
        model_options: run.engine.model.clone(),
        context: run.engine.context.clone(),
        parallel: run.engine.parallel,
        memory_budget: run.mem_cap.map(|c| c.limit),
        share_prefix: run.engine.share_prefix,
        backend: run.engine.backend.clone(),
        units: registered.units,
    };
    let command = crate::worker::command(JOB, run.verbosity, request.model_options.use_mmap)?;
    let sandbox = if runs_code { run.sandbox.clone() } else { None };
    let (threads, messages) =
        Threads::start(command, request, run.mem_cap, sandbox, run.sandbox_threads);
    let programs = runs_code.then(|| threads.programs());
    let mut live = Live::new(store, registered.pending, progress, programs);
    while live.waiting() {
        let Ok(msg) = messages.recv() else { break };
        live.handle(msg)?;
    }
    // The cell's handle on the program queue goes first, so the queue closes and the
    // sandbox threads end.
    let (seen, unanswered) = live.end();
    threads.join();
    finish(
        run,
        &gate,
        Finished {
            cell_id,
            skipped,
            plan_runs: registered.plan_runs,
            seen,
            unanswered,
            start,
        },
    )
}

/// Step 2: the memory estimate of the cell's worker, and the refusal of a cap below it.
struct MemoryGate {
    /// The estimate before the worker has chosen its context (a guess at 256 cells a sequence).
    first: Option<guard::FileEstimate>,
}

impl MemoryGate {
    fn new(run: &CellRun<'_>) -> MemoryGate {
        let guess_ctx = match run.engine.context.n_ctx {
            0 => 256 * run.engine.parallel.max(1),
            n => n,
        };
        MemoryGate {
            first: Self::estimate_at(run, guess_ctx, run.engine.parallel),
        }
    }

    fn estimate_at(run: &CellRun<'_>, n_ctx: u32, n_seq: u32) -> Option<guard::FileEstimate> {
        guard::file_estimate(
            &run.model_path,
            n_ctx as u64,
            n_seq as u64,
            run.engine.context.n_ubatch as u64,
            run.engine.model.use_mmap,
        )
        .ok()
    }

    /// The record of a refusal, when the cap is below the model's weights.
    fn refused(&self, run: &CellRun<'_>) -> Option<MemoryRecord> {
        let e = self.first.as_ref()?;
        guard::refused("eval", run.mem_cap.as_ref(), e, &run.engine.model)
    }

    /// The estimate at the largest context the worker made, else the first guess.
    fn at_ready(&self, run: &CellRun<'_>, contexts: &[EvalReady]) -> Option<guard::FileEstimate> {
        contexts
            .iter()
            .filter_map(|r| Self::estimate_at(run, r.n_ctx, r.n_seq))
            .max_by_key(|e| e.estimate.total)
            .or_else(|| self.first.clone())
    }
}

/// What a cell's run left for step 5.
struct Finished {
    cell_id: i64,
    skipped: usize,
    plan_runs: Vec<(String, i64)>,
    seen: Seen,
    unanswered: usize,
    start: Instant,
}

/// Step 5: the worker's memory record, the cell's error and status, each task's wall time.
fn finish(run: &CellRun<'_>, gate: &MemoryGate, f: Finished) -> Result<CellOutcome> {
    let store = run.store;
    let seen = f.seen;
    let reported = seen.reported_error();
    let memory = seen.exit.as_ref().map(|o| {
        let est = gate.at_ready(run, &seen.contexts);
        let end = JobEnd {
            outcome: o,
            error: reported.as_deref(),
            file_size: est.as_ref().map_or(0, |e| e.file_size),
            use_mmap: run.engine.model.use_mmap,
            tg_capped: None,
            tg_uncapped: None,
        };
        let mut record = guard::record(
            "eval",
            run.mem_cap.as_ref(),
            est.as_ref(),
            &run.engine.model,
            &end,
        );
        // The largest context the worker made (the generation one when it had both).
        if let Some(c) = seen.contexts.iter().max_by_key(|c| (c.n_seq, c.n_ctx)) {
            record.n_ctx = Some(c.n_ctx);
            record.n_seq = Some(c.n_seq);
        }
        record
    });
    // A run stopped by Ctrl-C or SIGTERM: the cell is incomplete, not failed, and what the
    // stopped worker did with memory says nothing about the model.
    let stopped = crate::interrupt::interrupted();
    let memory = memory.filter(|_| !stopped);
    if let Some(m) = &memory {
        store.record_memory(f.cell_id, m)?;
    }
    let error = cell_error(&CellEnd {
        memory: memory.as_ref(),
        reported,
        exit: seen.exit.as_ref(),
        unanswered: f.unanswered,
    });
    let (status, error) = match error {
        Some(_) if stopped => (
            CellStatus::Running,
            Some("stopped before the end (rerun to resume)".to_string()),
        ),
        Some(e) => (CellStatus::Failed, Some(e)),
        None => (CellStatus::Done, None),
    };
    let task_wall_ms = task_walls(
        &f.plan_runs,
        &seen.last_stored,
        seen.ready_at.unwrap_or(f.start),
    );
    let peak = seen.exit.as_ref().map(|o| o.peak_rss_bytes);
    store.finish_cell(
        f.cell_id,
        status,
        error.as_deref(),
        peak,
        seen.contexts.first().map(|r| r.load_ms),
    )?;
    Ok(CellOutcome {
        cell_id: f.cell_id,
        status,
        error,
        peak_rss_bytes: peak,
        contexts: seen.contexts,
        stored: seen.stored,
        skipped: f.skipped,
        elapsed_ms: f.start.elapsed().as_secs_f64() * 1e3,
        task_wall_ms,
        engine_stats: seen.engine_stats,
        sandbox_ms: seen.sandbox_ms,
        sandbox_reruns: seen.sandbox_reruns,
        memory,
    })
}

/// Everything that can explain a failed cell, as its run ended.
struct CellEnd<'a> {
    /// The worker's memory record (with its verdict under the cap, if any).
    memory: Option<&'a MemoryRecord>,
    /// The worker's own error message, else the sandbox's.
    reported: Option<String>,
    exit: Option<&'a frontier_process::ChildOutcome>,
    /// Items the worker never answered.
    unanswered: usize,
}

/// The cell's error, the most telling cause first: running out of memory under the cap
/// (the cell's outcome under that cap, said as such), then what the worker (or the sandbox)
/// reported, then how the worker ended if it crashed, then items left unanswered. `None`
/// when the cell is done.
fn cell_error(end: &CellEnd<'_>) -> Option<String> {
    let capped_out = end
        .memory
        .filter(|m| m.limit.is_some() && m.verdict == Verdict::OomKilled)
        .map(|m| format!("{}: {}", m.verdict.as_str(), m.detail));
    let crashed = end
        .exit
        .filter(|o| !o.exit.success())
        .map(frontier_process::ChildOutcome::failure_summary);
    capped_out
        .or_else(|| end.reported.clone())
        .or(crashed)
        .or_else(|| {
            (end.unanswered > 0)
                .then(|| format!("{} items were not answered by the worker", end.unanswered))
        })
}

/// The wall time of each task plan (by key): from the previous plan's last item (or the
/// model being ready) to its own last item.
fn task_walls(
    plan_runs: &[(String, i64)],
    last_stored: &std::collections::HashMap<i64, Instant>,
    ready_at: Instant,
) -> Vec<(String, f64)> {
    let mut walls = Vec::new();
    let mut previous = ready_at;
    for (key, task_run_id) in plan_runs {
        if let Some(&t) = last_stored.get(task_run_id) {
            walls.push((
                key.clone(),
                t.saturating_duration_since(previous).as_secs_f64() * 1e3,
            ));
            previous = previous.max(t);
        }
    }
    walls
}

#[cfg(test)]
mod tests;
