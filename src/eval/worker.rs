//! `Job::Eval` inside the worker process: load the model, tokenize every unit, size the
//! context, and stream one result per unit.

use std::time::Instant;

use anyhow::Result;

use std::sync::Arc;

use super::infer::{run_units, tokenize_unit, Prepared};
use crate::engine::{EngineStats, LoadedModel, Tokenizer};
use crate::worker::{EvalJob, EvalReady, Event};

/// Runs the job, emitting events; returns the elapsed milliseconds and the engine's stats.
pub fn run(job: &EvalJob, emit: &mut dyn FnMut(Event) -> Result<()>) -> Result<(f64, EngineStats)> {
    let start = Instant::now();
    let model = LoadedModel::load(&job.model, &job.model_options)?;
    let add_bos = model.adds_bos();
    let parallel = job.parallel.max(1);
    let train_ctx = model.n_ctx_train().max(256);

    // Tokenize everything first: the longest unit sizes the context. Each distinct shared
    // prefix is tokenized once (as the start of a whole prompt: with the BOS token).
    let mut prefixes: std::collections::HashMap<String, Arc<Vec<crate::engine::Token>>> =
        Default::default();
    let mut units = Vec::with_capacity(job.units.len());
    for u in &job.units {
        let t = tokenize_unit(&model, &u.work, add_bos)?;
        if t.cells_needed() > train_ctx as usize
            || (job.context.n_ctx > 0 && t.cells_needed() > job.context.n_ctx as usize)
        {
            let limit = if job.context.n_ctx > 0 {
                job.context.n_ctx
            } else {
                train_ctx
            };
            emit(Event::UnitError {
                key: u.key.clone(),
                message: format!(
                    "needs {} tokens of context; the model's context is {limit}",
                    t.cells_needed()
                ),
            })?;
            continue;
        }
        let prefix = match (&u.prefix, job.share_prefix) {
            (Some(text), true) => Some(match prefixes.get(text) {
                Some(p) => p.clone(),
                None => {
                    let p = Arc::new(model.tokenize(text, add_bos)?);
                    prefixes.insert(text.clone(), p.clone());
                    p
                }
            }),
            _ => None,
        };
        units.push(Prepared {
            key: u.key.clone(),
            group: u.group.clone(),
            prefix,
            tokens: t,
        });
    }
    let longest_prefix = prefixes.values().map(|p| p.len()).max().unwrap_or(0);
    let longest_own = units.iter().map(Prepared::own_cells).max().unwrap_or(1);
    let mut ctx = job.context.clone();
    ctx.n_seq_max = parallel;
    if ctx.n_ctx == 0 {
        // Room for the prefix and every sequence's own tokens, plus a margin for cells the
        // cache cannot use contiguously.
        let want = (longest_prefix + longest_own * parallel as usize) * 11 / 10 + 256;
        ctx.n_ctx = (want.div_ceil(256) * 256).max(256) as u32;
    }
    let mut engine = model.new_engine(&ctx)?;
    let opts = engine.options().clone();
    emit(Event::Ready(EvalReady {
        load_ms: model.load_time.as_secs_f64() * 1e3,
        n_ctx: opts.n_ctx,
        n_seq: opts.n_seq_max,
        kv_cache_bytes: engine.memory().kv_bytes,
        n_params: model.n_params(),
        threads: opts.threads,
    }))?;
    run_units(&mut engine, &units, parallel as usize, &mut |r| {
        emit(Event::Result(r))
    })?;
    Ok((start.elapsed().as_secs_f64() * 1e3, engine.stats().clone()))
}
