//! The `eval` job inside the worker process: load the model, tokenize every unit, size the
//! context, and stream one result per unit.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use frontier_engine::Token;

use super::infer::{run_units, tokenize_unit, Prepared};
use super::job::{EvalEvent, EvalReady, EvalRequest};
use super::parallel::{self, AUTO_PARALLEL};

/// The worker's side of the job.
pub fn serve() -> Result<i32> {
    frontier_process::protocol::serve(run)
}

/// Runs the job, emitting events: `Ready` for each context made (scoring, generation), a
/// result per unit, and `Finished` last with the elapsed milliseconds and the engines' stats. The units are consumed as they are tokenized, so their text is freed
/// as their tokens are made: the worker's peak RSS is the model's, not the size of the job.
pub fn run(mut job: EvalRequest, emit: &mut dyn FnMut(EvalEvent) -> Result<()>) -> Result<()> {
    let start = Instant::now();
    let model = job.backend.load(&job.model, &job.model_options)?;
    let add_bos = model.adds_bos();
    let train_ctx = model.n_ctx_train().max(256);

    // Tokenize everything first: the longest unit sizes the context. Each distinct shared
    // prefix is tokenized once (as the start of a whole prompt: with the BOS token).
    let mut prefixes: std::collections::HashMap<String, Arc<[Token]>> = Default::default();
    let work_units = std::mem::take(&mut job.units);
    let mut units = Vec::with_capacity(work_units.len());
    for u in work_units {
        let t = tokenize_unit(model.as_ref(), &u.work, add_bos)?;
        if t.cells_needed() > train_ctx as usize {
            emit(too_long(&u.key, t.cells_needed(), "the model's", train_ctx))?;
            continue;
        }
        let prefix = match (u.prefix, job.share_prefix) {
            (Some(text), true) => Some(match prefixes.get(&text) {
                Some(p) => p.clone(),
                None => {
                    let p: Arc<[_]> = model.tokenize(&text, add_bos)?.into();
                    prefixes.insert(text, p.clone());
                    p
                }
            }),
            _ => None,
        };
        units.push(Prepared {
            key: u.key,
            group: u.group,
            prefix,
            tokens: t,
        });
    }
    let prefix_len = |u: &Prepared| u.prefix.as_ref().map_or(0, |p| p.len());
    // Scoring and generation each get a context of their own, in the order the plans ask
    // for them: a context's shape (one stream, or a stream per sequence) changes llama.cpp's
    // arithmetic in the last bits, so MMLU's log-probabilities must not depend on whether
    // generation tasks share the run.
    let generation_first = units.first().is_some_and(|u| u.tokens.generates());
    let (scoring, generating): (Vec<Prepared>, Vec<Prepared>) =
        units.into_iter().partition(|u| !u.tokens.generates());
    let mut phases = vec![(scoring, false), (generating, true)];
    if generation_first {
        phases.reverse();
    }
    let cpu_only = parallel::on_cpu(&job.model_options);
    let mut stats = frontier_engine::EngineStats::default();
    let mut refused = None;
    for (units, generates) in phases {
        if units.is_empty() {
            continue;
        }
        let longest_prefix = units.iter().map(prefix_len).max().unwrap_or(0);
        // Generation on the CPU decodes in batches of 4 rows unless `--batch-rows` says;
        // scoring has no generation batches.
        let batch_rows = if generates {
            parallel::asked_batch_rows(job.context.batch_rows, cpu_only)
        } else {
            0
        };
        let longest_own = units.iter().map(Prepared::own_cells).max().unwrap_or(1);
        let (parallel, parallel_reason) = if job.parallel != AUTO_PARALLEL {
            (job.parallel, None)
        } else if let Some(slots) = model.served_slots() {
            (
                slots.max(1),
                Some(format!("{slots} requests in flight: the server's slots")),
            )
        } else if !generates && cpu_only {
            (1, Some(parallel::SCORING_ON_CPU.to_string()))
        } else {
            let (n, why) = parallel::choose(
                kv_bytes_per_cell(&job.model)?,
                longest_prefix,
                longest_own,
                spare_memory(job.memory_budget),
                generates,
                parallel::MAX_AUTO_PARALLEL,
                batch_rows,
            );
            (n, Some(why))
        };
        let mut ctx = job.context.clone();
        ctx.n_seq_max = parallel;
        // Generation wants a KV stream per sequence; scoring packs unequal prompts into one.
        ctx.stream_per_seq = generates;
        if ctx.n_ctx == 0 {
            // Room for the prefix and every sequence's own tokens.
            ctx.n_ctx = parallel::context_cells(longest_prefix, longest_own, parallel, generates);
        }
        ctx.flash_attn = ctx.flash_attn.for_decoding(cpu_only);
        ctx.batch_rows = batch_rows;
        if generates && model.served_slots().is_none() {
            if let Err(e) = check_rows(&job, &ctx, cpu_only, parallel_reason.as_deref()) {
                // The other phase (scoring) still runs; the run ends with this error.
                refused = Some(e);
                continue;
            }
        }
        let mut engine = model.engine(&ctx)?;
        // Before "ready", as llama-server: the first group's timed prefix then runs warm.
        engine.warm_up()?;
        let opts = engine.options().clone();
        // An explicit `--ctx` is shared out among the sequences, as llama-server does.
        let per_seq = opts.cells_per_seq();
        let (units, too_big): (Vec<_>, Vec<_>) = units
            .into_iter()
            .partition(|u| u.tokens.cells_needed() <= per_seq as usize);
        emit(EvalEvent::Ready(EvalReady {
            load_ms: model.load_time().as_secs_f64() * 1e3,
            n_ctx: opts.n_ctx,
            n_seq: opts.n_seq_max,
            kv_cache_bytes: engine.kv_cache_bytes(),
            n_params: model.n_params(),
            threads: opts.threads,
            parallel_reason,
            generates,
            batch_rows: if opts.unified() {
                0
            } else {
                opts.generation_batch_rows()
            },
            no_padding: !opts.unified() && opts.no_padding,
        }))?;
        for u in &too_big {
            let whose = format!("each of the {} sequences'", opts.n_seq_max);
            emit(too_long(&u.key, u.tokens.cells_needed(), &whose, per_seq))?;
        }
        run_units(engine.as_mut(), &units, parallel as usize, &mut |r| {
            emit(EvalEvent::Result(r))
        })?;
        stats.add(&engine.stats());
    }
    if let Some(e) = refused {
        return Err(e);
    }
    emit(EvalEvent::Finished {
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        stats,
    })
}

/// Generation tasks record in their protocol the rows of every generation step (a row's
/// logits depend on them), from what was asked ([`parallel::generation_rows`]); a context
/// whose steps would have other rows — the memory left holds fewer sequence slots than the
/// automatic choice needs — does not generate under that protocol's key.
fn check_rows(
    job: &EvalRequest,
    ctx: &frontier_engine::ContextOptions,
    cpu_only: bool,
    reason: Option<&str>,
) -> Result<()> {
    let recorded = parallel::generation_rows(job.context.batch_rows, job.parallel, cpu_only);
    let (would, slots) = (ctx.generation_batch_rows(), ctx.n_seq_max);
    if would == recorded {
        return Ok(());
    }
    let rows = |n: u32| {
        if n == 1 {
            "1 row".into()
        } else {
            format!("{n} rows")
        }
    };
    // The fewest slots whose steps have the recorded rows.
    let slots_needed = (1..=parallel::MAX_AUTO_PARALLEL)
        .find(|&n| parallel::generation_rows(job.context.batch_rows, n, cpu_only) == recorded)
        .unwrap_or(recorded);
    anyhow::bail!(
        "generation: steps of {} need {slots_needed} sequence slots, and only {slots} fit{}; \
         pass --parallel {slots_needed} to use them anyway, or --parallel {slots} to generate \
         in steps of {} (other results, stored apart)",
        rows(recorded),
        reason.map_or(String::new(), |r| format!(" ({r})")),
        rows(would)
    )
}

/// The error for a unit longer than a context.
fn too_long(key: &str, needed: usize, whose: &str, limit: u32) -> EvalEvent {
    EvalEvent::UnitError {
        key: key.to_string(),
        message: format!("needs {needed} tokens of context; {whose} context is {limit}"),
    }
}

/// Bytes of F16 KV cache per context cell, from the model's header.
fn kv_bytes_per_cell(path: &std::path::Path) -> Result<u64> {
    let header = frontier_gguf::read_file(path)?;
    let summary = frontier_gguf::ModelSummary::from_header(&header);
    let shape = crate::memory::ModelShape::from_header(&header, &summary);
    Ok(shape.n_layer * shape.kv_per_cell_layer * 2)
}

/// Memory this process may still use: the budget less what it holds now, or what the
/// machine has available.
fn spare_memory(budget: Option<u64>) -> u64 {
    let used = frontier_process::rss::proc_status_kib("VmRSS").map_or(0, |k| k * 1024);
    match budget {
        Some(b) => b.saturating_sub(used),
        None => frontier_core::system::available_memory(),
    }
}
