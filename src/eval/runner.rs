//! The parent's half of evaluating one cell (a model file): register the cell and its task
//! runs in the store, send the items not yet stored to a worker process, score what comes
//! back (HumanEval programs in sandbox threads, overlapping with generation), and store
//! each item the moment it is scored. A worker that crashes or is killed ends the cell as
//! failed with its error; everything stored before stays.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use serde_json::json;

use super::infer::{WorkResult, WorkUnit};
use crate::engine::{ContextOptions, ModelOptions};
use crate::hashing::sha256_hex;
use crate::memory::cap::MemCap;
use crate::memory::guard;
use crate::memory::verdict::{JobEnd, MemoryRecord, Verdict};
use crate::output::progress;
use crate::sandbox::{Outcome, Sandbox};
use crate::store::{CellInfo, CellStatus, ItemRow, Store, TaskRunSpec};
use crate::tasks::{humaneval, score, Item, Scored, TaskName, TaskPlan};
use crate::worker::{run_job_capped, ChildOutcome, EvalJob, EvalReady, Event, Job};

/// How to run the model: load options, context, sequences evaluated together.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub model: ModelOptions,
    pub context: ContextOptions,
    pub parallel: u32,
    /// Evaluate shared few-shot prefixes once (off: every prompt whole, the reference path).
    pub share_prefix: bool,
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
}

/// How a cell's evaluation went.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    pub cell_id: i64,
    pub status: CellStatus,
    pub error: Option<String>,
    pub peak_rss_bytes: Option<u64>,
    pub ready: Option<EvalReady>,
    /// Items scored and stored in this run.
    pub stored: usize,
    /// Items found already stored and not recomputed.
    pub skipped: usize,
    pub elapsed_ms: f64,
    /// Where the worker's engine time went (prefix, questions, generation).
    pub engine_stats: Option<crate::engine::EngineStats>,
    /// Time spent running generated code in the sandbox (summed over programs).
    pub sandbox_ms: f64,
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
            ready: None,
            stored: 0,
            skipped,
            elapsed_ms: 0.0,
            task_wall_ms: Vec::new(),
            engine_stats: None,
            sandbox_ms: 0.0,
            memory: refused,
        }
    }
}

/// Messages the main loop receives from the worker reader and the sandbox threads.
enum Msg {
    Worker(Event),
    WorkerExit(Result<ChildOutcome>),
    Sandboxed(String, Result<Outcome>),
}

/// An item waiting to be stored, and where.
struct Pending<'p> {
    item: &'p Item,
    task: TaskName,
    task_run_id: i64,
    result: Option<WorkResult>,
}

pub fn run_cell(run: &CellRun<'_>) -> Result<CellOutcome> {
    let start = std::time::Instant::now();
    let store = run.store;
    let cell_id = store.upsert_cell(run.run_id, &run.cell)?;

    let mut pending: HashMap<String, Pending<'_>> = HashMap::new();
    let mut units = Vec::new();
    let mut skipped = 0;
    let mut plan_runs = Vec::new();
    for plan in run.plans {
        let key = plan.key();
        let tr = store.upsert_task_run(
            cell_id,
            &TaskRunSpec {
                task: plan.task.as_str(),
                task_key: &key,
                protocol: &plan.protocol,
                dataset_hash: &plan.dataset_hash,
                n_shot: plan.n_shot,
                n_items: plan.items.len(),
            },
        )?;
        plan_runs.push((key, tr.id));
        let done = store.done_items(tr.id)?;
        for item in &plan.items {
            if done.contains(&item.id) {
                skipped += 1;
                continue;
            }
            let key = format!("{}\t{}", tr.id, item.id);
            units.push(WorkUnit {
                key: key.clone(),
                group: format!("{}/{}", plan.task.as_str(), plan.format.as_str()),
                work: item.work.clone(),
                prefix: item.shared_prefix.clone(),
            });
            pending.insert(
                key,
                Pending {
                    item,
                    task: plan.task,
                    task_run_id: tr.id,
                    result: None,
                },
            );
        }
    }
    if let Some(p) = run.progress {
        p.overall.inc(skipped as u64);
    }
    if units.is_empty() {
        store.finish_cell(cell_id, CellStatus::Done, None, None, None)?;
        return Ok(CellOutcome::without_worker(cell_id, skipped, None));
    }
    if run
        .plans
        .iter()
        .any(|p| p.items.iter().any(score::needs_sandbox))
        && run.sandbox.is_none()
    {
        return Err(anyhow!("HumanEval needs a sandbox"));
    }

    // A cap below the weights is refused before anything loads.
    let model_options = &run.engine.model;
    let guess_ctx = match run.engine.context.n_ctx {
        0 => 256 * run.engine.parallel.max(1),
        n => n,
    };
    let estimate_at = |n_ctx: u32, n_seq: u32| {
        guard::file_estimate(
            &run.model_path,
            n_ctx as u64,
            n_seq as u64,
            run.engine.context.n_ubatch as u64,
            model_options.use_mmap,
        )
        .ok()
    };
    let first_estimate = estimate_at(guess_ctx, run.engine.parallel);
    if let Some(refused) = first_estimate
        .as_ref()
        .and_then(|e| guard::refused("eval", run.mem_cap.as_ref(), e, model_options))
    {
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
    guard::before_run(run.mem_cap.as_ref(), &run.model_path, model_options);

    let mut bar = progress::count_bar(
        units.len() as u64,
        &format!("{} {}", run.cell.model, run.cell.quant),
        run.quiet,
    );
    if let Some(p) = run.progress {
        bar = p.multi.add(bar);
    }
    let overall = run.progress.map(|p| p.overall.clone());
    let mut lines = progress::ProgressLines::new(run.quiet);
    let tick = |bar: &indicatif::ProgressBar, lines: &mut progress::ProgressLines| {
        bar.inc(1);
        lines.after_inc(bar);
        if let Some(o) = &overall {
            o.inc(1);
        }
    };
    let (tx, rx) = mpsc::channel::<Msg>();

    // The worker, read on its own thread.
    let job = Job::Eval(EvalJob {
        model: run.model_path.clone(),
        model_options: run.engine.model.clone(),
        context: run.engine.context.clone(),
        parallel: run.engine.parallel,
        memory_budget: run.mem_cap.map(|c| c.limit),
        share_prefix: run.engine.share_prefix,
        units,
    });
    let verbosity = run.verbosity;
    let worker_tx = tx.clone();
    let cap = run.mem_cap;
    let worker = std::thread::spawn(move || {
        let events = worker_tx.clone();
        let outcome = run_job_capped(&job, verbosity, cap.as_ref(), move |e| {
            let _ = events.send(Msg::Worker(e));
        });
        let _ = worker_tx.send(Msg::WorkerExit(outcome));
    });

    // Sandbox threads take programs from a queue.
    let (prog_tx, prog_rx) = mpsc::channel::<(String, String)>();
    let prog_rx = Arc::new(std::sync::Mutex::new(prog_rx));
    let mut sandbox_threads = Vec::new();
    if let Some(sandbox) = &run.sandbox {
        for _ in 0..run.sandbox_threads.max(1) {
            let (sandbox, rx, tx) = (sandbox.clone(), prog_rx.clone(), tx.clone());
            sandbox_threads.push(std::thread::spawn(move || loop {
                let next = rx.lock().ok().and_then(|r| r.recv().ok());
                let Some((key, program)) = next else { break };
                let _ = tx.send(Msg::Sandboxed(key, sandbox.run_python(&program)));
            }));
        }
    }
    drop(tx);

    let mut stored = 0;
    let mut ready = None;
    let mut worker_error: Option<String> = None;
    let mut exit: Option<ChildOutcome> = None;
    let mut worker_done = false;
    let mut in_sandbox = 0usize;
    let mut ready_at = None;
    let mut engine_stats = None;
    let mut sandbox_ms = 0.0;
    let mut last_stored: HashMap<i64, std::time::Instant> = HashMap::new();
    while !(worker_done && in_sandbox == 0) {
        let Ok(msg) = rx.recv() else { break };
        match msg {
            Msg::Worker(Event::Ready(r)) => {
                ready = Some(r);
                ready_at = Some(std::time::Instant::now());
                // Rates from here on: loading the model is not evaluation time.
                bar.reset_elapsed();
            }
            Msg::Worker(Event::Result(r)) => {
                let Some(p) = pending.get_mut(&r.key) else {
                    continue;
                };
                if score::needs_sandbox(p.item) {
                    let program = humaneval::program(p.item, &r.response);
                    let key = r.key.clone();
                    p.result = Some(r);
                    in_sandbox += 1;
                    let _ = prog_tx.send((key, program));
                } else {
                    let Some(scored) = score::score(p.item, &r.response) else {
                        continue;
                    };
                    store_item(store, p, &r, scored)?;
                    last_stored.insert(p.task_run_id, std::time::Instant::now());
                    pending.remove(&r.key);
                    stored += 1;
                    tick(&bar, &mut lines);
                }
            }
            Msg::Worker(Event::UnitError { key, message }) => {
                if let Some(p) = pending.remove(&key) {
                    let failed = unit_failure(&p, &message);
                    store.insert_item(p.task_run_id, &failed)?;
                    stored += 1;
                    tick(&bar, &mut lines);
                }
            }
            Msg::Worker(Event::Error { message, .. }) => worker_error = Some(message),
            Msg::Worker(Event::Finished { stats, .. }) => engine_stats = Some(stats),
            Msg::Worker(Event::Speed(_) | Event::Projected) => {}
            Msg::WorkerExit(outcome) => {
                worker_done = true;
                match outcome {
                    Ok(o) => exit = Some(o),
                    Err(e) => worker_error = Some(format!("{e:#}")),
                }
            }
            Msg::Sandboxed(key, outcome) => {
                in_sandbox -= 1;
                let Some(p) = pending.remove(&key) else {
                    continue;
                };
                let Some(r) = p.result.clone() else { continue };
                let scored = match outcome {
                    Ok(o) => {
                        sandbox_ms += o.duration_ms as f64;
                        humaneval::score(p.item, &r.response, &o)
                    }
                    Err(e) => {
                        worker_error.get_or_insert(format!("sandbox: {e:#}"));
                        continue;
                    }
                };
                store_item(store, &p, &r, scored)?;
                last_stored.insert(p.task_run_id, std::time::Instant::now());
                stored += 1;
                tick(&bar, &mut lines);
            }
        }
    }
    drop(prog_tx);
    for t in sandbox_threads {
        let _ = t.join();
    }
    let _ = worker.join();
    bar.finish_and_clear();

    let peak = exit.as_ref().map(|o| o.peak_rss_bytes);
    let memory = exit.as_ref().map(|o| {
        let est = ready
            .as_ref()
            .and_then(|r| estimate_at(r.n_ctx, r.n_seq))
            .or(first_estimate.clone());
        let end = JobEnd {
            outcome: o,
            error: worker_error.as_deref(),
            file_size: est.as_ref().map_or(0, |e| e.file_size),
            use_mmap: model_options.use_mmap,
            tg_capped: None,
            tg_uncapped: None,
        };
        guard::record(
            "eval",
            run.mem_cap.as_ref(),
            est.as_ref(),
            model_options,
            &end,
        )
    });
    if let Some(m) = &memory {
        store.record_memory(cell_id, m)?;
    }
    // Under a cap, running out of memory is the cell's outcome, said as such.
    let capped_out = memory
        .as_ref()
        .filter(|m| m.limit.is_some() && m.verdict == Verdict::OomKilled)
        .map(|m| format!("{}: {}", m.verdict.as_str(), m.detail));
    let crashed = exit
        .as_ref()
        .filter(|o| !o.exit.success())
        .map(ChildOutcome::failure_summary);
    let error = capped_out.or(worker_error).or(crashed).or_else(|| {
        (!pending.is_empty())
            .then(|| format!("{} items were not answered by the worker", pending.len()))
    });
    let status = if error.is_some() {
        CellStatus::Failed
    } else {
        CellStatus::Done
    };
    let mut task_wall_ms = Vec::new();
    let mut previous = ready_at.unwrap_or(start);
    for (key, task_run_id) in plan_runs {
        if let Some(&t) = last_stored.get(&task_run_id) {
            task_wall_ms.push((
                key,
                t.saturating_duration_since(previous).as_secs_f64() * 1e3,
            ));
            previous = previous.max(t);
        }
    }
    store.finish_cell(
        cell_id,
        status,
        error.as_deref(),
        peak,
        ready.as_ref().map(|r| r.load_ms),
    )?;
    Ok(CellOutcome {
        cell_id,
        status,
        error,
        peak_rss_bytes: peak,
        ready,
        stored,
        skipped,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        task_wall_ms,
        engine_stats,
        sandbox_ms,
        memory,
    })
}

fn store_item(store: &Store, p: &Pending<'_>, r: &WorkResult, s: Scored) -> Result<()> {
    store.insert_item(
        p.task_run_id,
        &ItemRow {
            item_id: p.item.id.clone(),
            group: p.item.group.clone(),
            prompt_sha256: sha256_hex(p.item.work.prompt_text().as_bytes()),
            output: s.output,
            extracted: s.extracted,
            gold: p.item.gold.clone(),
            correct: s.correct,
            format_failure: s.format_failure,
            metrics: s.metrics,
            detail: s.detail,
            prompt_tokens: r.prompt_tokens as u64,
            output_tokens: r.output_tokens as u64,
            time_ms: r.time_ms,
        },
    )?;
    Ok(())
}

fn unit_failure(p: &Pending<'_>, message: &str) -> ItemRow {
    let metric = p.task.primary_metric().to_string();
    ItemRow {
        item_id: p.item.id.clone(),
        group: p.item.group.clone(),
        prompt_sha256: sha256_hex(p.item.work.prompt_text().as_bytes()),
        output: String::new(),
        extracted: None,
        gold: p.item.gold.clone(),
        correct: false,
        format_failure: false,
        metrics: [(metric, 0.0)].into(),
        detail: json!({ "error": message }),
        prompt_tokens: 0,
        output_tokens: 0,
        time_ms: 0.0,
    }
}
