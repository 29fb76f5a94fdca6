//! How many sequences to evaluate together when `--parallel` is not given: up to
//! [`MAX_AUTO_PARALLEL`] (a multiple of [`BATCH_ROWS_ON_CPU`] generating on the CPU), as many
//! as let the KV cache for the longest prompt fit in half the memory left once the model is
//! loaded (under the memory cap, or of the free RAM).

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

/// Generation on the CPU decodes its sequences in batches of this many rows (unless
/// `--batch-rows`), kept in order of depth. llama.cpp's CPU kernels multiply in blocks of 4
/// rows (the repacked quantized weights' gemm takes a step's tokens 4 at a time), so a step
/// of 8 costs about two of 4, while every step keeps all its rows (idle ones padded, for
/// results that do not depend on the other items): in batches of 8 the one or two long
/// generations left at the end of a run pay for 8 rows a step, in batches of 4 for 4. And
/// llama.cpp attends every row of a batch over as many cells as its deepest sequence holds,
/// so 8 slots in two batches of 4, each of similar depths, cost less than 4 slots in one.
/// A sequence's arithmetic depends only on its batch's row count, so the outputs are the same
/// with 4 or 8 slots (HumanEval 64: all identical). SmolLM2-135M Q4_K_M, 2 threads, Zen 4:
/// llama-batched-bench steps of 1/2/4/8 sequences at depth 640 took 15.4/24.8/41.8/68.5 ms;
/// HumanEval's first 64 items cost, at those step times, 105.7 s of generation in one batch of
/// 8, 96.6 s in 4 slots and 89.9 s in 8 slots as two batches of 4 (`scripts/rates-vs-llama
/// humaneval` prints this for a run's outputs).
pub const BATCH_ROWS_ON_CPU: u32 = 4;

/// Whether the model runs on the CPU: a CPU-only build, or no layers offloaded.
pub fn on_cpu(model: &frontier_engine::ModelOptions) -> bool {
    crate::build_info::cpu_only() || model.gpu_layers == Some(0)
}

/// The rows of a generation batch asked for: `--batch-rows`, or when not given
/// [`BATCH_ROWS_ON_CPU`] on the CPU and 0 (all sequences in one batch) on a GPU.
pub fn asked_batch_rows(batch_rows: u32, cpu_only: bool) -> u32 {
    match batch_rows {
        0 if cpu_only => BATCH_ROWS_ON_CPU,
        asked => asked,
    }
}

/// Whether `n` sequence slots suit batches of `rows` (asked; 0: all in one batch): a
/// multiple of them, so that every batch keeps that many rows, or fewer than one batch.
fn suits_rows(n: u32, rows: u32) -> bool {
    let rows = rows.max(1);
    n < rows || n.is_multiple_of(rows)
}

/// How many rows every generation step of a run has, from what was asked: `--batch-rows`
/// (see [`asked_batch_rows`]) over `parallel` sequence slots ([`AUTO_PARALLEL`]: as many as
/// [`choose`] takes when memory is no limit). A row's logits depend on this number, so it is
/// part of every generation task's protocol, and the worker generates only in steps of it.
pub fn generation_rows(batch_rows: u32, parallel: u32, cpu_only: bool) -> u32 {
    let rows = asked_batch_rows(batch_rows, cpu_only);
    let slots = match parallel {
        AUTO_PARALLEL => (1..=MAX_AUTO_PARALLEL)
            .rev()
            .find(|&n| suits_rows(n, rows))
            .unwrap_or(1),
        n => n,
    };
    frontier_engine::ContextOptions {
        n_seq_max: slots,
        stream_per_seq: true,
        batch_rows: rows,
        ..Default::default()
    }
    .generation_batch_rows()
}

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
/// `spare_bytes` and that is a multiple of `batch_rows` (or smaller than it, where the
/// worker does not generate: see [`generation_rows`]), so that generation batches keep that
/// many rows. Not fewer for a run of fewer items: the number of
/// sequence slots shapes every generation step (see `frontier_llama`'s continuous batching),
/// so it must not depend on how many items the run has.
pub fn choose(
    kv_bytes_per_cell: u64,
    prefix: usize,
    own: usize,
    spare_bytes: u64,
    stream_per_seq: bool,
    max: u32,
    batch_rows: u32,
) -> (u32, String) {
    let budget = spare_bytes / 2;
    let n = (1..=max.max(1))
        .rev()
        .filter(|&n| suits_rows(n, batch_rows))
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
        assert_eq!(choose(kv, 600, 200, 8 << 30, true, max, 1).0, max);
        assert_eq!(choose(kv, 600, 200, 8 << 30, true, 4, 1).0, 4);
        // Room for the KV cache of about two sequences only.
        let two = context_cells(600, 200, 2, true) as u64 * kv * 2;
        assert_eq!(choose(kv, 600, 200, two, true, max, 1).0, 2);
        assert_eq!(choose(kv, 600, 200, 0, true, max, 1).0, 1, "at least one");
        assert!(choose(kv, 600, 200, two, true, max, 1)
            .1
            .contains("2 sequences"));
    }

    #[test]
    fn generating_in_batches_takes_whole_batches() {
        let kv = 30 * 3 * 128 * 2;
        let max = MAX_AUTO_PARALLEL;
        assert_eq!(choose(kv, 600, 200, 8 << 30, true, max, 4).0, 8);
        // Room for 7 sequences: one batch of 4, not 7 (which would decode in batches of 1).
        let seven = context_cells(600, 200, 7, true) as u64 * kv * 2;
        assert_eq!(choose(kv, 600, 200, seven, true, max, 4).0, 4);
        // Less than one batch: as many as fit.
        let three = context_cells(600, 200, 3, true) as u64 * kv * 2;
        assert_eq!(choose(kv, 600, 200, three, true, max, 4).0, 3);
    }

    #[test]
    fn generation_rows_from_what_was_asked() {
        // The CPU's default: 8 slots in batches of 4, whatever --parallel is a multiple of.
        assert_eq!(generation_rows(0, AUTO_PARALLEL, true), 4);
        assert_eq!(generation_rows(0, 4, true), 4);
        assert_eq!(generation_rows(0, 12, true), 4);
        // Fewer slots than rows, or rows that do not divide them: the largest divisor.
        assert_eq!(generation_rows(0, 1, true), 1);
        assert_eq!(generation_rows(0, 2, true), 2);
        assert_eq!(generation_rows(0, 6, true), 3);
        assert_eq!(generation_rows(8, AUTO_PARALLEL, true), 8);
        assert_eq!(generation_rows(2, AUTO_PARALLEL, true), 2);
        // A GPU: every slot in one batch.
        assert_eq!(generation_rows(0, AUTO_PARALLEL, false), MAX_AUTO_PARALLEL);
        assert_eq!(generation_rows(0, 3, false), 3);
        // Rows that do not divide 8: the automatic choice takes 6 slots for 3 rows.
        assert_eq!(generation_rows(3, AUTO_PARALLEL, true), 3);
        assert_eq!(generation_rows(5, AUTO_PARALLEL, true), 5);
    }

    #[test]
    fn the_automatic_choice_with_room_keeps_the_recorded_rows() {
        let kv = 30 * 3 * 128 * 2;
        for on_cpu in [true, false] {
            for asked in 0..=9 {
                let rows = asked_batch_rows(asked, on_cpu);
                let (n, _) = choose(kv, 600, 200, 64 << 30, true, MAX_AUTO_PARALLEL, rows);
                assert_eq!(
                    generation_rows(asked, n, on_cpu),
                    generation_rows(asked, AUTO_PARALLEL, on_cpu),
                    "--batch-rows {asked}, on the CPU {on_cpu}: {n} slots"
                );
            }
        }
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
