//! Scoring continuations on llama.cpp (MMLU's " A".." D"): each request's tokens decoded in
//! its own sequence after the shared prefix, the continuation tokens' log-probabilities read
//! from the logits at the positions that predict them.

use std::time::Instant;

use anyhow::{bail, Result};
use frontier_engine::{argmax, common_prefix, log_softmax_at, ScoreRequest, ScoreResult, Token};

use crate::context::LlamaEngine;

/// [`Engine::score_shared`] on llama.cpp: requests become sequences (see [`plan_sequences`]),
/// packed into groups that fit the KV cache together.
pub(crate) fn run(
    e: &mut LlamaEngine<'_>,
    prefix: &[Token],
    requests: &[ScoreRequest],
) -> Result<Vec<ScoreResult>> {
    let n_ctx = e.options.cells_per_seq() as usize;
    let n_seq = e.options.n_seq_max as usize;
    for (i, r) in requests.iter().enumerate() {
        if r.continuation.is_empty() {
            bail!("score request {i} has an empty continuation");
        }
        if r.context.is_empty() {
            bail!("score request {i} has an empty context (add a BOS token)");
        }
        let len = r.context.len() + r.continuation.len();
        if len > n_ctx {
            bail!("score request {i} has {len} tokens, more than the context of {n_ctx}");
        }
    }
    let mut results: Vec<ScoreResult> = requests
        .iter()
        .map(|r| ScoreResult {
            token_logprobs: Vec::with_capacity(r.continuation.len()),
            logprob: 0.0,
            is_greedy: true,
        })
        .collect();
    if !prefix.is_empty() {
        if prefix.len() >= n_ctx {
            bail!(
                "a shared prefix of {} tokens does not fit the context of {n_ctx}",
                prefix.len()
            );
        }
        e.set_prefix(prefix)?;
    }
    let jobs = plan_sequences(requests, prefix);
    let mut start = 0;
    while start < jobs.len() {
        // Take sequences while their own tokens and the prefix fit the KV cache together.
        let mut end = start;
        let mut used = if prefix.is_empty() { 0 } else { e.prefix.len() };
        while end < jobs.len() && end - start < n_seq {
            let own = jobs[end].tokens.len() - jobs[end].shared;
            // One stream: the group shares its cells. A stream each: every sequence
            // fits its own (checked above).
            if e.options.unified() && end > start && used + own > n_ctx {
                break;
            }
            used += own;
            end += 1;
        }
        score_group(e, &jobs[start..end], &mut results)?;
        start = end;
    }
    Ok(results)
}

/// Evaluates a group of sequences that fit the context together, each as its own
/// sequence id, packed into shared batches; fills in the predictions' log-probabilities.
fn score_group(
    e: &mut LlamaEngine<'_>,
    group: &[SeqJob],
    results: &mut [ScoreResult],
) -> Result<()> {
    e.clear_working()?;
    for (g, job) in group.iter().enumerate() {
        e.share_prefix(g as i32, job.shared)?;
    }
    let n_batch = e.options.n_batch as usize;
    // (sequence index in group, position) for every token to feed, in order.
    let feed: Vec<(usize, usize)> = group
        .iter()
        .enumerate()
        .flat_map(|(g, job)| (job.shared..job.tokens.len()).map(move |pos| (g, pos)))
        .collect();
    let start = Instant::now();
    e.stats.prompt_tokens += feed.len() as u64;
    for chunk in feed.chunks(n_batch) {
        e.batch.clear();
        e.logit_rows.clear();
        let mut wanted = Vec::new();
        for (i, &(g, pos)) in chunk.iter().enumerate() {
            let job = &group[g];
            let preds: Vec<&Prediction> = job.predictions.iter().filter(|p| p.pos == pos).collect();
            e.add_token(job.tokens[pos], pos as i32, g as i32, !preds.is_empty())?;
            if !preds.is_empty() {
                e.logit_rows.push(i as i32);
                wanted.push(preds);
            }
        }
        e.decode_batch()?;
        for (row, preds) in wanted.into_iter().enumerate() {
            let logits = e.logits(row)?;
            let best = argmax(logits);
            for p in preds {
                let lp = log_softmax_at(logits, p.token as usize);
                let res = &mut results[p.request];
                res.token_logprobs.push(lp);
                res.logprob += lp;
                res.is_greedy &= best == p.token as usize;
            }
        }
    }
    e.stats.prompt_ms += start.elapsed().as_secs_f64() * 1e3;
    Ok(())
}

/// A continuation token to score: the logits at `pos` of its sequence predict `token`.
struct Prediction {
    pos: usize,
    request: usize,
    token: Token,
}

/// One sequence to evaluate and the predictions read from it.
struct SeqJob {
    tokens: Vec<Token>,
    predictions: Vec<Prediction>,
    /// Leading tokens taken from the shared prefix instead of decoded.
    shared: usize,
}

/// Turns score requests into sequences. Consecutive requests with the same context whose
/// continuations are single tokens (multiple choice with letters) share one sequence: the
/// context's last logits score them all. Any other request is its own sequence holding
/// context + continuation minus its last token, as lm-eval feeds it.
fn plan_sequences(requests: &[ScoreRequest], prefix: &[Token]) -> Vec<SeqJob> {
    let mut jobs: Vec<SeqJob> = Vec::new();
    let mut i = 0;
    while i < requests.len() {
        let r = &requests[i];
        let mut j = i;
        while j < requests.len()
            && requests[j].context == r.context
            && requests[j].continuation.len() == 1
        {
            j += 1;
        }
        if j > i {
            let last = r.context.len() - 1;
            jobs.push(SeqJob {
                shared: common_prefix(&r.context, prefix).min(last),
                tokens: r.context.to_vec(),
                predictions: (i..j)
                    .map(|k| Prediction {
                        pos: last,
                        request: k,
                        token: requests[k].continuation[0],
                    })
                    .collect(),
            });
            i = j;
            continue;
        }
        let all: Vec<Token> = r.context.iter().chain(&r.continuation).copied().collect();
        jobs.push(SeqJob {
            shared: common_prefix(&r.context, prefix).min(r.context.len() - 1),
            tokens: all[..all.len() - 1].to_vec(),
            predictions: (0..r.continuation.len())
                .map(|k| Prediction {
                    pos: r.context.len() - 1 + k,
                    request: i,
                    token: r.continuation[k],
                })
                .collect(),
        });
        i += 1;
    }
    jobs
}
