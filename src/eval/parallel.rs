//! How many sequences to evaluate together when `--parallel` is not given: up to
//! [`MAX_AUTO_PARALLEL`] ([`MAX_GENERATING_ON_CPU`] generating on the CPU), as many as let
//! the KV cache for the longest prompt fit in half the memory left once the model is loaded
//! (under the memory cap, or of the free RAM).

/// Why scoring alone (MMLU) runs one sequence at a time on the CPU: after the shared prefix a
/// question is already a batch of ~60 tokens or more, as much as the CPU's matrix kernels
/// use, and packing more questions into one stream only adds masked attention (MMLU,
/// SmolLM2-135M Q4_K_M, 3 subjects × 20, 2 threads: 11.7 s with one sequence, 15.6 s with
/// eight).
pub const SCORING_ON_CPU: &str =
    "auto: one sequence: scoring on the CPU gains nothing from packing questions together";

/// `--parallel` not given: the worker chooses.
pub const AUTO_PARALLEL: u32 = 0;

/// Beyond this batching gains little on CPUs (llama-batched-bench on a 2-core machine:
/// 157 generated tokens/s with 8 sequences, 166 with 16).
pub const MAX_AUTO_PARALLEL: u32 = 8;

/// Generation on the CPU: llama.cpp's CPU kernels multiply in blocks of 4 rows (the
/// repacked quantized weights' gemm takes a step's tokens 4 at a time), so a step of 8
/// sequences costs about two steps of 4, while every step keeps all its rows (idle ones
/// padded, for results that do not depend on the other items): with 8 slots the one or two
/// long generations left at the end of a run pay for 8 rows a step, with 4 for 4.
/// SmolLM2-135M Q4_K_M, 2 threads, Zen 4: llama-batched-bench steps of 1/2/4/8 sequences at
/// depth 604 took 13.6/26.7/43.5/87.2 ms, 4 sequences generated 0-24% (median 6%) fewer
/// tokens/s than 8 at depths 256-1536, and HumanEval's first 64 items, on the outputs of
/// either of two runs, cost 13-14% less in padded steps of 4 than of 8 at llama.cpp's step
/// times (`scripts/rates-vs-llama humaneval` prints that for a run's outputs); GSM8K, whose
/// steps are mostly full, from 0.3% less (40 items) to 10% more (200 items, 353.5 against
/// 320.6 s of a 1,347 s run).
pub const MAX_GENERATING_ON_CPU: u32 = 4;

/// Context cells for a shared prefix and `n` sequences of `own` cells each, in whole pages
/// of 256. In one KV stream the sequences share the prefix (with a margin for cells the
/// cache cannot use contiguously); with `stream_per_seq` each sequence and the prefix get a
/// stream, each with a copy of the prefix (see `ContextOptions::unified`).
pub fn context_cells(prefix: usize, own: usize, n: u32, stream_per_seq: bool) -> u32 {
    let pages = |cells: usize| (cells.div_ceil(256) * 256).max(256) as u32;
    if n <= 1 || !stream_per_seq {
        pages((prefix + own * n.max(1) as usize) * 11 / 10 + 256)
    } else {
        (n + 1) * pages((prefix + own) * 11 / 10 + 64)
    }
}

/// The number of sequences, and why: the largest `n` ≤ `max` whose KV cache fits in half of
/// `spare_bytes`. Not fewer for a run of fewer items: the number of sequence slots shapes
/// every generation step (see `frontier_llama`'s continuous batching), so it must not depend
/// on how many items the run has.
pub fn choose(
    kv_bytes_per_cell: u64,
    prefix: usize,
    own: usize,
    spare_bytes: u64,
    stream_per_seq: bool,
    max: u32,
) -> (u32, String) {
    let budget = spare_bytes / 2;
    let n = (1..=max.max(1))
        .rev()
        .find(|&n| {
            context_cells(prefix, own, n, stream_per_seq) as u64 * kv_bytes_per_cell <= budget
        })
        .unwrap_or(1);
    let kv = context_cells(prefix, own, n, stream_per_seq) as u64 * kv_bytes_per_cell;
    let why = format!(
        "auto: KV cache {} for {n} sequences within half of the {} left after loading",
        frontier_core::units::bytes(kv),
        frontier_core::units::bytes(spare_bytes)
    );
    (n, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_most_sequences_that_fit() {
        // 30 layers × 3 heads × 128 elements × 2 bytes: SmolLM2-135M.
        let kv = 30 * 3 * 128 * 2;
        let max = MAX_AUTO_PARALLEL;
        assert_eq!(choose(kv, 600, 200, 8 << 30, true, max).0, max);
        assert_eq!(choose(kv, 600, 200, 8 << 30, true, 4).0, 4);
        // Room for the KV cache of about two sequences only.
        let two = context_cells(600, 200, 2, true) as u64 * kv * 2;
        assert_eq!(choose(kv, 600, 200, two, true, max).0, 2);
        assert_eq!(choose(kv, 600, 200, 0, true, max).0, 1, "at least one");
        assert!(choose(kv, 600, 200, two, true, max)
            .1
            .contains("2 sequences"));
    }

    #[test]
    fn context_cells_come_in_pages() {
        assert_eq!(context_cells(0, 1, 1, true), 512);
        assert_eq!(context_cells(1000, 100, 4, false) % 256, 0);
        // One stream: the prefix once, then every sequence's own cells.
        assert_eq!(context_cells(600, 200, 4, false), 2048);
        // A stream per sequence and one for the prefix, each with the prefix in it.
        assert_eq!(context_cells(600, 200, 4, true), 5 * 1024);
        assert_eq!(context_cells(600, 200, 1, true), 1280);
    }
}
