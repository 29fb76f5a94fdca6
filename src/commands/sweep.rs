//! `frontier sweep`: models × quants × tasks (+ speed) in one command, resumable, ending in
//! results.csv, comparison.csv/.md and frontier.svg.

use anyhow::Result;
use serde_json::json;

use crate::catalog::{Catalog, ModelRef};
use crate::cli::{Executor, SweepArgs};
use crate::hub::{Hub, HubConfig};
use crate::settings::{
    build_plans, engine_settings, fidelity_settings, generation_steps, parse_tasks, sandbox_for,
    task_formats, task_options,
};
use crate::slurm::{ArrayRun, CellPlan, Ended, JobFile, SlurmOptions};
use crate::store::Store;
use crate::sweep::{self, PlannedCell, ResolveOptions, SweepConfig};
use frontier_core::error::bad_input;
use frontier_engine::bench::SpeedConfig;
use frontier_engine::ContextOptions;

pub fn run(args: &SweepArgs, verbosity: u8, quiet: bool) -> Result<i32> {
    if let Some(dir) = &args.slurm.status {
        crate::output::print(crate::slurm::status::render(dir)?)?;
        return Ok(0);
    }
    // Everything is checked before any model is downloaded or run.
    check_executor_flags(&args.slurm)?;
    let selected = parse_tasks(&args.tasks.tasks);
    let (tasks, want_speed) = (selected.eval.clone(), selected.speed);
    if tasks.is_empty() && !want_speed && !selected.fidelity {
        return Err(bad_input("no tasks given"));
    }
    let (mut opts, source) = task_options(&args.tasks, &args.sandbox)?;
    let mem_cap = args.mem.cap()?;
    let engine = engine_settings(&args.run, &args.batch, mem_cap.as_ref(), quiet)?;
    opts.generation_steps = Some(generation_steps(&engine));
    let speed = speed_config(args, &engine, want_speed)?;
    let catalog = Catalog::load(&args.models_from.catalog)?;
    let hub = hub_if_needed(&args.models, &catalog)?;
    let sandbox = sandbox_for(&tasks, &opts, &args.sandbox)?;
    let formats = task_formats(&args.tasks.format, &tasks);
    // Reading every dataset now catches bad data before any model runs.
    let plans = build_plans(&tasks, &opts, &source)?;
    let items_per_cell: usize = plans
        .iter()
        .map(|p| p.items.len() * formats.runs_of(p.task))
        .sum();

    let cells = sweep::resolve(
        &args.models,
        &catalog,
        hub.as_ref(),
        &ResolveOptions::from_args(&args.quants, &args.models_from, quiet),
    )?;
    let fidelity = fidelity_plan(args, selected.fidelity, &cells)?;
    let (store_path, cells) = match args.slurm.cell {
        // An array task: one cell, into its own shard.
        Some(n) => (
            crate::slurm::shard_path(&args.out, n),
            vec![task_cell(&args.out, &cells, n)?],
        ),
        None if args.slurm.executor == Executor::Slurm => {
            let threads = engine.context.threads;
            return run_on_slurm(args, &cells, items_per_cell, threads, quiet);
        }
        None => (args.out.join("results.sqlite"), cells),
    };
    let store = Store::open(&store_path)?;
    let run_id = store.begin_run(
        "sweep",
        &json!({ "args": std::env::args().collect::<Vec<_>>(), "source": source.describe() }),
    )?;
    crate::interrupt::install();
    if !quiet {
        let items: usize = plans.iter().map(|p| p.items.len()).sum();
        let mut extras = String::new();
        if want_speed {
            extras.push_str(" + speed");
        }
        if fidelity.is_some() {
            extras.push_str(" + fidelity");
        }
        if let Some(c) = &mem_cap {
            extras.push_str(&format!(
                "; every model under a memory cap of {}",
                c.describe()
            ));
        }
        eprintln!(
            "sweep: {} cells × {items} items{extras}; results in {}",
            cells.len(),
            store.path().display()
        );
    }
    let outcome = sweep::run(
        &store,
        run_id,
        &cells,
        &SweepConfig {
            tasks: &tasks,
            options: &opts,
            formats: &formats,
            template: args.tasks.template.as_deref(),
            items_per_cell,
            speed,
            serve_ctx: args.serve_ctx,
            engine,
            sandbox,
            sandbox_threads: args.sandbox.jobs,
            source,
            verbosity,
            quiet,
            mem_cap,
            fidelity,
        },
    )?;
    if args.slurm.cell.is_some() {
        finish_array_task(&outcome, &store, quiet)
    } else {
        finish(&outcome, &store, args, quiet)
    }
}

/// The Slurm resource flags mean nothing without `--executor slurm`; with it, Slurm's
/// commands must be there (checked in the submitting process, not in an array task).
fn check_executor_flags(s: &crate::cli::SlurmArgs) -> Result<()> {
    let slurm_only = s.partition.is_some()
        || s.time.is_some()
        || s.mem.is_some()
        || s.gpus.is_some()
        || s.array_limit.is_some()
        || s.detach;
    if slurm_only && s.executor != Executor::Slurm {
        return Err(bad_input(
            "--partition, --time, --mem, --gpus, --array-limit and --detach need --executor slurm",
        ));
    }
    if s.executor == Executor::Slurm && s.cell.is_none() {
        crate::slurm::cluster::require()?;
    }
    Ok(())
}

/// The speed task's test (`-p`, `-n`, `-r`), when `speed` is among the tasks: one sequence
/// at the serving context, so the worker's peak RSS is also the model's serving footprint.
fn speed_config(
    args: &SweepArgs,
    engine: &crate::eval::runner::EngineSettings,
    want_speed: bool,
) -> Result<Option<SpeedConfig>> {
    if !want_speed {
        return Ok(None);
    }
    if engine.backend.remote().is_some() {
        return Err(bad_input(
            "with --backend openai:URL the speed task would time the server, not this machine: \
             measure it with `frontier speed --backend openai:URL`",
        ));
    }
    if args.reps == 0 || (args.n_prompt == 0 && args.n_gen == 0) {
        return Err(bad_input(
            "the speed test needs -r ≥ 1 and -p or -n above 0",
        ));
    }
    Ok(Some(SpeedConfig {
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        n_depth: 0,
        reps: args.reps,
        warmup: 1,
        model: engine.model.clone(),
        context: ContextOptions {
            n_ctx: (args.n_prompt + args.n_gen).max(args.serve_ctx).max(1),
            ..engine.context.clone()
        },
    }))
}

/// Checks every model spec, and opens the Hub only when one of them is not a local file.
fn hub_if_needed(models: &[String], catalog: &Catalog) -> Result<Option<Hub>> {
    let mut needs_hub = false;
    for spec in models {
        let (model, _) = crate::catalog::parse_model_spec(spec, catalog)?;
        needs_hub |= !matches!(model, ModelRef::Local(_));
    }
    Ok(if needs_hub {
        Some(Hub::new(HubConfig::from_env())?)
    } else {
        None
    })
}

/// The fidelity task's plan (base file per model, text, chunks), when it was asked for.
fn fidelity_plan(
    args: &SweepArgs,
    wanted: bool,
    cells: &[PlannedCell],
) -> Result<Option<sweep::FidelityPlan>> {
    if !wanted {
        return Ok(None);
    }
    if args.run.backend != crate::backend::Backend::Llama {
        return Err(bad_input(
            "the fidelity task runs on the llama backend only",
        ));
    }
    let settings = fidelity_settings(&args.fidelity, args.fidelity_ctx)?;
    Ok(Some(sweep::FidelityPlan::new(settings, cells)?))
}

/// An array task's end: one line on its shard, and its exit code (the watcher reads it).
fn finish_array_task(outcome: &sweep::SweepOutcome, store: &Store, quiet: bool) -> Result<i32> {
    if !quiet {
        eprintln!(
            "cell {}: {} items scored now, {} already stored in {}",
            if outcome.done > 0 { "done" } else { "not done" },
            outcome.stored,
            outcome.skipped,
            store.path().display()
        );
    }
    Ok(if outcome.interrupted {
        crate::interrupt::exit_code()
    } else if outcome.failed > 0 {
        1
    } else {
        0
    })
}

/// A local sweep's end: the reports written from the store, comparison.md on stdout, the
/// counts on stderr; exit 1 if a cell failed, the signal's code if interrupted.
fn finish(
    outcome: &sweep::SweepOutcome,
    store: &Store,
    args: &SweepArgs,
    quiet: bool,
) -> Result<i32> {
    let written = crate::report::write(store, &args.out, &Default::default())?;
    crate::output::print(std::fs::read_to_string(args.out.join("comparison.md"))?)?;
    if !quiet {
        eprintln!(
            "{} cells done, {} failed; {} items scored now, {} already stored; wrote {}",
            outcome.done,
            outcome.failed,
            outcome.stored,
            outcome.skipped,
            path_list(&written)
        );
    }
    if outcome.interrupted {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(crate::interrupt::exit_code());
    }
    Ok(if outcome.failed > 0 { 1 } else { 0 })
}

/// Paths as one comma-separated line.
fn path_list(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cell an array task runs: cell `n` of the grid, the same one that was submitted.
fn task_cell(out: &std::path::Path, cells: &[PlannedCell], n: usize) -> Result<PlannedCell> {
    let Some(cell) = cells.get(n) else {
        return Err(bad_input(format!(
            "--cell {n}: the grid has {} cells",
            cells.len()
        )));
    };
    if let Some(jobs) = JobFile::load(out)? {
        let plan = jobs.cells.get(n);
        if plan.is_none_or(|p| p.model != cell.model || p.quant != cell.quant) {
            return Err(bad_input(format!(
                "--cell {n}: the grid resolved here ({} {}) is not the one submitted ({}): the models changed since",
                cell.model,
                cell.quant,
                plan.map_or("nothing".into(), |p| format!("{} {}", p.model, p.quant))
            )));
        }
    }
    Ok(cell.clone())
}

/// `--executor slurm`: the grid as one job array; unless detached, watched to the end, the
/// shards merged and the reports written as a local sweep writes them.
fn run_on_slurm(
    args: &SweepArgs,
    cells: &[PlannedCell],
    items_per_cell: usize,
    threads: u32,
    quiet: bool,
) -> Result<i32> {
    let dir = std::path::absolute(&args.out)?;
    let s = &args.slurm;
    crate::interrupt::install();
    let ended = crate::slurm::run(&ArrayRun {
        dir: &dir,
        cells: cells
            .iter()
            .map(|c| CellPlan {
                model: c.model.clone(),
                quant: c.quant.clone(),
                items: items_per_cell,
            })
            .collect(),
        options: SlurmOptions {
            partition: s.partition.clone(),
            time: s.time.clone(),
            mem: s.mem.clone(),
            gpus: s.gpus.clone(),
            array_limit: s.array_limit,
            cpus: threads,
        },
        detach: s.detach,
        quiet,
    })?;
    let outcome = match ended {
        Ended::Detached(job) => {
            crate::output::print(format!("{job}\n"))?;
            return Ok(0);
        }
        Ended::Watched(o) if o.interrupted => return Ok(crate::interrupt::exit_code()),
        Ended::Watched(o) => o,
    };
    let merged = crate::slurm::shards::merge(&dir, s.allow_mixed)?;
    let store = Store::open(&dir.join("results.sqlite"))?;
    let written = crate::report::write(&store, &dir, &Default::default())?;
    crate::output::print(std::fs::read_to_string(dir.join("comparison.md"))?)?;
    if !quiet {
        if let Some(m) = merged {
            eprintln!(
                "merged {} shards: {} cells, {} items added, {} already there (kept once)",
                m.shards, m.counts.cells, m.counts.added, m.counts.duplicates
            );
        }
        eprintln!(
            "{} tasks done, {} failed after a resubmission, {} resubmitted; wrote {}",
            outcome.done,
            outcome.failed,
            outcome.resubmitted,
            path_list(&written)
        );
    }
    Ok(if outcome.failed > 0 { 1 } else { 0 })
}
