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
    /// Generation steps by the KV depth they attended over, shallowest first (with a KV
    /// stream per sequence only): the shape to compare with llama.cpp's own rate.
    #[serde(default)]
    pub generation_depths: Vec<DepthSteps>,
    /// Sequences moved to another KV stream to keep generation batches in order of depth.
    #[serde(default)]
    pub moved_sequences: u64,
}

/// The generation steps that attended over `kv_depth` KV cells. With a KV stream per
/// sequence llama.cpp attends every sequence of a step over the deepest one's cells,
/// rounded up to 256 (`llama_kv_cache::get_n_kv`), so a step's cost follows that depth and
/// its number of rows, not the sequences' own lengths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DepthSteps {
    pub kv_depth: u32,
    pub steps: u64,
    /// Rows decoded (sequence slots, idle ones included) and generated tokens among them.
    pub rows: u64,
    pub generated: u64,
    pub ms: f64,
}

/// The KV cells llama.cpp attends over when the deepest sequence of a step holds `cells`:
/// `cells` rounded up to a multiple of 256, at least 256, at most the stream's size.
pub fn attended_depth(cells: u32, stream_cells: u32) -> u32 {
    (cells.max(1).div_ceil(256) * 256).min(stream_cells.max(256))
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
        self.moved_sequences += o.moved_sequences;
        for d in &o.generation_depths {
            self.add_depth_step(d);
        }
    }

    /// Counts `d`'s steps under their depth, keeping the list sorted by depth.
    pub fn add_depth_step(&mut self, d: &DepthSteps) {
        match self
            .generation_depths
            .binary_search_by_key(&d.kv_depth, |x| x.kv_depth)
        {
            Ok(i) => {
                let x = &mut self.generation_depths[i];
                x.steps += d.steps;
                x.rows += d.rows;
                x.generated += d.generated;
                x.ms += d.ms;
            }
            Err(i) => self.generation_depths.insert(i, d.clone()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_round_up_to_256_within_the_stream() {
        assert_eq!(attended_depth(0, 4096), 256);
        assert_eq!(attended_depth(1, 4096), 256);
        assert_eq!(attended_depth(256, 4096), 256);
        assert_eq!(attended_depth(257, 4096), 512);
        assert_eq!(attended_depth(900, 768), 768);
    }

    #[test]
    fn depth_steps_merge_by_depth_in_order() {
        let step = |kv_depth, ms| DepthSteps {
            kv_depth,
            steps: 1,
            rows: 8,
            generated: 7,
            ms,
        };
        let mut a = EngineStats::default();
        a.add_depth_step(&step(768, 3.0));
        a.add_depth_step(&step(256, 1.0));
        let mut b = EngineStats::default();
        b.add_depth_step(&step(768, 2.0));
        b.add_depth_step(&step(512, 1.5));
        a.add(&b);
        let depths: Vec<(u32, u64, u64, u64)> = a
            .generation_depths
            .iter()
            .map(|d| (d.kv_depth, d.steps, d.rows, d.generated))
            .collect();
        assert_eq!(depths, [(256, 1, 8, 7), (512, 1, 8, 7), (768, 2, 16, 14)]);
        assert_eq!(a.generation_depths[2].ms, 5.0);
    }
}
