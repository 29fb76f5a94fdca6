//! How many sequences to evaluate together when `--parallel` is not given: up to
//! [`MAX_AUTO_PARALLEL`], as many as let the KV cache for the longest prompt fit in half the
//! memory left once the model is loaded (under the memory cap, or of the free RAM).

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

/// The number of sequences, and why: the largest `n` ≤ [`MAX_AUTO_PARALLEL`] whose KV cache
/// fits in half of `spare_bytes`. Not fewer for a run of fewer items: the number of sequence
/// slots shapes every generation step (see `frontier_llama`'s continuous batching), so it must
/// not depend on how many items the run has.
pub fn choose(
    kv_bytes_per_cell: u64,
    prefix: usize,
    own: usize,
    spare_bytes: u64,
    stream_per_seq: bool,
) -> (u32, String) {
    let budget = spare_bytes / 2;
    let n = (1..=MAX_AUTO_PARALLEL)
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
        assert_eq!(choose(kv, 600, 200, 8 << 30, true).0, MAX_AUTO_PARALLEL);
        // Room for the KV cache of about two sequences only.
        let two = context_cells(600, 200, 2, true) as u64 * kv * 2;
        assert_eq!(choose(kv, 600, 200, two, true).0, 2);
        assert_eq!(choose(kv, 600, 200, 0, true).0, 1, "at least one");
        assert!(choose(kv, 600, 200, two, true).1.contains("2 sequences"));
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
