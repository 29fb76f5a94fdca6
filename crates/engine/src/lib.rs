//! The inference engine interface the rest of frontier talks to (tokenize, score
//! continuations, generate with stops), free of any engine's types: the local llama.cpp
//! engine (`frontier-llama`), a remote server or a scripted fake implement it. Also the
//! plain data engines take and report: load and context options, decode statistics, and
//! what a speed measurement asks for and returns.

pub mod bench;
mod logprob;
mod options;
mod stats;
mod stops;

pub use logprob::{argmax, log_softmax_at};
pub use options::{CacheType, ContextOptions, FlashAttn, ModelOptions};
pub use stats::{attended_depth, ContextMemory, DepthSteps, EngineStats};
pub use stops::StopMatcher;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// A token id in the model's vocabulary.
pub type Token = i32;

/// Length of the longest common prefix of two token lists.
pub fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Log-probability of a continuation after a context.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRequest {
    /// Shared: the choices of one multiple-choice item hold one copy of their context.
    pub context: std::sync::Arc<[Token]>,
    pub continuation: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    /// Natural-log probability of each continuation token given everything before it.
    pub token_logprobs: Vec<f64>,
    /// Sum of `token_logprobs`.
    pub logprob: f64,
    /// Whether every continuation token was the argmax at its position.
    pub is_greedy: bool,
}

/// One greedy generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub prompt: Vec<Token>,
    pub max_tokens: usize,
    /// Generation ends before the first occurrence of any of these strings (which is cut off).
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// A stop string appeared.
    StopString,
    /// `max_tokens` were generated.
    Length,
    /// The context window is full.
    ContextFull,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenResult {
    /// Generated text, cut before the stop string.
    pub text: String,
    pub stop_reason: StopReason,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// From the first prompt token decoded to the end, in milliseconds (shared with the
    /// sequences decoded alongside).
    pub time_ms: f64,
}

/// Text to tokens and back, with the model's own vocabulary.
pub trait Tokenizer {
    /// `add_special` adds the BOS token when the model wants one.
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>>;
    fn detokenize(&self, tokens: &[Token]) -> Result<String>;
}

/// A model as a backend has loaded it: its vocabulary, what it was trained for, and engines
/// (contexts) made on it. The local llama.cpp model is one; a scripted fake is another.
pub trait Model: Tokenizer {
    /// Whether tokenizing a whole prompt (with `add_special`) starts it with a BOS token.
    fn adds_bos(&self) -> bool;
    /// The context length the model was trained with.
    fn n_ctx_train(&self) -> u32;
    fn n_params(&self) -> u64;
    /// How long loading took.
    fn load_time(&self) -> std::time::Duration;
    /// Requests a server decodes together, when the model is served remotely (its engines
    /// then keep that many in flight by default).
    fn served_slots(&self) -> Option<u32> {
        None
    }
    /// An engine with its own context (KV cache) of these options.
    fn engine(&self, options: &ContextOptions) -> Result<Box<dyn Engine + '_>>;
}

/// What tasks need from an inference engine. The local llama.cpp engine is one; a remote
/// OpenAI-compatible server can be another.
pub trait Engine: Tokenizer {
    /// The context as it was built (llama.cpp rounds sizes up).
    fn options(&self) -> &ContextOptions;

    /// Bytes of KV cache the context holds, when the engine knows.
    fn kv_cache_bytes(&self) -> Option<u64> {
        None
    }

    /// Where decode time went so far.
    fn stats(&self) -> EngineStats;

    /// Runs a small untimed decode and empties the cache again, so that the first timed
    /// decode does not pay for first-touch costs (pages of the weights, threads). Engines
    /// with nothing to warm (a remote server) do nothing.
    fn warm_up(&mut self) -> Result<()> {
        Ok(())
    }

    /// Scores each request; requests may be evaluated together in one batch, and requests
    /// with the same context share its evaluation. Tokens every request starts with that
    /// `prefix` also starts with are evaluated once, in the prefix, and not again.
    fn score_shared(
        &mut self,
        prefix: &[Token],
        requests: &[ScoreRequest],
    ) -> Result<Vec<ScoreResult>>;

    /// [`Engine::score_shared`] without a shared prefix.
    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        self.score_shared(&[], requests)
    }

    /// Generates greedily for each request (several may decode together), calling
    /// `on_done(index, result)` as each one finishes; the start a prompt shares with
    /// `prefix` is taken from the prefix instead of decoded again.
    fn generate_shared(
        &mut self,
        prefix: &[Token],
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()>;

    /// [`Engine::generate_shared`] without a shared prefix.
    fn generate_each(
        &mut self,
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        self.generate_shared(&[], requests, on_done)
    }

    /// Generates for every request and returns the results in request order.
    fn generate(&mut self, requests: &[GenRequest]) -> Result<Vec<GenResult>> {
        let mut out: Vec<Option<GenResult>> = vec![None; requests.len()];
        self.generate_each(requests, &mut |i, r| {
            out[i] = Some(r);
            Ok(())
        })?;
        out.into_iter()
            .enumerate()
            .map(|(i, r)| r.ok_or_else(|| anyhow::anyhow!("generation request {i} never finished")))
            .collect()
    }
}
