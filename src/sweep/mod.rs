//! The sweep: models × quants × tasks. Each (model, quant) cell runs in worker processes
//! (speed, then evaluation); the parent stores every finished item at once, survives a
//! worker's crash or OOM (the cell is recorded as failed with its error), resumes what is
//! stored, and stops cleanly on Ctrl-C.

pub mod resolve;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::datasets::Source;
use crate::eval::cell::cell_for_model;
use crate::eval::runner::{run_cell, CellRun, EngineSettings, SweepProgress};
use crate::fidelity::{BaseChoice, Candidate, FidelitySettings};
use crate::memory::verdict::{MemoryRecord, Verdict};
use crate::memory::SERVE_JOB;
use crate::output::progress;
use crate::sandbox::Sandbox;
use crate::store::{CellInfo, CellStatus, SpeedRecord, Store};
use crate::tasks::plan::plans_for_model;
use crate::tasks::{TaskFormats, TaskName, TaskOptions};
use frontier_engine::bench::SpeedConfig;
use frontier_gguf::read_summary as model_summary;
use frontier_process::cap::MemCap;
pub use resolve::{model_file, resolve, PlannedCell, ResolveOptions};

/// Everything a sweep does for each cell.
pub struct SweepConfig<'a> {
    pub tasks: &'a [TaskName],
    pub options: &'a TaskOptions,
    pub formats: &'a TaskFormats,
    /// `--template`: the family for the tuned format instead of the automatic choice.
    pub template: Option<&'a str>,
    /// Items per cell (for the overall progress bar).
    pub items_per_cell: usize,
    /// Run a speed measurement per cell (at the serving context).
    pub speed: Option<SpeedConfig>,
    /// The context the model's serving footprint is measured at (one sequence).
    pub serve_ctx: u32,
    pub engine: EngineSettings,
    pub sandbox: Option<Arc<Sandbox>>,
    pub sandbox_threads: usize,
    pub source: Source,
    pub verbosity: u8,
    pub quiet: bool,
    /// `--mem-limit` for every worker of every cell.
    pub mem_cap: Option<MemCap>,
    /// The fidelity task, with each model's base.
    pub fidelity: Option<FidelityPlan>,
}

/// The fidelity task of a sweep: the text and shape, and each model's base (none when the
/// model has a single file and no `--base`).
pub struct FidelityPlan {
    pub settings: FidelitySettings,
    pub bases: BTreeMap<String, Option<BaseChoice>>,
}

impl FidelityPlan {
    /// Chooses each model's base among its cells (or `--base`) and checks, from the files'
    /// headers, that every file shares its base's vocabulary, before any model runs.
    pub fn new(settings: FidelitySettings, cells: &[PlannedCell]) -> Result<FidelityPlan> {
        let mut bases = BTreeMap::new();
        let mut models: Vec<&str> = cells.iter().map(|c| c.model.as_str()).collect();
        models.dedup();
        for model in models {
            if bases.contains_key(model) {
                continue;
            }
            let files: Vec<(&PlannedCell, &std::path::Path)> = cells
                .iter()
                .filter(|c| c.model == model && c.problem.is_none())
                .filter_map(|c| c.path.as_deref().map(|p| (c, p)))
                .collect();
            let candidates: Vec<Candidate<'_>> = files
                .iter()
                .map(|(c, p)| Candidate {
                    quant: &c.quant,
                    path: p,
                    derived_from: c.derived_from.as_deref(),
                })
                .collect();
            let base = crate::fidelity::choose_base(&candidates, settings.base.as_deref())?;
            if let Some(b) = &base {
                for (_, p) in &files {
                    crate::fidelity::check_same_vocabulary(&b.path, p)?;
                }
            }
            bases.insert(model.to_string(), base);
        }
        Ok(FidelityPlan { settings, bases })
    }
}

/// How the sweep went, cell by cell.
#[derive(Debug, Clone, Default)]
pub struct SweepOutcome {
    pub done: usize,
    pub failed: usize,
    pub stored: usize,
    pub skipped: usize,
    pub interrupted: bool,
}

pub fn run(
    store: &Store,
    run_id: i64,
    cells: &[PlannedCell],
    cfg: &SweepConfig<'_>,
) -> Result<SweepOutcome> {
    let items_per_cell = cfg.items_per_cell;
    let multi = indicatif::MultiProgress::new();
    if !progress::enabled(cfg.quiet) {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let overall = multi.add(progress::count_bar(
        (items_per_cell * cells.len()) as u64,
        "sweep",
        cfg.quiet,
    ));
    let display = SweepProgress {
        multi,
        overall,
        quiet: cfg.quiet,
    };
    let mut outcome = SweepOutcome::default();
    for (i, planned) in cells.iter().enumerate() {
        if crate::interrupt::interrupted() {
            outcome.interrupted = true;
            break;
        }
        let label = format!("{} {}", planned.model, planned.quant);
        display.say(format!("[{}/{}] {label}", i + 1, cells.len()));
        let status = run_one(store, run_id, planned, cfg, &display, &mut outcome)?;
        match status {
            CellStatus::Done => outcome.done += 1,
            _ => outcome.failed += 1,
        }
    }
    display.overall.finish_and_clear();
    if crate::interrupt::interrupted() {
        outcome.interrupted = true;
    }
    Ok(outcome)
}

/// Runs one cell; every failure of the cell itself is recorded, not returned.
fn run_one(
    store: &Store,
    run_id: i64,
    planned: &PlannedCell,
    cfg: &SweepConfig<'_>,
    display: &SweepProgress,
    outcome: &mut SweepOutcome,
) -> Result<CellStatus> {
    let fail = |store: &Store, info: &CellInfo, why: &str| -> Result<CellStatus> {
        let id = store.upsert_cell(run_id, info)?;
        store.finish_cell(id, CellStatus::Failed, Some(why), None, None)?;
        display.say(format!("  failed: {why}"));
        Ok(CellStatus::Failed)
    };
    let placeholder = || CellInfo {
        key: format!("unavailable:{}:{}", planned.model, planned.quant),
        model: planned.model.clone(),
        model_path: planned.origin.clone(),
        model_sha256: String::new(),
        quant: planned.quant.clone(),
        derived_from: planned.derived_from.clone(),
        architecture: String::new(),
        n_params: 0,
        file_size: 0,
        config: json!({ "origin": planned.origin, "data_source": cfg.source.describe() }),
    };
    if let Some(problem) = &planned.problem {
        return fail(store, &placeholder(), problem);
    }
    let Some(path) = &planned.path else {
        return fail(store, &placeholder(), "no model file");
    };
    // A corrupt file is this cell's failure, not the sweep's.
    let summary = match model_summary(path) {
        Ok(s) => s,
        Err(e) => return fail(store, &placeholder(), &format!("{e:#}")),
    };
    let plans = match plans_for_model(
        cfg.tasks,
        cfg.options,
        &cfg.source,
        cfg.formats,
        cfg.template,
        &summary,
        path,
    ) {
        Ok(p) => p,
        Err(e) => return fail(store, &placeholder(), &format!("{e:#}")),
    };
    let mut info = cell_for_model(
        path,
        &summary,
        cfg.formats,
        &cfg.engine,
        &cfg.source,
        cfg.quiet,
    )?;
    info.model = planned.model.clone();
    if planned.derived_from.is_some() {
        info.derived_from = planned.derived_from.clone();
    }
    info.config["origin"] = json!(planned.origin);
    if let Some(sha) = &planned.sha256 {
        info.model_sha256 = sha.clone();
    }

    let (speed_error, speed_peak) = match speed_step(store, run_id, &info, path, cfg)? {
        SpeedStep::Measured { error, peak } => (error, peak),
        SpeedStep::DoesNotFit {
            cell_id,
            verdict,
            why,
            peak,
        } => {
            store.finish_cell(cell_id, CellStatus::Failed, Some(&why), peak, None)?;
            display.say(format!("  {}: {why}", verdict.as_str()));
            display.overall.inc(cfg.items_per_cell as u64);
            return Ok(CellStatus::Failed);
        }
    };

    let fidelity_error = match &cfg.fidelity {
        Some(plan) => {
            let cell_id = store.upsert_cell(run_id, &info)?;
            measure_fidelity(store, cell_id, planned, path, plan, cfg, display)
        }
        None => None,
    };

    if cfg.speed.is_none() && !cfg.tasks.is_empty() {
        serving_step(store, run_id, &info, path, cfg)?;
    }

    let result = run_cell(&CellRun {
        store,
        run_id,
        cell: info,
        model_path: path.clone(),
        plans: &plans,
        engine: cfg.engine.clone(),
        sandbox: cfg.sandbox.clone(),
        sandbox_threads: cfg.sandbox_threads,
        verbosity: cfg.verbosity,
        quiet: cfg.quiet,
        progress: Some(display),
        mem_cap: cfg.mem_cap,
    })?;
    outcome.stored += result.stored;
    outcome.skipped += result.skipped;
    let mut status = result.status;
    let error = result.error.clone().or(speed_error).or(fidelity_error);
    if crate::interrupt::interrupted() {
        status = CellStatus::Running;
    } else if error.is_some() {
        status = CellStatus::Failed;
    }
    store.finish_cell(result.cell_id, status, error.as_deref(), speed_peak, None)?;
    if let Some(e) = &error {
        display.say(format!("  failed: {e}"));
    }
    Ok(status)
}

/// What the speed step of a cell left: its measurement (or the error that stopped it), or
/// a model that does not run under the memory cap.
enum SpeedStep {
    Measured {
        error: Option<String>,
        peak: Option<u64>,
    },
    DoesNotFit {
        cell_id: i64,
        verdict: Verdict,
        why: String,
        peak: Option<u64>,
    },
}

/// The cell's speed tests (`-p`, `-n`) unless the store has them; a model that does not run
/// under the cap is not evaluated under it either.
fn speed_step(
    store: &Store,
    run_id: i64,
    info: &CellInfo,
    path: &Path,
    cfg: &SweepConfig<'_>,
) -> Result<SpeedStep> {
    let none = SpeedStep::Measured {
        error: None,
        peak: None,
    };
    let Some(speed) = &cfg.speed else {
        return Ok(none);
    };
    let cell_id = store.upsert_cell(run_id, info)?;
    let have = store.speed(cell_id)?;
    let wanted = [(speed.n_prompt, 0), (0, speed.n_gen)];
    let missing = wanted
        .iter()
        .any(|&(p, n)| (p > 0 || n > 0) && !have.iter().any(|s| s.n_prompt == p && s.n_gen == n));
    if !missing {
        return Ok(none);
    }
    let (error, peak, verdict) = measure_speed(
        store,
        cell_id,
        path,
        speed,
        cfg.engine.backend.clone(),
        cfg.mem_cap.as_ref(),
        cfg.verbosity,
    )?;
    Ok(match verdict.filter(|v| *v != Verdict::Fits) {
        Some(v) => SpeedStep::DoesNotFit {
            cell_id,
            verdict: v,
            why: error.unwrap_or_else(|| v.as_str().to_string()),
            peak,
        },
        None => SpeedStep::Measured { error, peak },
    })
}

/// The model's serving footprint at `--serve-ctx`, unless the store has it (without the
/// speed task, which measures it on its own). A served model's memory is the server's:
/// nothing local to measure.
fn serving_step(
    store: &Store,
    run_id: i64,
    info: &CellInfo,
    path: &Path,
    cfg: &SweepConfig<'_>,
) -> Result<()> {
    if cfg.engine.backend.remote().is_some() {
        return Ok(());
    }
    let cell_id = store.upsert_cell(run_id, info)?;
    let measured = store
        .memory(cell_id)?
        .iter()
        .any(|m| m.job == SERVE_JOB && m.n_ctx == Some(cfg.serve_ctx));
    if !measured {
        measure_serving(store, cell_id, path, cfg)?;
    }
    Ok(())
}

/// The speed test of a cell in its own worker (under the cap, after an uncapped reference
/// when there is one); stores the tests and the memory records. Returns the error (if the
/// worker failed), the worker's peak RSS, and the verdict under the cap.
fn measure_speed(
    store: &Store,
    cell_id: i64,
    path: &std::path::Path,
    config: &SpeedConfig,
    backend: crate::backend::Backend,
    cap: Option<&MemCap>,
    verbosity: u8,
) -> Result<(Option<String>, Option<u64>, Option<Verdict>)> {
    let one = crate::measure::capped::measure_one(path, config, backend, cap, verbosity)?;
    for record in &one.memory {
        store.record_memory(cell_id, record)?;
    }
    // The speed worker runs one sequence at the serving context: its uncapped run is the
    // model's serving footprint.
    if let Some(serve) = serving_record(&one.memory, config.context.n_ctx) {
        store.record_memory(cell_id, &serve)?;
    }
    let verdict = cap.and(one.memory.first().map(|m| m.verdict));
    let peak = (one.peak > 0).then_some(one.peak);
    let Some(m) = one.measured else {
        return Ok((
            one.error.or(Some("no speed measured".into())),
            peak,
            verdict,
        ));
    };
    for t in &m.tests {
        store.record_speed(
            cell_id,
            &SpeedRecord {
                test: t.name.clone(),
                n_prompt: t.n_prompt,
                n_gen: t.n_gen,
                avg_ts: t.avg_ts,
                stddev_ts: t.stddev_ts,
                samples_ts: t.samples_ts.clone(),
                ttft_ms: m.ttft_ms,
                load_ms: m.load_ms,
            },
        )?;
    }
    Ok((one.error, peak, verdict))
}

/// The fidelity of one cell against its model's base; the error, if it failed.
fn measure_fidelity(
    store: &Store,
    cell_id: i64,
    planned: &PlannedCell,
    path: &std::path::Path,
    plan: &FidelityPlan,
    cfg: &SweepConfig<'_>,
    display: &SweepProgress,
) -> Option<String> {
    let Some(base) = plan.bases.get(&planned.model).and_then(Option::as_ref) else {
        display
            .say("  fidelity: no base to compare with (the model has one file; --base names one)");
        return None;
    };
    let bar = display.multi.add(progress::count_bar(
        plan.settings.n_chunks as u64,
        &format!("fidelity vs {}", base.quant),
        cfg.quiet,
    ));
    let worker = crate::fidelity::WorkerSettings {
        model: cfg.engine.model.clone(),
        threads: cfg.engine.context.threads,
        cap: cfg.mem_cap,
        verbosity: cfg.verbosity,
    };
    let result = crate::fidelity::score_cell(
        store,
        cell_id,
        path,
        &plan.settings,
        base,
        &worker,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    );
    bar.finish_and_clear();
    match result {
        Ok(done) => {
            display.say(format!(
                "  fidelity vs {}: base distributions {} ({}, {}); {}",
                base.quant,
                if done.base_computed {
                    "computed"
                } else {
                    "reused"
                },
                frontier_core::units::bytes(done.base_file_bytes),
                done.base_file.display(),
                if done.is_base {
                    "this is the base".to_string()
                } else {
                    format!(
                        "{} chunks compared now, {} already stored",
                        done.compared, done.already
                    )
                }
            ));
            None
        }
        Err(e) => Some(format!("fidelity: {e:#}")),
    }
}

/// The serving record from a speed worker's records (its uncapped run), at `n_ctx`.
fn serving_record(records: &[MemoryRecord], n_ctx: u32) -> Option<MemoryRecord> {
    let uncapped = records
        .iter()
        .find(|m| m.limit.is_none() && m.peak_rss.is_some())?;
    Some(MemoryRecord {
        job: SERVE_JOB.into(),
        n_ctx: Some(n_ctx),
        n_seq: Some(1),
        ..uncapped.clone()
    })
}

/// A short run of its own (a 512-token prompt, 16 generated tokens, one sequence at the
/// serving context) when the sweep measures no speed: only its memory is kept.
fn measure_serving(
    store: &Store,
    cell_id: i64,
    path: &std::path::Path,
    cfg: &SweepConfig<'_>,
) -> Result<()> {
    let config = SpeedConfig {
        n_prompt: 512.min(cfg.serve_ctx / 2).max(1),
        n_gen: 16,
        n_depth: 0,
        reps: 1,
        warmup: 1,
        model: cfg.engine.model.clone(),
        context: frontier_engine::ContextOptions {
            n_ctx: cfg.serve_ctx,
            n_seq_max: 1,
            stream_per_seq: false,
            ..cfg.engine.context.clone()
        },
    };
    let one = crate::measure::capped::measure_one(
        path,
        &config,
        cfg.engine.backend.clone(),
        None,
        cfg.verbosity,
    )?;
    if let Some(serve) = serving_record(&one.memory, cfg.serve_ctx) {
        store.record_memory(cell_id, &serve)?;
    }
    Ok(())
}
