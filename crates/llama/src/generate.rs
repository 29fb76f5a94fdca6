//! Continuous batching on llama.cpp: up to `n_seq_max` sequences decode together, and a
//! finished slot is refilled with the next request at once. Each decode step is the same
//! five moves, each its own function: [`Batcher::admit`] requests into free slots,
//! [`Batcher::build_batch`] (one slot's prompt alone, or one token for every generating
//! slot), decode, [`record_step`] (where the time went), [`Batcher::sample`] the next token
//! of every slot that got logits, and [`Batcher::retire`] the finished ones.

use std::time::Instant;

use anyhow::{bail, Result};
use frontier_engine::{
    attended_depth, common_prefix, DepthSteps, GenRequest, GenResult, StopMatcher, StopReason,
    Token,
};

use crate::context::LlamaEngine;

/// One request being generated, in its own sequence.
struct Slot {
    req: usize,
    seq: i32,
    /// Prompt tokens not yet decoded.
    pending: Vec<Token>,
    /// Next position in this sequence.
    pos: i32,
    /// The token to feed next (after the prompt): the last one generated.
    next: Option<Token>,
    generated: usize,
    text: StopMatcher,
    /// KV cells this request reserved (prompt + max_tokens, capped at the context).
    reserved: usize,
    started: Instant,
}

/// What one batch holds: for each slot (in order), the logits row it reads, if any.
struct Step {
    row_of_slot: Vec<Option<usize>>,
    /// Tokens in the batch, and how many of them were prompt tokens.
    tokens: u64,
    prefill: u64,
    /// Idle sequence slots given a throwaway token to keep the step's shape.
    padding: Vec<i32>,
    /// KV cells the deepest sequence holds after this step (a KV stream per sequence only).
    deepest: Option<u32>,
    /// Sequence ids the batch is for (a generation step).
    rows: u64,
}

impl Step {
    fn new(slots: usize) -> Step {
        Step {
            row_of_slot: vec![None; slots],
            tokens: 0,
            prefill: 0,
            padding: Vec::new(),
            deepest: None,
            rows: 0,
        }
    }
}

/// The state of a continuous-batching run over a list of requests.
struct Batcher<'r> {
    requests: &'r [GenRequest],
    prefix: &'r [Token],
    slots: Vec<Slot>,
    /// Free sequence ids, the lowest last (taken first).
    free_seqs: Vec<i32>,
    next_req: usize,
    /// Cells reserved by the working slots (one KV stream only).
    reserved: usize,
    /// Cells one sequence can hold, and (one stream) those left beside the shared prefix.
    n_ctx: usize,
    n_ctx_free: usize,
    unified: bool,
    n_batch: usize,
    n_seq_max: usize,
    /// Sequence ids per generation batch (`ContextOptions::generation_batch_rows`).
    rows: usize,
    /// Idle ids of a generation batch decode a throwaway token (not `--no-padding`).
    pad: bool,
}

pub(crate) fn run(
    e: &mut LlamaEngine<'_>,
    prefix: &[Token],
    requests: &[GenRequest],
    on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
) -> Result<()> {
    let mut b = Batcher::new(e, prefix, requests)?;
    e.clear_working()?;
    loop {
        b.admit(e)?;
        if b.slots.is_empty() {
            return Ok(());
        }
        if !b.unified {
            b.compact(e)?;
        }
        // llama.cpp puts sequences in one ubatch (one pass over the weights) only in
        // increasing, consecutive id order, so a batch is built in sequence order.
        b.slots.sort_by_key(|s| s.seq);
        let mut finished = Vec::new();
        if let Some(step) = b.build_prefill(e)? {
            decode_step(e, &step)?;
            finished = b.sample(e, &step)?;
        } else {
            for group in b.groups() {
                let Some(step) = b.build_generation(e, group)? else {
                    continue;
                };
                decode_step(e, &step)?;
                finished.extend(b.sample(e, &step)?);
            }
        }
        b.retire(e, &mut finished, on_done)?;
    }
}

/// Decodes one batch, drops its throwaway tokens and files its time.
fn decode_step(e: &mut LlamaEngine<'_>, step: &Step) -> Result<()> {
    let started = Instant::now();
    e.decode_batch()?;
    for &seq in &step.padding {
        e.clear_seq(seq)?;
    }
    record_step(e, step, started.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

impl<'r> Batcher<'r> {
    fn new(
        e: &LlamaEngine<'_>,
        prefix: &'r [Token],
        requests: &'r [GenRequest],
    ) -> Result<Batcher<'r>> {
        let n_ctx = e.options.cells_per_seq() as usize;
        let unified = e.options.unified();
        for (i, r) in requests.iter().enumerate() {
            if r.prompt.is_empty() {
                bail!("generation request {i} has an empty prompt");
            }
            if r.prompt.len() >= n_ctx {
                bail!(
                    "generation request {i}: prompt of {} tokens does not fit the context of {n_ctx}",
                    r.prompt.len()
                );
            }
        }
        // One stream: the prefix's cells are taken from what all sequences share.
        let prefix_cells = if prefix.is_empty() || !unified {
            0
        } else {
            e.prefix.len()
        };
        Ok(Batcher {
            requests,
            prefix,
            slots: Vec::new(),
            free_seqs: (0..e.options.n_seq_max as i32).rev().collect(),
            next_req: 0,
            reserved: 0,
            n_ctx,
            n_ctx_free: n_ctx.saturating_sub(prefix_cells),
            unified,
            n_batch: e.options.n_batch as usize,
            n_seq_max: e.options.n_seq_max as usize,
            rows: e.options.generation_batch_rows() as usize,
            pad: !e.options.no_padding,
        })
    }

    /// Admits requests while a sequence id and room in the KV cache are free. A request
    /// reserves prompt + max_tokens cells (capped at the context) so none runs out; its
    /// start shared with the prefix is copied from the prefix sequence, not decoded.
    fn admit(&mut self, e: &mut LlamaEngine<'_>) -> Result<()> {
        while self.next_req < self.requests.len() {
            let r = &self.requests[self.next_req];
            let shared = common_prefix(&r.prompt, self.prefix).min(r.prompt.len() - 1);
            let need = (r.prompt.len() - shared + r.max_tokens).min(self.n_ctx_free);
            let fits =
                !self.unified || self.reserved + need <= self.n_ctx_free || self.slots.is_empty();
            if !fits || self.free_seqs.is_empty() {
                break;
            }
            let seq = self.place(e, r.prompt.len())?;
            self.reserved += need;
            e.share_prefix(seq, shared)?;
            self.slots.push(Slot {
                req: self.next_req,
                seq,
                pending: r.prompt[shared..].to_vec(),
                pos: shared as i32,
                next: None,
                generated: 0,
                text: StopMatcher::new(&r.stop),
                reserved: need,
                started: Instant::now(),
            });
            self.next_req += 1;
        }
        Ok(())
    }

    /// Takes a free sequence id for a new request whose prompt ends `depth` cells deep. With
    /// one batch for all sequences any id does (the lowest). With several, the batches are
    /// kept in order of depth — every sequence of a lower batch at least as deep as every
    /// sequence of a higher one — so that a batch of short sequences does not attend over a
    /// long one's cells: the free id is filled by moving the deepest sequence of the higher
    /// batches down into it (or the shallowest of the lower batches up) until the hole sits
    /// where the new request belongs. Sequences keep their relative depths while they
    /// generate, so only an admission can break the order.
    fn place(&mut self, e: &mut LlamaEngine<'_>, depth: usize) -> Result<i32> {
        let Some(mut hole) = self.free_seqs.pop() else {
            bail!("no free sequence id for a new request");
        };
        if self.rows >= self.n_seq_max {
            return Ok(hole);
        }
        let rows = self.rows as i32;
        let depth_of = |s: &Slot| s.pos as usize + s.pending.len();
        loop {
            let batch = hole / rows;
            // A deeper sequence in a higher batch comes down into the hole, or a shallower
            // one in a lower batch goes up into it.
            let down = (0..self.slots.len())
                .filter(|&i| self.slots[i].seq / rows > batch && depth_of(&self.slots[i]) > depth)
                .max_by_key(|&i| (depth_of(&self.slots[i]), -self.slots[i].seq));
            let up = (0..self.slots.len())
                .filter(|&i| self.slots[i].seq / rows < batch && depth_of(&self.slots[i]) < depth)
                .min_by_key(|&i| (depth_of(&self.slots[i]), self.slots[i].seq));
            let Some(i) = down.or(up) else {
                return Ok(hole);
            };
            let from = self.slots[i].seq;
            e.move_seq(from, hole)?;
            self.slots[i].seq = hole;
            e.stats.moved_sequences += 1;
            hole = from;
        }
    }

    /// While a slot still has prompt tokens to decode, the next batch is that slot's prompt
    /// alone (up to `n_batch` tokens; logits only for the prompt's last token). The batch's
    /// shape picks llama.cpp's kernels, and their arithmetic differs in the last bits between
    /// shapes, so a request's tokens are never decoded beside another's prompt.
    fn build_prefill(&mut self, e: &mut LlamaEngine<'_>) -> Result<Option<Step>> {
        let Some(si) = self.slots.iter().position(|s| !s.pending.is_empty()) else {
            return Ok(None);
        };
        e.batch.clear();
        e.logit_rows.clear();
        let mut step = Step::new(self.slots.len());
        let s = &mut self.slots[si];
        let take = s.pending.len().min(self.n_batch);
        let done_prompt = take == s.pending.len();
        for (k, &t) in s.pending[..take].iter().enumerate() {
            let want = done_prompt && k + 1 == take;
            e.add_token(t, s.pos, s.seq, want)?;
            if want {
                step.row_of_slot[si] = Some(e.logit_rows.len());
                e.logit_rows.push(step.tokens as i32);
            }
            s.pos += 1;
            step.tokens += 1;
        }
        s.pending.drain(..take);
        step.prefill = take as u64;
        Ok(Some(step))
    }

    /// The sequence ids decoded together in each generation batch: consecutive runs of
    /// `rows` ids.
    fn groups(&self) -> Vec<std::ops::Range<i32>> {
        let (n, rows) = (self.n_seq_max as i32, self.rows as i32);
        (0..n).step_by(self.rows).map(|lo| lo..lo + rows).collect()
    }

    /// One token for every generating slot whose sequence id is in `ids`; `None` when no
    /// slot there generates. With a stream per sequence every id of the group gets a row:
    /// an idle one decodes a throwaway token (cleared after the step, its logits asked for
    /// like the others'), so a request's tokens meet the same kernels whether 1 or all
    /// requests run (GSM8K `gsm8k_cot` 5 items, 8 slots: the same 5 outputs alone, among 5
    /// or among 20; without the padding 1 of 5). Within one shape a row's logits do not
    /// depend on the other rows' tokens (bit for bit), but they do on the number of rows,
    /// so the tail of a run cannot take smaller steps: SmolLM2-135M Q4_K_M on an AVX2 CPU,
    /// 1 or 2 threads, the first row of a 4-row step came out up to 0.40 logits away from
    /// the same row in an 8-row step (rows 1–3 bit-identical), and no step size from 1 to 7
    /// kept every row's logits. On a Zen 4 CPU, with flash attention off as evaluation runs,
    /// every row of a 4-row step differs from an 8-row step's (HumanEval's first 64 items
    /// in batches of 4 and in one batch of 8: 54 outputs differ): no step size stands in for
    /// another. `--no-padding` gives
    /// that up for speed: a batch then holds only the generating sequences (ids 0..k, kept
    /// so by [`Batcher::compact`]).
    fn build_generation(
        &mut self,
        e: &mut LlamaEngine<'_>,
        ids: std::ops::Range<i32>,
    ) -> Result<Option<Step>> {
        if !self
            .slots
            .iter()
            .any(|s| ids.contains(&s.seq) && s.next.is_some())
        {
            return Ok(None);
        }
        e.batch.clear();
        e.logit_rows.clear();
        let mut step = Step::new(self.slots.len());
        step.rows = ids.len() as u64;
        for (si, s) in self.slots.iter_mut().enumerate() {
            if !ids.contains(&s.seq) {
                continue;
            }
            if let Some(t) = s.next.take() {
                e.add_token(t, s.pos, s.seq, true)?;
                step.row_of_slot[si] = Some(e.logit_rows.len());
                e.logit_rows.push(step.tokens as i32);
                s.pos += 1;
                step.tokens += 1;
            }
        }
        if !self.unified && self.pad {
            let mut idle: Vec<i32> = self
                .free_seqs
                .iter()
                .copied()
                .filter(|q| ids.contains(q))
                .collect();
            idle.sort_unstable();
            for seq in idle {
                e.add_token(0, 0, seq, true)?;
                e.logit_rows
                    .push(step.tokens as i32 + step.padding.len() as i32);
                step.padding.push(seq);
            }
        }
        if !self.unified {
            step.deepest = self
                .slots
                .iter()
                .filter(|s| ids.contains(&s.seq))
                .map(|s| s.pos as u32)
                .max();
        }
        Ok(Some(step))
    }

    /// Greedy next token for every slot that got logits; returns the slots that finished
    /// (end of generation, a stop string, the length limit, or a full context) and why.
    fn sample(&mut self, e: &LlamaEngine<'_>, step: &Step) -> Result<Vec<(usize, StopReason)>> {
        let mut finished = Vec::new();
        for (si, s) in self.slots.iter_mut().enumerate() {
            let Some(row) = step.row_of_slot[si] else {
                continue;
            };
            let tok = e.argmax(row)?;
            let r = &self.requests[s.req];
            let reason = if e.model.is_eog(tok) {
                Some(StopReason::EndOfGeneration)
            } else {
                s.generated += 1;
                if s.text.push(&e.model.piece(tok)) {
                    Some(StopReason::StopString)
                } else if s.generated >= r.max_tokens {
                    Some(StopReason::Length)
                } else if s.pos as usize >= self.n_ctx {
                    Some(StopReason::ContextFull)
                } else {
                    s.next = Some(tok);
                    None
                }
            };
            if let Some(reason) = reason {
                finished.push((si, reason));
            }
        }
        Ok(finished)
    }

    /// Frees the finished slots (their sequences and reserved cells) and hands each result
    /// to `on_done`.
    fn retire(
        &mut self,
        e: &mut LlamaEngine<'_>,
        finished: &mut [(usize, StopReason)],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        // Highest slot first: `swap_remove` moves only slots already handled.
        finished.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        for &(si, reason) in finished.iter() {
            let s = self.slots.swap_remove(si);
            e.clear_seq(s.seq)?;
            release(&mut self.free_seqs, s.seq);
            self.reserved -= s.reserved;
            on_done(
                s.req,
                GenResult {
                    text: s.text.finish(),
                    stop_reason: reason,
                    prompt_tokens: self.requests[s.req].prompt.len(),
                    generated_tokens: s.generated,
                    time_ms: s.started.elapsed().as_secs_f64() * 1e3,
                },
            )?;
        }
        Ok(())
    }

    /// With a KV stream per sequence, llama.cpp decodes together (in one ubatch) only
    /// sequences with consecutive ids, so once no request is left to fill a freed id the
    /// highest working sequences move down into the free ones: the working ids stay 0..k.
    fn compact(&mut self, e: &mut LlamaEngine<'_>) -> Result<()> {
        loop {
            let Some(&lowest_free) = self.free_seqs.last() else {
                return Ok(());
            };
            let Some(top) = self.slots.iter_mut().max_by_key(|s| s.seq) else {
                return Ok(());
            };
            if top.seq < lowest_free {
                return Ok(());
            }
            e.move_seq(top.seq, lowest_free)?;
            self.free_seqs.pop();
            let from = std::mem::replace(&mut top.seq, lowest_free);
            release(&mut self.free_seqs, from);
        }
    }
}

/// Splits one step's decode time between its prompt and generated tokens by their counts,
/// counts the steps where every sequence slot generated (llama-batched-bench's figure), and
/// files generation steps under the KV depth they attended over.
fn record_step(e: &mut LlamaEngine<'_>, step: &Step, ms: f64) {
    let total = step.tokens.max(1) as f64;
    let generated = step.tokens - step.prefill;
    e.stats.prompt_tokens += step.prefill;
    e.stats.prompt_ms += ms * step.prefill as f64 / total;
    e.stats.generated_tokens += generated;
    e.stats.generation_ms += ms * generated as f64 / total;
    if generated > 0 {
        e.stats.generation_steps += 1;
    }
    if step.prefill == 0 && generated == step.rows {
        e.stats.full_step_tokens += generated;
        e.stats.full_step_ms += ms;
    }
    if let Some(cells) = step.deepest.filter(|_| step.prefill == 0 && generated > 0) {
        let kv_depth = attended_depth(cells, e.options.cells_per_seq());
        e.stats.add_depth_step(&DepthSteps {
            kv_depth,
            steps: 1,
            rows: step.tokens + step.padding.len() as u64,
            generated,
            ms,
        });
    }
}

fn release(free_seqs: &mut Vec<i32>, seq: i32) {
    free_seqs.push(seq);
    free_seqs.sort_unstable_by(|a, b| b.cmp(a));
}
