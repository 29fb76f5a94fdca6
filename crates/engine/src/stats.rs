//! What an engine reports about its work: where decode time went, and the buffers its
//! context holds.

use serde::{Deserialize, Serialize};

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
    /// Requests to a server that had to be sent again (busy, refused, dropped).
    #[serde(default)]
    pub retried_requests: u64,
}

impl EngineStats {
    /// Adds another engine's counts to these (one worker, several contexts).
    pub fn add(&mut self, o: &EngineStats) {
        self.prefix_tokens += o.prefix_tokens;
        self.prefix_ms += o.prefix_ms;
        self.prompt_tokens += o.prompt_tokens;
        self.prompt_ms += o.prompt_ms;
        self.generated_tokens += o.generated_tokens;
        self.generation_ms += o.generation_ms;
        self.reused_tokens += o.reused_tokens;
        self.generation_steps += o.generation_steps;
        self.full_step_tokens += o.full_step_tokens;
        self.full_step_ms += o.full_step_ms;
        self.retried_requests += o.retried_requests;
    }

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
