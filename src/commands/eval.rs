//! `frontier eval MODEL`: MMLU, GSM8K and HumanEval on one model; every item stored in
//! `OUT/results.sqlite` as it is scored, so a rerun resumes; a summary with standard errors
//! and 95% intervals at the end.

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use crate::cli::EvalArgs;
use crate::eval::aggregate::{summarize, TaskSummary};
use crate::eval::cell::cell_for_model;
use crate::eval::runner::{run_cell, CellRun};
use crate::settings::{
    engine_settings, eval_tasks, generation_steps, sandbox_for, task_formats, task_options,
};
use crate::store::{CellStatus, Store};
use crate::tasks::plan::plans_for_model;
use frontier_gguf::read_summary as model_summary;

pub fn run(args: &EvalArgs, verbosity: u8, quiet: bool) -> Result<i32> {
    let tasks = eval_tasks(&args.tasks.tasks)?;
    let (mut opts, source) = task_options(&args.tasks, &args.sandbox)?;
    let mem_cap = args.mem.cap()?;
    let engine = engine_settings(&args.run, &args.batch, mem_cap.as_ref(), quiet)?;
    opts.generation_steps = Some(generation_steps(&engine));
    let model = crate::sweep::model_file(&args.model, quiet)?;
    let summary = model_summary(&model)?;
    let sandbox = sandbox_for(&tasks, &opts, &args.sandbox)?;
    let formats = task_formats(&args.tasks.format, &tasks);
    let plans = plans_for_model(
        &tasks,
        &opts,
        &source,
        &formats,
        args.tasks.template.as_deref(),
        &summary,
        &model,
    )?;

    let store = Store::open(&args.out.join("results.sqlite"))?;
    crate::interrupt::install();
    let started = std::time::SystemTime::now();
    let cell = cell_for_model(&model, &summary, &formats, &engine, &source, quiet)?;
    let run_id = store.begin_run(
        "eval",
        &json!({ "args": std::env::args().collect::<Vec<_>>(), "cell": cell.key, "source": source.describe() }),
    )?;
    if !quiet {
        let n: usize = plans.iter().map(|p| p.items.len()).sum();
        eprintln!(
            "evaluating {} ({} {}) on {} items; results in {}",
            model.display(),
            summary.architecture,
            summary.file_type,
            n,
            store.path().display()
        );
    }
    let outcome = run_cell(&CellRun {
        store: &store,
        run_id,
        cell,
        model_path: model.clone(),
        plans: &plans,
        engine,
        sandbox,
        sandbox_threads: args.sandbox.jobs,
        verbosity,
        quiet,
        progress: None,
        mem_cap,
    })?;

    let mut summaries = Vec::new();
    let mut wall_ms = Vec::new();
    for plan in &plans {
        let runs = store.task_runs(Some(outcome.cell_id))?;
        if let Some(tr) = runs.iter().find(|t| t.task_key == plan.key()) {
            let wanted: std::collections::HashSet<&str> =
                plan.items.iter().map(|i| i.id.as_str()).collect();
            let items: Vec<_> = store
                .items(tr.id)?
                .into_iter()
                .filter(|i| wanted.contains(i.item_id.as_str()))
                .collect();
            let mut s = summarize(plan.task, &items);
            s.task = format!("{} ({})", s.task, plan.format.as_str());
            summaries.push(s);
            wall_ms.push(
                outcome
                    .task_wall_ms
                    .iter()
                    .find(|(key, _)| *key == plan.key())
                    .map(|&(_, ms)| ms),
            );
        }
    }
    // The items' prompts (a full MMLU's are ~80 MB) are not needed past this point; the
    // lm-eval export rebuilds each run's plan in turn.
    drop(plans);
    let mut out = std::io::stdout().lock();
    out.write_all(render_summary(&summaries, &wall_ms).as_bytes())?;
    if !quiet {
        eprint!("{}", throughput_line(&outcome));
        eprintln!(
            "{} items scored now, {} already stored; {:.1} s; peak RSS of the model process {}",
            outcome.stored,
            outcome.skipped,
            outcome.elapsed_ms / 1e3,
            outcome
                .peak_rss_bytes
                .map_or("-".into(), frontier_core::units::bytes),
        );
        if let Some(m) = outcome.memory.as_ref().filter(|m| m.limit.is_some()) {
            eprintln!("memory cap: {} — {}", m.verdict.as_str(), m.detail);
        }
    }
    crate::report::write(&store, &args.out, &Default::default())?;
    // lm-evaluation-harness's files beside ours, for the tools that read them.
    if let Some(cell) = store.cells()?.into_iter().find(|c| c.id == outcome.cell_id) {
        let written =
            crate::report::lm_eval::write_cell(&store, &cell, &args.out.join("lm-eval"), started)?;
        if !quiet {
            eprintln!("lm-eval's layout: {}", written.results.display());
        }
    }
    if crate::interrupt::interrupted() {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(crate::interrupt::exit_code());
    }
    if outcome.status == CellStatus::Failed {
        eprintln!(
            "error: {}: {}",
            model.display(),
            outcome.error.unwrap_or_default()
        );
        return Ok(1);
    }
    Ok(0)
}

/// The summary table: one row per task and metric, MMLU categories below; `wall_ms[i]` is
/// the wall time of `summaries[i]` in this run (none when all its items were stored before).
pub fn render_summary(summaries: &[TaskSummary], wall_ms: &[Option<f64>]) -> String {
    use crate::output::table::{markdown, Align::*};
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    let mut rows = Vec::new();
    for (i, s) in summaries.iter().enumerate() {
        let w = wall_ms
            .get(i)
            .copied()
            .flatten()
            .map_or("-".to_string(), |ms| format!("{:.1}", ms / 1e3));
        for (metric, p) in &s.metrics {
            rows.push(vec![
                s.task.clone(),
                metric.clone(),
                pct(p.value),
                pct(p.stderr),
                format!("{}–{}", pct(p.ci_low), pct(p.ci_high)),
                p.n.to_string(),
                s.format_failures.to_string(),
                w.clone(),
            ]);
        }
        for (cat, p) in &s.categories {
            rows.push(vec![
                format!("  {}", cat),
                s.metric.clone(),
                pct(p.value),
                pct(p.stderr),
                format!("{}–{}", pct(p.ci_low), pct(p.ci_high)),
                p.n.to_string(),
                String::new(),
                String::new(),
            ]);
        }
    }
    markdown(
        &[
            "task",
            "metric",
            "score %",
            "± se",
            "95% CI",
            "n",
            "format failures",
            "wall s",
        ],
        &[Left, Left, Right, Right, Right, Right, Right, Right],
        &rows,
    )
}

/// Tokens processed, items/s, and where the time went (prefix, questions, generation, sandbox),
/// with the context and KV cache the worker used.
pub fn throughput_line(o: &crate::eval::runner::CellOutcome) -> String {
    let Some(st) = &o.engine_stats else {
        return String::new();
    };
    let secs = o.elapsed_ms / 1e3;
    let tokens = st.prefix_tokens + st.prompt_tokens + st.generated_tokens;
    let mut s = format!(
        "throughput: {} items in {secs:.1} s ({:.2} items/s); {tokens} tokens decoded ({} prefix, {} question/prompt, {} generated; {} reused from shared prefixes)\n",
        o.stored,
        o.stored as f64 / secs.max(1e-9),
        st.prefix_tokens,
        st.prompt_tokens,
        st.generated_tokens,
        st.reused_tokens,
    );
    s.push_str(&format!(
        "time: prefix {:.2} s, questions/prompts {:.2} s, generation {:.2} s, sandbox {:.2} s (overlapping generation)\n",
        st.prefix_ms / 1e3,
        st.prompt_ms / 1e3,
        st.generation_ms / 1e3,
        o.sandbox_ms / 1e3
    ));
    if o.sandbox_reruns > 0 {
        let (n, them) = match o.sandbox_reruns {
            1 => ("1 program".to_string(), "it"),
            n => (format!("{n} programs"), "them"),
        };
        s.push_str(&format!(
            "sandbox: {n} run again at normal priority once generation ended (the wall clock stopped {them} at the lowest, beside it)\n"
        ));
    }
    if st.retried_requests > 0 {
        s.push_str(&format!(
            "server: {} requests sent again after a busy answer (429/503), a refused or dropped connection, or a timeout\n",
            st.retried_requests
        ));
    }
    if let (Some(rate), Some(per_step)) = (st.generation_rate(), st.sequences_per_step()) {
        s.push_str(&format!(
            "generation: {rate:.1} tokens/s, {per_step:.2} sequences per decode step on average\n"
        ));
    }
    if !st.generation_depths.is_empty() {
        let by_depth: Vec<String> = st
            .generation_depths
            .iter()
            .map(|d| {
                format!(
                    "{} cells {} steps of {:.1} rows ({} generated) {:.2} s",
                    d.kv_depth,
                    d.steps,
                    d.rows as f64 / d.steps.max(1) as f64,
                    d.generated,
                    d.ms / 1e3
                )
            })
            .collect();
        s.push_str(&format!(
            "generation by KV depth attended: {}\n",
            by_depth.join("; ")
        ));
    }
    if st.moved_sequences > 0 {
        s.push_str(&format!(
            "generation batches kept in order of depth: {} sequences moved to another KV stream\n",
            st.moved_sequences
        ));
    }
    for r in &o.contexts {
        let mut batches = match r.batch_rows {
            n if n > 0 && n < r.n_seq => format!(" decoded in batches of {n}"),
            _ => String::new(),
        };
        if r.no_padding {
            batches.push_str(", idle ones not padded (outputs depend on the items run together)");
        }
        s.push_str(&format!(
            "{} context: {} tokens, {} sequences{batches}{}, KV cache {}\n",
            if r.generates { "generation" } else { "scoring" },
            r.n_ctx,
            r.n_seq,
            r.parallel_reason
                .as_ref()
                .map_or(String::new(), |why| format!(" ({why})")),
            r.kv_cache_bytes
                .map_or("-".into(), frontier_core::units::bytes)
        ));
    }
    s
}
