//! The inference engine interface the rest of frontier talks to (tokenize, score
//! continuations, generate with stops, raw decode timing), free of llama.cpp types, and its
//! one implementation on llama.cpp in [`llama`].

mod llama;
mod logprob;
mod projection;
mod stops;

pub use llama::{
    backend_description, common_prefix, ensure_backend, ContextMemory, ContextOptions, EngineStats,
    Fed, FlashAttn, LlamaEngine, LoadedModel, Logits, ModelOptions, StreamedReply,
};
pub use logprob::argmax;
pub use logprob::log_softmax_at;
pub use projection::{parse_projection, run_fit, LlamaProjection};
pub use stops::StopMatcher;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// A token id in the model's vocabulary.
pub type Token = i32;

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

/// What tasks need from an inference engine. The local llama.cpp engine is one; a remote
/// OpenAI-compatible server can be another.
pub trait Engine: Tokenizer {
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
