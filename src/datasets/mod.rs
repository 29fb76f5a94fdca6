//! Benchmark data: the vendored copies embedded in the binary (with manifests), folders in
//! the original layout, and loaders for MMLU, GSM8K and HumanEval(+) that name the file
//! and row of any problem.

pub mod gsm8k;
pub mod hub;
pub mod humaneval;
pub mod manifest;
pub mod mmlu;
pub mod parquet;
pub mod source;

pub use source::{content_hash, DataFile, DatasetFiles, Source};
