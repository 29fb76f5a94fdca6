//! What a speed measurement (the llama-bench equivalent) is asked to do and what it reports:
//! plain data, so it travels between a worker process and its parent as JSON.

use frontier_core::units::{Bytes, Millis, TokensPerSecond};
use serde::{Deserialize, Serialize};

use crate::{ContextOptions, ModelOptions};

/// What to measure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpeedConfig {
    pub n_prompt: u32,
    pub n_gen: u32,
    /// Tokens already in the context before each test (llama-bench's `-d`), decoded untimed.
    #[serde(default)]
    pub n_depth: u32,
    pub reps: u32,
    /// Untimed runs of each test before the timed ones (llama-bench: 1, `--no-warmup`: 0).
    #[serde(default = "one")]
    pub warmup: u32,
    pub model: ModelOptions,
    /// `n_ctx` 0 means "just enough": n_prompt + n_gen, as llama-bench.
    pub context: ContextOptions,
}

fn one() -> u32 {
    1
}

/// One test (`pp512` or `tg128`): tokens/s of each repetition and their mean ± sd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpeedTest {
    /// `pp512`, `tg128`, `pp82 @ d519` as llama-bench names them.
    pub name: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    #[serde(default)]
    pub n_depth: u32,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<TokensPerSecond>,
    pub avg_ts: TokensPerSecond,
    pub stddev_ts: TokensPerSecond,
}

/// Everything the worker measured for one model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpeedMeasurement {
    pub load_ms: Millis,
    /// Prompt of `n_prompt` tokens to the first generated token, mean and sd over reps.
    pub ttft_ms: Millis,
    pub ttft_sd_ms: Millis,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub threads: u32,
    pub n_params: u64,
    /// Weight bytes as llama.cpp holds them.
    pub model_bytes: Bytes,
    /// KV cache bytes llama.cpp allocated for this context.
    pub kv_cache_bytes: Option<Bytes>,
    pub compute_buffer_bytes: Option<Bytes>,
    pub tests: Vec<SpeedTest>,
}
