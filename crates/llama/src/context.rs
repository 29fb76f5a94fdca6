//! A llama.cpp context on a loaded model: the thing that decodes. It holds the KV cache's
//! sequences (the working ones and the shared prefix), feeds batches, reads logits, and
//! counts where decode time went; scoring ([`crate::score`]), continuous batching
//! ([`crate::generate`]) and chat streaming ([`crate::stream`]) are built on it, and
//! [`crate::engine`] offers it as a `frontier_engine::Engine`.

use std::num::NonZeroU32;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use frontier_engine::{
    argmax, common_prefix, ContextMemory, ContextOptions, EngineStats, FlashAttn, Token,
};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::backend::backend;
use crate::logs;
use crate::model::LoadedModel;

/// llama.cpp's KV cache type for ours.
fn cache_type(t: frontier_engine::CacheType) -> llama_cpp_2::context::params::KvCacheType {
    use frontier_engine::CacheType as C;
    use llama_cpp_2::context::params::KvCacheType as K;
    match t {
        C::F32 => K::F32,
        C::F16 => K::F16,
        C::Bf16 => K::BF16,
        C::Q8_0 => K::Q8_0,
        C::Q4_0 => K::Q4_0,
        C::Q4_1 => K::Q4_1,
        C::Iq4Nl => K::IQ4_NL,
        C::Q5_0 => K::Q5_0,
        C::Q5_1 => K::Q5_1,
    }
}

/// Which positions of a decoded chunk need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    None,
    Last,
    All,
    /// Every token from this index (within the decoded tokens) on.
    From(usize),
}

/// A llama.cpp context on a loaded model: the thing that decodes.
pub struct LlamaEngine<'m> {
    pub(crate) model: &'m LoadedModel,
    pub(crate) ctx: LlamaContext<'m>,
    pub(crate) batch: LlamaBatch<'static>,
    pub(crate) options: ContextOptions,
    /// For each token in the last decoded batch that has logits: its index in the batch.
    pub(crate) logit_rows: Vec<i32>,
    pub(crate) memory: ContextMemory,
    /// Tokens held in the prefix sequence (the last sequence id, shared by copying).
    pub(crate) prefix: Vec<Token>,
    pub(crate) stats: EngineStats,
    /// When on, every token fed and every prefix copy, in order (for tests).
    pub(crate) trace: Option<Vec<Fed>>,
    /// The tokens sequence 0 holds after the last [`LlamaEngine::stream`] call.
    pub(crate) stream_cache: Vec<Token>,
}

/// One thing that put tokens into a sequence's KV cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    /// `token` decoded at `pos` in `seq`.
    Token { seq: i32, pos: i32, token: Token },
    /// The first `n` cells of the prefix sequence shared into `seq`.
    Copy { seq: i32, n: usize },
    /// `seq` emptied.
    Clear { seq: i32 },
    /// `seq` cut to its first `keep` cells.
    Truncate { seq: i32, keep: usize },
    /// Everything `from` held moved to `to` (and `from` emptied).
    Move { from: i32, to: i32 },
}

impl std::fmt::Debug for LlamaEngine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaEngine")
            .field("options", &self.options)
            .finish()
    }
}

impl<'m> LlamaEngine<'m> {
    pub(crate) fn new(model: &'m LoadedModel, o: &ContextOptions) -> Result<LlamaEngine<'m>> {
        if o.n_ctx == 0 || o.n_batch == 0 || o.n_ubatch == 0 || o.n_seq_max == 0 || o.threads == 0 {
            bail!("context size, batch sizes, sequences and threads must all be at least 1");
        }
        let threads = i32::try_from(o.threads).context("thread count")?;
        let flash = match o.flash_attn {
            FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        };
        let n_batch = o.n_batch.min(o.n_ctx);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(o.n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(o.n_ubatch.min(n_batch))
            // One more sequence than asked for: the last holds a shared prefix.
            .with_n_seq_max(o.n_seq_max + 1)
            .with_kv_unified(o.unified())
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(flash)
            .with_type_k(cache_type(o.type_k))
            .with_type_v(cache_type(o.type_v));
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let watch = logs::watch_llama_lines(move |line| {
            if let Ok(mut l) = sink.lock() {
                l.push(line.to_string());
            }
        });
        let created = model.model.new_context(backend()?, params);
        drop(watch);
        let memory = context_memory_from_log(&lines.lock().map(|l| l.clone()).unwrap_or_default());
        let ctx = created.map_err(|e| {
            let said = logs::last_llama_error().unwrap_or_else(|| e.to_string());
            anyhow!(
                "llama.cpp could not create a context of {} tokens: {said}",
                o.n_ctx
            )
        })?;
        let mut options = o.clone();
        options.n_batch = ctx.n_batch();
        options.n_ubatch = ctx.n_ubatch();
        options.n_ctx = ctx.n_ctx();
        Ok(LlamaEngine {
            model,
            batch: LlamaBatch::new(options.n_batch as usize, 1),
            ctx,
            options,
            logit_rows: Vec::new(),
            memory,
            prefix: Vec::new(),
            stats: EngineStats::default(),
            trace: None,
            stream_cache: Vec::new(),
        })
    }

    /// Starts (or stops) recording what is fed into which sequence.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }

    /// What was fed since tracing started.
    pub fn trace(&self) -> &[Fed] {
        self.trace.as_deref().unwrap_or_default()
    }

    /// Adds one token to the batch (recording it when tracing).
    pub(crate) fn add_token(
        &mut self,
        token: Token,
        pos: i32,
        seq: i32,
        logits: bool,
    ) -> Result<()> {
        self.batch.add(LlamaToken(token), pos, &[seq], logits)?;
        if let Some(t) = self.trace.as_mut() {
            t.push(Fed::Token { seq, pos, token });
        }
        Ok(())
    }

    /// Decode time and tokens so far.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The sequence id that holds the shared prefix.
    pub(crate) fn prefix_seq(&self) -> i32 {
        self.options.n_seq_max as i32
    }

    /// Makes the prefix sequence hold exactly `tokens`. A prefix that only grows keeps what
    /// is decoded; any other change starts from an empty cache (no fragments of the old
    /// prefix left between free cells).
    pub fn set_prefix(&mut self, tokens: &[Token]) -> Result<()> {
        if self.prefix == tokens {
            return Ok(());
        }
        let keep = common_prefix(&self.prefix, tokens);
        let keep = if keep < self.prefix.len() {
            self.clear();
            if let Some(t) = self.trace.as_mut() {
                t.push(Fed::Truncate {
                    seq: self.options.n_seq_max as i32,
                    keep: 0,
                });
            }
            0
        } else {
            keep
        };
        if keep < tokens.len() {
            let start = Instant::now();
            self.decode(
                &tokens[keep..],
                keep as i32,
                self.prefix_seq(),
                Logits::None,
            )?;
            self.stats.prefix_ms += start.elapsed().as_secs_f64() * 1e3;
            self.stats.prefix_tokens += (tokens.len() - keep) as u64;
        }
        self.prefix = tokens.to_vec();
        Ok(())
    }

    /// Empties the working sequences, keeping the shared prefix.
    pub(crate) fn clear_working(&mut self) -> Result<()> {
        self.stream_cache.clear();
        for seq in 0..self.options.n_seq_max {
            self.ctx
                .clear_kv_cache_seq(Some(seq), None, None)
                .map_err(|e| anyhow!("{e}"))?;
            if let Some(t) = self.trace.as_mut() {
                t.push(Fed::Clear { seq: seq as i32 });
            }
        }
        Ok(())
    }

    /// Starts sequence `seq` with the first `n` tokens of the shared prefix.
    pub(crate) fn share_prefix(&mut self, seq: i32, n: usize) -> Result<()> {
        if let Some(t) = self.trace.as_mut() {
            t.push(Fed::Copy { seq, n });
        }
        if n == 0 {
            return Ok(());
        }
        if self.options.unified() {
            // Same stream: the cells are tagged with both sequences, nothing is copied.
            self.ctx
                .copy_kv_cache_seq(self.prefix_seq(), seq, Some(0), Some(n as u32))
                .map_err(|e| anyhow!("{e}"))?;
        } else {
            // Another stream: llama.cpp copies whole streams (before the next decode); the
            // prefix's cells past `n` are then dropped from the copy.
            self.ctx
                .copy_kv_cache_seq(self.prefix_seq(), seq, None, None)
                .map_err(|e| anyhow!("{e}"))?;
            if n < self.prefix.len() {
                self.ctx
                    .clear_kv_cache_seq(Some(u32::try_from(seq)?), Some(n as u32), None)
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        self.stats.reused_tokens += n as u64;
        Ok(())
    }

    /// Buffers llama.cpp allocated for this context, as it logged them.
    pub fn memory(&self) -> &ContextMemory {
        &self.memory
    }

    pub fn options(&self) -> &ContextOptions {
        &self.options
    }

    pub fn model(&self) -> &LoadedModel {
        self.model
    }

    pub fn n_vocab(&self) -> usize {
        self.model.n_vocab()
    }

    /// The token llama.cpp puts first when it adds special tokens, if the model wants one.
    pub fn bos(&self) -> Option<Token> {
        let vocab = self.model.model.vocab();
        vocab.should_add_bos().then(|| vocab.bos().0)
    }

    /// llama.cpp's own warm-up (as in llama-cli, llama-server, llama-perplexity): BOS and EOS
    /// decoded once in sequence 0, then the whole cache emptied. It is not traced, not
    /// counted in the stats, and leaves nothing behind that a later decode could read.
    pub fn warm_up(&mut self) -> Result<()> {
        let vocab = self.model.model.vocab();
        let mut tokens: Vec<Token> = [vocab.bos().0, vocab.eos().0]
            .into_iter()
            .filter(|&t| t >= 0)
            .collect();
        if tokens.is_empty() {
            tokens.push(0);
        }
        let trace = self.trace.take();
        let decoded = self.decode(&tokens, 0, 0, Logits::Last);
        self.clear();
        self.logit_rows.clear();
        self.trace = trace;
        decoded.context("warm-up decode")
    }

    /// Empties the KV cache of every sequence, the shared prefix included.
    pub fn clear(&mut self) {
        self.ctx.clear_kv_cache();
        self.prefix.clear();
        self.stream_cache.clear();
        if let Some(t) = self.trace.as_mut() {
            for seq in 0..=self.options.n_seq_max as i32 {
                t.push(Fed::Clear { seq });
            }
        }
    }

    /// Moves what sequence `from` holds to the empty sequence `to`. With a KV stream per
    /// sequence llama.cpp copies the whole stream (before the next decode).
    pub(crate) fn move_seq(&mut self, from: i32, to: i32) -> Result<()> {
        if let Some(t) = self.trace.as_mut() {
            t.push(Fed::Move { from, to });
        }
        self.ctx
            .copy_kv_cache_seq(from, to, None, None)
            .map_err(|e| anyhow!("{e}"))?;
        self.clear_seq(from)
    }

    /// Drops one sequence from the KV cache.
    pub fn clear_seq(&mut self, seq: i32) -> Result<()> {
        self.ctx
            .clear_kv_cache_seq(Some(u32::try_from(seq)?), None, None)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(())
    }

    /// Decodes `tokens` of sequence `seq` at positions `pos0..`, in chunks of at most
    /// `n_batch`. With `Logits::Last` / `All` the logits are afterwards readable with
    /// [`Self::logits`] (row 0 = first token that asked for them, in the last chunk).
    pub fn decode(&mut self, tokens: &[Token], pos0: i32, seq: i32, logits: Logits) -> Result<()> {
        let n_batch = self.options.n_batch as usize;
        let chunks = tokens.chunks(n_batch).count();
        for (c, chunk) in tokens.chunks(n_batch).enumerate() {
            self.batch.clear();
            self.logit_rows.clear();
            let last_chunk = c + 1 == chunks;
            for (i, &t) in chunk.iter().enumerate() {
                let pos = pos0 + (c * n_batch + i) as i32;
                let want = last_chunk
                    && match logits {
                        Logits::None => false,
                        Logits::Last => i + 1 == chunk.len(),
                        Logits::All => true,
                        Logits::From(from) => c * n_batch + i >= from,
                    };
                self.add_token(t, pos, seq, want)?;
                if want {
                    self.logit_rows.push(i as i32);
                }
            }
            self.decode_batch()?;
        }
        Ok(())
    }

    pub(crate) fn decode_batch(&mut self) -> Result<()> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| anyhow!("llama_decode failed: {e}"))?;
        Ok(())
    }

    /// Waits for the backend to finish queued work (a no-op on CPU).
    pub fn synchronize(&self) {
        self.ctx.synchronize();
    }

    /// Logits of the `row`-th token that asked for them in the last decode.
    pub fn logits(&self, row: usize) -> Result<&[f32]> {
        let idx = *self
            .logit_rows
            .get(row)
            .ok_or_else(|| anyhow!("no logits were requested for row {row}"))?;
        Ok(self.ctx.get_logits_ith(idx))
    }

    /// Greedy choice at `row` of the last decode.
    pub fn argmax(&self, row: usize) -> Result<Token> {
        Ok(argmax(self.logits(row)?) as Token)
    }
}

/// Bytes of the buffers llama.cpp allocated for a context, read from its own log lines
/// (`KV buffer size = … MiB`, `compute buffer size = … MiB`); `None` when not logged.
pub fn context_memory_from_log(lines: &[String]) -> ContextMemory {
    let sum = |marker: &str| -> Option<u64> {
        let values: Vec<f64> = lines
            .iter()
            .filter_map(|l| {
                let rest = &l[l.find(marker)? + marker.len()..];
                let num = rest
                    .trim_start_matches([' ', '='])
                    .split_whitespace()
                    .next()?;
                num.parse::<f64>().ok()
            })
            .collect();
        (!values.is_empty()).then(|| (values.iter().sum::<f64>() * 1024.0 * 1024.0).round() as u64)
    };
    ContextMemory {
        kv_bytes: sum("KV buffer size"),
        compute_bytes: sum("compute buffer size"),
        output_bytes: sum("output buffer size"),
    }
}
