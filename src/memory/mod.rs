//! Memory: predicting a model's peak (from its GGUF header, local or read by HTTP ranges),
//! enforcing a cap on a worker (cgroup, RLIMIT_AS, or a watchdog), and judging what happened
//! under the cap.

pub mod estimate;
pub mod guard;
pub mod projection;
pub mod remote;
pub mod verdict;

pub use estimate::{estimate, KvType, MemoryEstimate, ModelShape, RunShape, WeightCopies};

/// The memory record of a model's serving footprint: one sequence at the serving context,
/// uncapped (`frontier sweep --serve-ctx`).
pub const SERVE_JOB: &str = "serve";

/// The serving context when none is given: 4096 tokens.
pub const DEFAULT_SERVE_CTX: u32 = 4096;

/// What this build does with weights on this CPU (asks llama.cpp).
pub fn local_weight_copies() -> WeightCopies {
    match frontier_llama::ensure_backend() {
        Ok(()) => WeightCopies::from_system_info(&frontier_llama::system_info()),
        Err(_) => WeightCopies::None,
    }
}
