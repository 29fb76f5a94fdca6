//! `frontier throughput MODEL`: the evaluation paths on the same items in one run —
//! one prompt at a time (`--no-batch`, whole prompts), one at a time with the shared prefix
//! decoded first (llama.cpp's own whole-vs-split noise), and batched with shared prefixes —
//! with items/s, generated tokens/s, their ratios, and where predictions disagree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use crate::cli::ThroughputArgs;
use crate::eval::cell::cell_for_model;
use crate::eval::runner::{run_cell, CellOutcome, CellRun, EngineSettings};
use crate::eval::AUTO_PARALLEL;
use crate::settings::{
    eval_tasks, generation_steps, run_options, sandbox_for, task_formats, task_options,
};
use crate::store::{ItemRow, Store};
use crate::tasks::plan::plans_for_model;
use crate::tasks::TaskName;
use frontier_core::error::bad_input;
use frontier_gguf::read_summary as model_summary;

/// One evaluation path.
struct EvalPath {
    name: &'static str,
    parallel: u32,
    share_prefix: bool,
}

struct Measured {
    outcome: CellOutcome,
    /// task → item id → stored item
    items: BTreeMap<String, BTreeMap<String, ItemRow>>,
}

pub fn run(args: &ThroughputArgs, verbosity: u8, quiet: bool) -> Result<i32> {
    let tasks = eval_tasks(&args.tasks.tasks)?;
    let (opts, source) = task_options(&args.tasks, &args.sandbox)?;
    // One format a task: the paths are compared on the same prompts.
    let all = task_formats(&args.tasks.format, &tasks);
    let formats = crate::tasks::TaskFormats(
        all.0
            .into_iter()
            .map(|(t, f)| (t, f.into_iter().take(1).collect()))
            .collect(),
    );
    if matches!(args.parallel, Some(0 | 1)) {
        return Err(bad_input(
            "--parallel must be at least 2 to compare with one at a time",
        ));
    }
    let (model_options, mut context) = run_options(&args.run)?;
    context.n_ctx = 0;
    let model = crate::sweep::model_file(&args.model, quiet)?;
    let summary = model_summary(&model)?;
    let sandbox = sandbox_for(&tasks, &opts, &args.sandbox)?;
    let mut plans = plans_for_model(
        &tasks,
        &opts,
        &source,
        &formats,
        args.tasks.template.as_deref(),
        &summary,
        &model,
    )?;
    let temp = tempfile::tempdir()?;
    let root: PathBuf = args
        .out
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());

    let mut paths = vec![
        EvalPath {
            name: "one at a time, whole (--no-batch)",
            parallel: 1,
            share_prefix: false,
        },
        EvalPath {
            name: "batched, shared prefixes",
            parallel: args.parallel.unwrap_or(AUTO_PARALLEL),
            share_prefix: true,
        },
    ];
    if args.split && tasks.contains(&TaskName::Mmlu) {
        paths.push(EvalPath {
            name: "one at a time, prefix then rest (llama.cpp split)",
            parallel: 1,
            share_prefix: true,
        });
    }
    let bench = Bench {
        args,
        model: &model,
        summary: &summary,
        formats: &formats,
        source: &source,
        sandbox,
        verbosity,
        quiet,
    };
    let mut measured = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        if !quiet {
            eprintln!("path {}: {}", i + 1, p.name);
        }
        let engine = EngineSettings {
            model: model_options.clone(),
            context: context.clone(),
            parallel: p.parallel,
            share_prefix: p.share_prefix,
            backend: args.run.backend(quiet)?,
        };
        // Each path's generation steps in its plans' protocols (one at a time: steps of 1).
        let steps = generation_steps(&engine);
        for plan in &mut plans {
            plan.record_generation_steps(steps);
        }
        let dir = root.join(format!("path{}", i + 1));
        measured.push(measure(&dir, &bench, &plans, &engine)?);
    }
    crate::output::print(render(&paths, &measured, &tasks))?;
    Ok(0)
}

/// What every path evaluates.
struct Bench<'a> {
    args: &'a ThroughputArgs,
    model: &'a Path,
    summary: &'a frontier_gguf::ModelSummary,
    formats: &'a crate::tasks::TaskFormats,
    source: &'a crate::datasets::Source,
    sandbox: Option<std::sync::Arc<crate::sandbox::Sandbox>>,
    verbosity: u8,
    quiet: bool,
}

fn measure(
    dir: &Path,
    bench: &Bench<'_>,
    plans: &[crate::tasks::TaskPlan],
    engine: &EngineSettings,
) -> Result<Measured> {
    let Bench {
        args,
        model,
        summary,
        formats,
        source,
        verbosity,
        quiet,
        ..
    } = *bench;
    let sandbox = bench.sandbox.clone();
    let store = Store::open(&dir.join("results.sqlite"))?;
    let cell = cell_for_model(model, summary, formats, engine, source, quiet)?;
    let run_id = store.begin_run(
        "throughput",
        &json!({ "parallel": engine.parallel, "share_prefix": engine.share_prefix }),
    )?;
    let outcome = run_cell(&CellRun {
        store: &store,
        run_id,
        cell,
        model_path: model.to_path_buf(),
        plans,
        engine: engine.clone(),
        sandbox,
        sandbox_threads: args.sandbox.jobs,
        verbosity,
        quiet,
        progress: None,
        mem_cap: None,
    })?;
    let mut items = BTreeMap::new();
    for tr in store.task_runs(Some(outcome.cell_id))? {
        let rows = store.items(tr.id)?;
        items.insert(
            tr.task.clone(),
            rows.into_iter().map(|r| (r.item_id.clone(), r)).collect(),
        );
    }
    Ok(Measured { outcome, items })
}

/// Top-1 minus top-2 log-probability of an MMLU item (how close the decision was).
fn margin(item: &ItemRow) -> Option<f64> {
    let lps: Vec<f64> = item
        .detail
        .get("logprobs")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    let mut sorted = lps.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    Some(sorted.first()? - sorted.get(1)?)
}

fn render(paths: &[EvalPath], m: &[Measured], tasks: &[TaskName]) -> String {
    let mut s = String::from("# Evaluation throughput\n\n| path | items | wall s | items/s | generated tok/s | sequences per generation step | tokens decoded | reused from prefixes |\n|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for (p, x) in paths.iter().zip(m) {
        let o = &x.outcome;
        let secs = o.elapsed_ms / 1e3;
        let st = o.engine_stats.clone().unwrap_or_default();
        let gen_tps = st.generation_rate().unwrap_or(0.0);
        let per_step = st
            .sequences_per_step()
            .map_or("-".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "| {} | {} | {secs:.1} | {:.3} | {gen_tps:.1} | {per_step} | {} | {} |",
            p.name,
            o.stored,
            o.stored as f64 / secs.max(1e-9),
            st.prefix_tokens + st.prompt_tokens + st.generated_tokens,
            st.reused_tokens
        );
    }
    let ips = |x: &Measured| x.outcome.stored as f64 / (x.outcome.elapsed_ms / 1e3).max(1e-9);
    let _ = writeln!(
        s,
        "\nbatched / one-at-a-time: {:.2}× items/s",
        ips(&m[1]) / ips(&m[0])
    );
    let stats = |x: &Measured| x.outcome.engine_stats.clone().unwrap_or_default();
    let gen = |x: &Measured| stats(x).generation_rate().unwrap_or(0.0);
    let batched = stats(&m[1]);
    if let Some(rate) = batched.full_step_rate() {
        let _ = writeln!(
            s,
            "batched, steps with every sequence slot generating: {rate:.1} generated tokens/s ({} tokens)",
            batched.full_step_tokens
        );
    }
    if gen(&m[0]) > 0.0 {
        let _ = writeln!(
            s,
            "batched / one-at-a-time: {:.2}× generated tokens/s ({:.1} vs {:.1})",
            gen(&m[1]) / gen(&m[0]),
            gen(&m[1]),
            gen(&m[0])
        );
    }
    for task in tasks {
        let name = task.as_str();
        let (Some(a), Some(b)) = (m[0].items.get(name), m[1].items.get(name)) else {
            continue;
        };
        let common: Vec<&String> = a.keys().filter(|k| b.contains_key(*k)).collect();
        let agree = common
            .iter()
            .filter(|k| a[**k].extracted == b[**k].extracted)
            .count();
        let _ = writeln!(
            s,
            "\n## {name}: {agree} of {} predictions agree (batched vs one at a time)",
            common.len()
        );
        if let Some(c) = m.get(2).and_then(|x| x.items.get(name)) {
            let split_agree = common
                .iter()
                .filter(|k| {
                    c.get(**k)
                        .is_some_and(|ci| ci.extracted == a[**k].extracted)
                })
                .count();
            let _ = writeln!(
                s,
                "llama.cpp's own whole-vs-split: {split_agree} of {} agree",
                common.len()
            );
        }
        for k in common
            .iter()
            .filter(|k| a[**k].extracted != b[**k].extracted)
        {
            let fmt = |r: &ItemRow| {
                format!(
                    "{} (margin {})",
                    r.extracted.as_deref().unwrap_or("-"),
                    margin(r).map_or("-".into(), |v| format!("{v:.3}"))
                )
            };
            let _ = writeln!(
                s,
                "- {k}: one at a time {}, batched {}",
                fmt(&a[*k]),
                fmt(&b[*k])
            );
        }
    }
    s
}
