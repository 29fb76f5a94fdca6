//! `frontier sweep`: models × quants × tasks (+ speed) in one command, resumable, ending in
//! results.csv, comparison.csv/.md and frontier.svg.

use anyhow::Result;
use serde_json::json;

use crate::catalog::{Catalog, ModelRef};
use crate::cli::{Executor, SweepArgs};
use crate::hub::{Hub, HubConfig};
use crate::settings::{
    build_plans, engine_settings, fidelity_settings, parse_tasks, sandbox_for, task_formats,
    task_options,
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
    let s = &args.slurm;
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
    let selected = parse_tasks(&args.tasks.tasks);
    let (tasks, want_speed) = (selected.eval.clone(), selected.speed);
    if tasks.is_empty() && !want_speed && !selected.fidelity {
        return Err(bad_input("no tasks given"));
    }
    let (opts, source) = task_options(&args.tasks)?;
    let mem_cap = args.mem.cap()?;
    let engine = engine_settings(&args.run, &args.batch, mem_cap.as_ref(), quiet)?;
    if engine.backend.remote().is_some() && want_speed {
        return Err(bad_input(
            "with --backend openai:URL the speed task would time the server, not this machine: \
             measure it with `frontier speed --backend openai:URL`",
        ));
    }
    let speed = if want_speed {
        if args.reps == 0 || (args.n_prompt == 0 && args.n_gen == 0) {
            return Err(bad_input(
                "the speed test needs -r ≥ 1 and -p or -n above 0",
            ));
        }
        Some(SpeedConfig {
            n_prompt: args.n_prompt,
            n_gen: args.n_gen,
            n_depth: 0,
            reps: args.reps,
            warmup: 1,
            model: engine.model.clone(),
            // One sequence at the serving context: the worker's peak RSS is also the
            // model's serving footprint there.
            context: ContextOptions {
                n_ctx: (args.n_prompt + args.n_gen).max(args.serve_ctx).max(1),
                ..engine.context.clone()
            },
        })
    } else {
        None
    };
    let catalog = Catalog::load(&args.models_from.catalog)?;
    for spec in &args.models {
        crate::catalog::parse_model_spec(spec, &catalog)?;
    }
    let needs_hub = args.models.iter().any(|s| {
        !matches!(
            crate::catalog::parse_model_spec(s, &catalog),
            Ok((ModelRef::Local(_), _))
        )
    });
    let sandbox = sandbox_for(&tasks, &args.sandbox)?;
    let formats = task_formats(&args.tasks.format, &tasks);
    // Reading every dataset now catches bad data before any model runs.
    let plans = build_plans(&tasks, &opts, &source)?;
    let items_per_cell: usize = plans
        .iter()
        .map(|p| p.items.len() * formats.runs_of(p.task))
        .sum();
    let hub = if needs_hub {
        Some(Hub::new(HubConfig::from_env())?)
    } else {
        None
    };

    let cells = sweep::resolve(
        &args.models,
        &catalog,
        hub.as_ref(),
        &ResolveOptions::from_args(&args.quants, &args.models_from, quiet),
    )?;
    let fidelity = if selected.fidelity {
        if args.run.backend != crate::backend::Backend::Llama {
            return Err(bad_input(
                "the fidelity task runs on the llama backend only",
            ));
        }
        let settings = fidelity_settings(&args.fidelity, args.fidelity_ctx)?;
        Some(sweep::FidelityPlan::new(settings, &cells)?)
    } else {
        None
    };
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
        eprintln!(
            "sweep: {} cells × {} items{}{}{}; results in {}",
            cells.len(),
            items,
            if want_speed { " + speed" } else { "" },
            if fidelity.is_some() {
                " + fidelity"
            } else {
                ""
            },
            mem_cap.map_or(String::new(), |c| format!(
                "; every model under a memory cap of {}",
                c.describe()
            )),
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
        if !quiet {
            eprintln!(
                "cell {}: {} items scored now, {} already stored in {}",
                if outcome.done > 0 { "done" } else { "not done" },
                outcome.stored,
                outcome.skipped,
                store.path().display()
            );
        }
        return Ok(if outcome.interrupted {
            crate::interrupt::exit_code()
        } else if outcome.failed > 0 {
            1
        } else {
            0
        });
    }
    let written = crate::report::write(&store, &args.out, &Default::default())?;
    crate::output::print(std::fs::read_to_string(args.out.join("comparison.md"))?)?;
    if !quiet {
        eprintln!(
            "{} cells done, {} failed; {} items scored now, {} already stored; wrote {}",
            outcome.done,
            outcome.failed,
            outcome.stored,
            outcome.skipped,
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if outcome.interrupted {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(crate::interrupt::exit_code());
    }
    Ok(if outcome.failed > 0 { 1 } else { 0 })
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
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(if outcome.failed > 0 { 1 } else { 0 })
}
