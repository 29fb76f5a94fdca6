//! How an engine loads a model and builds its context: the options every engine takes,
//! as plain data (they travel to worker processes as JSON).

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
            threads: frontier_core::system::default_threads(),
            flash_attn: FlashAttn::Auto,
            stream_per_seq: false,
        }
    }
}
