//! Evaluation: the worker side (tokenize, run the engine) and the parent side (plan the
//! items, skip stored ones, score responses, run generated code in the sandbox, store each
//! item at once, aggregate).

pub mod aggregate;
pub mod cell;
pub mod infer;
pub mod job;
pub mod parallel;
pub mod runner;
pub mod worker;

pub use parallel::AUTO_PARALLEL;
