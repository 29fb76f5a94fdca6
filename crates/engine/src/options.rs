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
    #[cfg_attr(feature = "clap", value(alias = "-1"))]
    Auto,
    /// `1` as llama-bench writes it.
    #[cfg_attr(feature = "clap", value(alias = "1"))]
    On,
    #[cfg_attr(feature = "clap", value(alias = "0"))]
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
    /// Element types of the K and V caches.
    #[serde(default)]
    pub type_k: CacheType,
    #[serde(default)]
    pub type_v: CacheType,
    /// With a KV stream per sequence: generated tokens decoded together in one
    /// `llama_decode`, a fixed number so that a request's arithmetic does not depend on the
    /// others (idle rows are padded). 0: every sequence at once.
    #[serde(default)]
    pub batch_rows: u32,
    /// With a KV stream per sequence: decode only the sequences that generate, without the
    /// throwaway rows that keep every step `batch_rows` wide. Faster when a few long
    /// generations are left (as llama-server decodes), but llama.cpp's logits depend on a
    /// step's row count, so an item's output then depends on which items ran beside it.
    #[serde(default)]
    pub no_padding: bool,
}

/// A KV cache element type, named as llama.cpp names it (`-ctk q8_0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheType {
    F32,
    #[default]
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    Iq4Nl,
    Q5_0,
    Q5_1,
}

impl CacheType {
    pub const ALL: [CacheType; 9] = [
        CacheType::F32,
        CacheType::F16,
        CacheType::Bf16,
        CacheType::Q8_0,
        CacheType::Q4_0,
        CacheType::Q4_1,
        CacheType::Iq4Nl,
        CacheType::Q5_0,
        CacheType::Q5_1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheType::F32 => "f32",
            CacheType::F16 => "f16",
            CacheType::Bf16 => "bf16",
            CacheType::Q8_0 => "q8_0",
            CacheType::Q4_0 => "q4_0",
            CacheType::Q4_1 => "q4_1",
            CacheType::Iq4Nl => "iq4_nl",
            CacheType::Q5_0 => "q5_0",
            CacheType::Q5_1 => "q5_1",
        }
    }

    /// Bytes per element (blocks of 32 for the quantized types).
    pub fn bytes(self) -> f64 {
        match self {
            CacheType::F32 => 4.0,
            CacheType::F16 | CacheType::Bf16 => 2.0,
            CacheType::Q8_0 => 34.0 / 32.0,
            CacheType::Q4_0 | CacheType::Iq4Nl => 18.0 / 32.0,
            CacheType::Q4_1 => 20.0 / 32.0,
            CacheType::Q5_0 => 22.0 / 32.0,
            CacheType::Q5_1 => 24.0 / 32.0,
        }
    }
}

impl std::fmt::Display for CacheType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CacheType {
    type Err = String;

    fn from_str(s: &str) -> Result<CacheType, String> {
        CacheType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown KV cache type '{s}' (one of {})",
                    CacheType::ALL.map(CacheType::as_str).join(", ")
                )
            })
    }
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

    /// Sequences decoded together in one generation batch: all of them with one KV stream
    /// or `batch_rows` 0, else `batch_rows` rounded down to a divisor of `n_seq_max`.
    /// llama.cpp attends every row of a batch over as many cells as its deepest sequence
    /// holds, so smaller batches keep a short sequence from paying for a long one, and the
    /// last few requests of a run from paying for a full batch; larger ones read the weights
    /// fewer times per step. Every batch holds exactly this many rows (idle ids decode a
    /// throwaway token; a divisor, so the last batch is not shorter), and a request's
    /// arithmetic is the same whichever requests run beside it — unless `no_padding`.
    pub fn generation_batch_rows(&self) -> u32 {
        let n = self.n_seq_max.max(1);
        match self.batch_rows {
            0 => n,
            _ if self.unified() => n,
            asked => (1..=asked.min(n))
                .rev()
                .find(|&r| n.is_multiple_of(r))
                .unwrap_or(1),
        }
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
            type_k: CacheType::F16,
            type_v: CacheType::F16,
            batch_rows: 0,
            no_padding: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ContextOptions;

    #[test]
    fn generation_batches_divide_the_sequences_evenly() {
        let rows = |batch_rows, n_seq_max, stream_per_seq| {
            ContextOptions {
                batch_rows,
                n_seq_max,
                stream_per_seq,
                ..ContextOptions::default()
            }
            .generation_batch_rows()
        };
        assert_eq!(rows(0, 8, true), 8);
        assert_eq!(rows(4, 8, true), 4);
        assert_eq!(rows(3, 8, true), 2);
        assert_eq!(rows(5, 6, true), 3);
        assert_eq!(rows(16, 8, true), 8);
        // One KV stream: every sequence in one batch, as before.
        assert_eq!(rows(4, 8, false), 8);
    }
}
