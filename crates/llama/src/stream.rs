//! Chat streaming on llama.cpp: greedy generation on sequence 0 that keeps the conversation
//! in the KV cache between turns and hands text out as it becomes final.

use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use frontier_engine::{common_prefix, StopMatcher, StopReason, Token};

use crate::context::{LlamaEngine, Logits};

/// A streamed reply: what it produced and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedReply {
    pub text: String,
    pub stop_reason: StopReason,
    /// Prompt tokens decoded now (the rest was already in the cache from the last turn).
    pub prompt_decoded: usize,
    pub generated: usize,
    pub prompt_ms: f64,
    pub generation_ms: f64,
}

impl LlamaEngine<'_> {
    /// Greedy generation on sequence 0 that keeps the cache between calls: the prompt's
    /// start already in the cache (the conversation so far) is not decoded again. Text is
    /// handed to `on_text` as it becomes final (held back while it could still turn into a
    /// stop string).
    pub fn stream(
        &mut self,
        prompt: &[Token],
        max_tokens: usize,
        stop: &[String],
        on_text: &mut dyn FnMut(&str),
    ) -> Result<StreamedReply> {
        let n_ctx = self.options.cells_per_seq() as usize;
        if prompt.is_empty() || prompt.len() >= n_ctx {
            bail!(
                "a prompt of {} tokens does not fit the context of {n_ctx}",
                prompt.len()
            );
        }
        // Reuse what sequence 0 already holds.
        let cached = std::mem::take(&mut self.stream_cache);
        let keep = common_prefix(&cached, prompt).min(prompt.len() - 1);
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
            .map_err(|e| anyhow!("{e}"))?;
        let start = Instant::now();
        self.decode(&prompt[keep..], keep as i32, 0, Logits::Last)?;
        let prompt_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut held: Vec<Token> = prompt.to_vec();
        let mut text = StopMatcher::new(stop);
        let hold_back = stop.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        let mut shown = 0usize; // chars already handed out
        let mut generated = 0;
        let gen_start = Instant::now();
        let stop_reason = loop {
            let tok = self.argmax(0)?;
            if self.model.is_eog(tok) {
                break StopReason::EndOfGeneration;
            }
            generated += 1;
            if text.push(&self.model.piece(tok)) {
                break StopReason::StopString;
            }
            let so_far = text.clone().finish();
            let safe = so_far.chars().count().saturating_sub(hold_back);
            if safe > shown {
                let piece: String = so_far.chars().skip(shown).take(safe - shown).collect();
                on_text(&piece);
                shown = safe;
            }
            if generated >= max_tokens {
                break StopReason::Length;
            }
            if held.len() + 1 >= n_ctx {
                break StopReason::ContextFull;
            }
            let pos = held.len() as i32;
            held.push(tok);
            self.decode(&[tok], pos, 0, Logits::Last)?;
        };
        let final_text = text.finish();
        let rest: String = final_text.chars().skip(shown).collect();
        if !rest.is_empty() {
            on_text(&rest);
        }
        self.stream_cache = held;
        Ok(StreamedReply {
            text: final_text,
            stop_reason,
            prompt_decoded: prompt.len() - keep,
            generated,
            prompt_ms,
            generation_ms: gen_start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Forgets the conversation held for [`Self::stream`].
    pub fn reset_stream(&mut self) -> Result<()> {
        self.stream_cache.clear();
        self.ctx
            .clear_kv_cache_seq(Some(0), None, None)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(())
    }
}
