//! The engine on llama.cpp (through llama-cpp-2): the only code in frontier that touches
//! llama.cpp's API. One backend per process; the context borrows the loaded model.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

use super::logprob::{argmax, log_softmax_at};
use super::{
    Engine, GenRequest, GenResult, ScoreRequest, ScoreResult, StopMatcher, StopReason, Token,
    Tokenizer,
};
use crate::logging;

static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();

/// Initialises llama.cpp for this process if it is not yet (logs routed to tracing).
pub fn ensure_backend() -> Result<()> {
    backend().map(|_| ())
}

/// The process-wide llama.cpp backend, initialised on first use (once, even when threads
/// race: llama.cpp refuses a second initialisation).
fn backend() -> Result<&'static LlamaBackend> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    let _guard = INIT
        .lock()
        .map_err(|_| anyhow!("llama.cpp initialisation lock poisoned"))?;
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    logging::route_llama_logs();
    let b = LlamaBackend::init().map_err(|e| anyhow!("initialising llama.cpp: {e}"))?;
    Ok(BACKEND.get_or_init(|| b))
}

/// Which compute backends this build of llama.cpp has, e.g. `CPU` or `CPU+Metal`.
pub fn backend_description() -> String {
    let mut parts = vec!["CPU"];
    if cfg!(feature = "metal") || cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        parts.push("Metal");
    }
    if cfg!(feature = "cuda") {
        parts.push("CUDA");
    }
    if cfg!(feature = "vulkan") {
        parts.push("Vulkan");
    }
    parts.join("+")
}

/// How to load a model's weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelOptions {
    /// Layers to offload to a GPU; `None` = llama.cpp's default (all, when a GPU exists).
    pub gpu_layers: Option<u32>,
    pub use_mmap: bool,
    pub use_mlock: bool,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            gpu_layers: None,
            use_mmap: true,
            use_mlock: false,
        }
    }
}

/// Flash attention choice, as llama.cpp's `llama_flash_attn_type`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FlashAttn {
    Auto,
    On,
    Off,
}

impl FlashAttn {
    /// The choice for evaluation and chat. Left to llama.cpp (`auto`), a CPU-only build
    /// turns flash attention on, and its CPU kernel is slow for small batches deep in a
    /// context, which is what evaluation after a shared prefix and chat turns are: llama-bench, SmolLM2-135M Q4_K_M
    /// at depth 1000, 2 threads, generation 60.4 t/s off against 24.6 on (gemma-3-270m 53.5
    /// against 56.2); MMLU questions after their prefix (3 subjects × 20) 9.4 s off against
    /// 23.9 s on. Only a whole long prompt gains from it (pp512 518 t/s on, 427 off). So
    /// `auto` means off on the CPU; an explicit choice is kept.
    pub fn for_decoding(self, cpu_only: bool) -> FlashAttn {
        match self {
            FlashAttn::Auto if cpu_only => FlashAttn::Off,
            other => other,
        }
    }
}

/// How to build an inference context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextOptions {
    /// KV cells in all: one stream shared by every sequence, or, with `stream_per_seq`,
    /// `n_ctx / (n_seq_max + 1)` cells for each sequence and the prefix (see
    /// [`ContextOptions::unified`]).
    pub n_ctx: u32,
    /// Logical batch: most tokens handed to one `llama_decode`.
    pub n_batch: u32,
    /// Physical batch: most tokens computed at once inside it.
    pub n_ubatch: u32,
    /// Most distinct sequences alive in the KV cache at once.
    pub n_seq_max: u32,
    pub threads: u32,
    pub flash_attn: FlashAttn,
    /// A KV stream per sequence (when there is more than one) instead of one for all.
    #[serde(default)]
    pub stream_per_seq: bool,
}

impl ContextOptions {
    /// One KV stream for everything, or a stream per sequence.
    ///
    /// Per-sequence streams keep each sequence's attention to its own cells, which is what
    /// generation needs: llama-batched-bench (SmolLM2-135M Q4_K_M, 1000-token prompts,
    /// 8 sequences, 2 threads, flash attention off) gave generation 54 t/s with one unified
    /// stream against 108 t/s with a stream per sequence. But llama.cpp then splits a batch
    /// into equal slices per stream, so prompts of unequal length (MMLU questions) are
    /// decoded in small pieces; one shared stream packs them. The price of streams is the
    /// shared prefix copied into each.
    pub fn unified(&self) -> bool {
        !self.stream_per_seq || self.n_seq_max <= 1
    }

    /// KV streams: the working sequences' and the shared prefix's.
    pub fn streams(&self) -> u32 {
        if self.unified() {
            1
        } else {
            self.n_seq_max + 1
        }
    }

    /// The cells one sequence can hold (its shared prefix included). llama.cpp rounds a
    /// stream up to whole pages of 256 cells, and reports the rounded `n_ctx` once the
    /// context exists.
    pub fn cells_per_seq(&self) -> u32 {
        if self.unified() {
            self.n_ctx
        } else {
            (self.n_ctx / self.streams()).div_ceil(256) * 256
        }
    }
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            n_ctx: 4096,
            n_batch: 2048,
            n_ubatch: 512,
            n_seq_max: 1,
            threads: crate::system::default_threads(),
            flash_attn: FlashAttn::Auto,
            stream_per_seq: false,
        }
    }
}

/// A model loaded into memory, with how long loading took.
#[derive(Debug)]
pub struct LoadedModel {
    model: LlamaModel,
    pub path: PathBuf,
    pub load_time: Duration,
}

impl LoadedModel {
    /// Validates the file with our GGUF reader, then loads it with llama.cpp.
    pub fn load(path: &Path, options: &ModelOptions) -> Result<LoadedModel> {
        crate::gguf::read_file(path)?;
        let backend = backend()?;
        let mut params = LlamaModelParams::default()
            .with_use_mmap(options.use_mmap)
            .with_use_mlock(options.use_mlock);
        if let Some(n) = options.gpu_layers {
            params = params.with_n_gpu_layers(n);
        }
        let start = Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            let said = logging::last_llama_error().unwrap_or_else(|| e.to_string());
            anyhow!(
                "{}: llama.cpp could not load the model: {said}",
                path.display()
            )
        })?;
        Ok(LoadedModel {
            model,
            path: path.to_path_buf(),
            load_time: start.elapsed(),
        })
    }

    pub fn n_params(&self) -> u64 {
        self.model.n_params()
    }

    /// Bytes of weights as llama.cpp holds them.
    pub fn size(&self) -> u64 {
        self.model.size()
    }

    pub fn n_ctx_train(&self) -> u32 {
        self.model.n_ctx_train()
    }

    pub fn n_vocab(&self) -> usize {
        self.model.n_vocab().max(0) as usize
    }

    /// The chat template stored in the GGUF, if any.
    pub fn chat_template(&self) -> Option<String> {
        self.model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok())
    }

    /// The end-of-generation test for a token.
    pub fn is_eog(&self, token: Token) -> bool {
        self.model.vocab().is_eog(LlamaToken(token))
    }

    pub fn new_engine(&self, options: &ContextOptions) -> Result<LlamaEngine<'_>> {
        LlamaEngine::new(self, options)
    }

    /// Whether llama.cpp adds a BOS token for this model.
    pub fn adds_bos(&self) -> bool {
        self.model.vocab().should_add_bos()
    }

    fn piece(&self, token: Token) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), false, None)
    }
}

impl Tokenizer for LoadedModel {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        Ok(token_ids(&self.model.vocab().tokenize(
            text.as_bytes(),
            add_special,
            true,
        )))
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        let toks: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        let bytes = self.model.vocab().detokenize(&toks, false, false);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Which positions of a decoded chunk need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    None,
    Last,
    All,
}

/// A llama.cpp context on a loaded model: the thing that decodes.
pub struct LlamaEngine<'m> {
    model: &'m LoadedModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    options: ContextOptions,
    /// For each token in the last decoded batch that has logits: its index in the batch.
    logit_rows: Vec<i32>,
    memory: ContextMemory,
    /// Tokens held in the prefix sequence (the last sequence id, shared by copying).
    prefix: Vec<Token>,
    stats: EngineStats,
    /// When on, every token fed and every prefix copy, in order (for tests).
    trace: Option<Vec<Fed>>,
    /// The tokens sequence 0 holds after the last [`LlamaEngine::stream`] call.
    stream_cache: Vec<Token>,
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

/// Where decode time went: the shared prefixes, the rest of the prompts (questions), and
/// generated tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    pub prefix_tokens: u64,
    pub prefix_ms: f64,
    pub prompt_tokens: u64,
    pub prompt_ms: f64,
    pub generated_tokens: u64,
    pub generation_ms: f64,
    /// Prompt tokens not decoded because the shared prefix already held them.
    pub reused_tokens: u64,
    /// Generation decode steps that fed back at least one generated token;
    /// `generated_tokens / generation_steps` is how many sequences decoded together.
    #[serde(default)]
    pub generation_steps: u64,
    /// Generated tokens, and decode time, of the steps in which every sequence slot fed back
    /// one generated token and nothing else: the engine's own rate at full occupancy, the
    /// figure `llama-batched-bench` reports for the same number of sequences.
    #[serde(default)]
    pub full_step_tokens: u64,
    #[serde(default)]
    pub full_step_ms: f64,
}

impl EngineStats {
    /// Generated tokens per second of generation time; `None` before any generation.
    pub fn generation_rate(&self) -> Option<f64> {
        (self.generation_ms > 0.0)
            .then(|| self.generated_tokens as f64 / (self.generation_ms / 1e3))
    }

    /// How many sequences fed back a generated token per generation step, on average.
    pub fn sequences_per_step(&self) -> Option<f64> {
        (self.generation_steps > 0)
            .then(|| self.generated_tokens as f64 / self.generation_steps as f64)
    }

    /// Generated tokens per second in the steps where every sequence slot generated.
    pub fn full_step_rate(&self) -> Option<f64> {
        (self.full_step_ms > 0.0).then(|| self.full_step_tokens as f64 / (self.full_step_ms / 1e3))
    }
}

/// Bytes of the buffers llama.cpp allocates with a context, read from its own log lines
/// (`KV buffer size = … MiB`, `compute buffer size = … MiB`); `None` when not logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextMemory {
    pub kv_bytes: Option<u64>,
    pub compute_bytes: Option<u64>,
    pub output_bytes: Option<u64>,
}

impl ContextMemory {
    pub fn from_log(lines: &[String]) -> ContextMemory {
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
            (!values.is_empty())
                .then(|| (values.iter().sum::<f64>() * 1024.0 * 1024.0).round() as u64)
        };
        ContextMemory {
            kv_bytes: sum("KV buffer size"),
            compute_bytes: sum("compute buffer size"),
            output_bytes: sum("output buffer size"),
        }
    }
}

impl std::fmt::Debug for LlamaEngine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaEngine")
            .field("options", &self.options)
            .finish()
    }
}

fn token_ids(tokens: &[LlamaToken]) -> Vec<Token> {
    tokens.iter().map(|t| t.0).collect()
}

impl<'m> LlamaEngine<'m> {
    fn new(model: &'m LoadedModel, o: &ContextOptions) -> Result<LlamaEngine<'m>> {
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
            .with_flash_attention_policy(flash);
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let watch = logging::watch_llama_lines(move |line| {
            if let Ok(mut l) = sink.lock() {
                l.push(line.to_string());
            }
        });
        let created = model.model.new_context(backend()?, params);
        drop(watch);
        let memory = ContextMemory::from_log(&lines.lock().map(|l| l.clone()).unwrap_or_default());
        let ctx = created.map_err(|e| {
            let said = logging::last_llama_error().unwrap_or_else(|| e.to_string());
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
    fn add_token(&mut self, token: Token, pos: i32, seq: i32, logits: bool) -> Result<()> {
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
    fn prefix_seq(&self) -> i32 {
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
    fn clear_working(&mut self) -> Result<()> {
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
    fn share_prefix(&mut self, seq: i32, n: usize) -> Result<()> {
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
    fn move_seq(&mut self, from: i32, to: i32) -> Result<()> {
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

    fn decode_batch(&mut self) -> Result<()> {
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

    /// Evaluates a group of sequences that fit the context together, each as its own
    /// sequence id, packed into shared batches; fills in the predictions' log-probabilities.
    fn score_group(&mut self, group: &[SeqJob], results: &mut [ScoreResult]) -> Result<()> {
        self.clear_working()?;
        for (g, job) in group.iter().enumerate() {
            self.share_prefix(g as i32, job.shared)?;
        }
        let n_batch = self.options.n_batch as usize;
        // (sequence index in group, position) for every token to feed, in order.
        let feed: Vec<(usize, usize)> = group
            .iter()
            .enumerate()
            .flat_map(|(g, job)| (job.shared..job.tokens.len()).map(move |pos| (g, pos)))
            .collect();
        let start = Instant::now();
        self.stats.prompt_tokens += feed.len() as u64;
        for chunk in feed.chunks(n_batch) {
            self.batch.clear();
            self.logit_rows.clear();
            let mut wanted = Vec::new();
            for (i, &(g, pos)) in chunk.iter().enumerate() {
                let job = &group[g];
                let preds: Vec<&Prediction> =
                    job.predictions.iter().filter(|p| p.pos == pos).collect();
                self.add_token(job.tokens[pos], pos as i32, g as i32, !preds.is_empty())?;
                if !preds.is_empty() {
                    self.logit_rows.push(i as i32);
                    wanted.push(preds);
                }
            }
            self.decode_batch()?;
            for (row, preds) in wanted.into_iter().enumerate() {
                let logits = self.logits(row)?;
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
        self.stats.prompt_ms += start.elapsed().as_secs_f64() * 1e3;
        Ok(())
    }
}

/// Length of the longest common prefix of two token lists.
pub fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
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

impl Tokenizer for LlamaEngine<'_> {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.model.tokenize(text, add_special)
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        self.model.detokenize(tokens)
    }
}

impl Engine for LlamaEngine<'_> {
    fn score_shared(
        &mut self,
        prefix: &[Token],
        requests: &[ScoreRequest],
    ) -> Result<Vec<ScoreResult>> {
        let n_ctx = self.options.cells_per_seq() as usize;
        let n_seq = self.options.n_seq_max as usize;
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
            self.set_prefix(prefix)?;
        }
        let jobs = plan_sequences(requests, prefix);
        let mut start = 0;
        while start < jobs.len() {
            // Take sequences while their own tokens and the prefix fit the KV cache together.
            let mut end = start;
            let mut used = if prefix.is_empty() {
                0
            } else {
                self.prefix.len()
            };
            while end < jobs.len() && end - start < n_seq {
                let own = jobs[end].tokens.len() - jobs[end].shared;
                // One stream: the group shares its cells. A stream each: every sequence
                // fits its own (checked above).
                if self.options.unified() && end > start && used + own > n_ctx {
                    break;
                }
                used += own;
                end += 1;
            }
            self.score_group(&jobs[start..end], &mut results)?;
            start = end;
        }
        Ok(results)
    }

    fn generate_shared(
        &mut self,
        prefix: &[Token],
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        if !prefix.is_empty() {
            if prefix.len() >= self.options.cells_per_seq() as usize {
                bail!(
                    "a shared prefix of {} tokens does not fit the context",
                    prefix.len()
                );
            }
            self.set_prefix(prefix)?;
        }
        generate::run(self, prefix, requests, on_done)
    }
}

mod generate {
    //! Continuous batching: up to `n_seq_max` sequences decode together; a finished slot is
    //! refilled with the next request at once.

    use super::*;

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
        reserved: usize,
        started: Instant,
    }

    pub(super) fn run(
        e: &mut LlamaEngine<'_>,
        prefix: &[Token],
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        let n_ctx = e.options.cells_per_seq() as usize;
        let unified = e.options.unified();
        let n_batch = e.options.n_batch as usize;
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
        e.clear_working()?;
        // One stream: the prefix's cells are taken from what all sequences share.
        let prefix_cells = if prefix.is_empty() || !unified {
            0
        } else {
            e.prefix.len()
        };
        let n_ctx_free = n_ctx.saturating_sub(prefix_cells);
        // Free sequence ids, the lowest last (taken first).
        let mut free_seqs: Vec<i32> = (0..e.options.n_seq_max as i32).rev().collect();
        let mut slots: Vec<Slot> = Vec::new();
        let mut next_req = 0;
        let mut reserved = 0usize;

        loop {
            // Admit requests while a sequence id and room in the KV cache are free. A request
            // reserves prompt + max_tokens cells (capped at the context) so none runs out.
            while next_req < requests.len() {
                let r = &requests[next_req];
                let shared = common_prefix(&r.prompt, prefix).min(r.prompt.len() - 1);
                let need = (r.prompt.len() - shared + r.max_tokens).min(n_ctx_free);
                let fits = !unified || reserved + need <= n_ctx_free || slots.is_empty();
                let Some(seq) = free_seqs.last().copied().filter(|_| fits) else {
                    break;
                };
                free_seqs.pop();
                reserved += need;
                e.share_prefix(seq, shared)?;
                slots.push(Slot {
                    req: next_req,
                    seq,
                    pending: r.prompt[shared..].to_vec(),
                    pos: shared as i32,
                    next: None,
                    generated: 0,
                    text: StopMatcher::new(&r.stop),
                    reserved: need,
                    started: Instant::now(),
                });
                next_req += 1;
            }
            if slots.is_empty() {
                break;
            }
            if !unified {
                compact(e, &mut slots, &mut free_seqs)?;
            }
            // llama.cpp puts sequences in one ubatch (one pass over the weights) only in
            // increasing, consecutive id order, so the batch is built in sequence order.
            slots.sort_by_key(|s| s.seq);

            // Build one batch: prompt chunks for slots still prefilling, one token for others.
            e.batch.clear();
            e.logit_rows.clear();
            let mut budget = n_batch;
            let mut row_of_slot: Vec<Option<usize>> = vec![None; slots.len()];
            let mut n_in_batch = 0i32;
            let mut prefill = 0u64;
            for (si, s) in slots.iter_mut().enumerate() {
                if budget == 0 {
                    break;
                }
                if !s.pending.is_empty() {
                    let take = s.pending.len().min(budget);
                    let done_prompt = take == s.pending.len();
                    for (k, &t) in s.pending[..take].iter().enumerate() {
                        let want = done_prompt && k + 1 == take;
                        e.add_token(t, s.pos, s.seq, want)?;
                        if want {
                            row_of_slot[si] = Some(e.logit_rows.len());
                            e.logit_rows.push(n_in_batch);
                        }
                        s.pos += 1;
                        n_in_batch += 1;
                    }
                    s.pending.drain(..take);
                    budget -= take;
                    prefill += take as u64;
                } else if let Some(t) = s.next.take() {
                    e.add_token(t, s.pos, s.seq, true)?;
                    row_of_slot[si] = Some(e.logit_rows.len());
                    e.logit_rows.push(n_in_batch);
                    s.pos += 1;
                    n_in_batch += 1;
                    budget -= 1;
                }
            }
            let step = Instant::now();
            e.decode_batch()?;
            // Split the step's time between prompt and generated tokens by their counts.
            let ms = step.elapsed().as_secs_f64() * 1e3;
            let total = n_in_batch.max(1) as f64;
            let generated = n_in_batch as u64 - prefill;
            e.stats.prompt_tokens += prefill;
            e.stats.prompt_ms += ms * prefill as f64 / total;
            e.stats.generated_tokens += generated;
            e.stats.generation_ms += ms * generated as f64 / total;
            if generated > 0 {
                e.stats.generation_steps += 1;
            }
            if prefill == 0 && generated == u64::from(e.options.n_seq_max) {
                e.stats.full_step_tokens += generated;
                e.stats.full_step_ms += ms;
            }

            // Sample for every slot that got logits; retire finished ones.
            let mut finished = Vec::new();
            for (si, s) in slots.iter_mut().enumerate() {
                let Some(row) = row_of_slot[si] else { continue };
                let tok = e.argmax(row)?;
                let r = &requests[s.req];
                let reason = if e.model.is_eog(tok) {
                    Some(StopReason::EndOfGeneration)
                } else {
                    s.generated += 1;
                    let piece = e.model.piece(tok);
                    if s.text.push(&piece) {
                        Some(StopReason::StopString)
                    } else if s.generated >= r.max_tokens {
                        Some(StopReason::Length)
                    } else if s.pos as usize >= n_ctx {
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
            for &(si, reason) in finished.iter().rev() {
                let s = slots.swap_remove(si);
                e.clear_seq(s.seq)?;
                release(&mut free_seqs, s.seq);
                reserved -= s.reserved;
                on_done(
                    s.req,
                    GenResult {
                        text: s.text.finish(),
                        stop_reason: reason,
                        prompt_tokens: requests[s.req].prompt.len(),
                        generated_tokens: s.generated,
                        time_ms: s.started.elapsed().as_secs_f64() * 1e3,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn release(free_seqs: &mut Vec<i32>, seq: i32) {
        free_seqs.push(seq);
        free_seqs.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// With a KV stream per sequence, llama.cpp decodes together (in one ubatch) only
    /// sequences with consecutive ids, so once no request is left to fill a freed id the
    /// highest working sequences move down into the free ones: the working ids stay 0..k.
    fn compact(
        e: &mut LlamaEngine<'_>,
        slots: &mut [Slot],
        free_seqs: &mut Vec<i32>,
    ) -> Result<()> {
        loop {
            let Some(&lowest_free) = free_seqs.last() else {
                return Ok(());
            };
            let Some(top) = slots.iter_mut().max_by_key(|s| s.seq) else {
                return Ok(());
            };
            if top.seq < lowest_free {
                return Ok(());
            }
            e.move_seq(top.seq, lowest_free)?;
            free_seqs.pop();
            let from = std::mem::replace(&mut top.seq, lowest_free);
            release(free_seqs, from);
        }
    }
}
