//! frontier: measure quality, speed and memory of small language models (GGUF, llama.cpp)
//! on the user's own hardware and find the efficient frontier among them.
//!
//! The workspace's crates hold what has a boundary of its own: `frontier-core` (errors,
//! units, statistics, the machine), `frontier-gguf` (our GGUF reader), `frontier-engine`
//! (the engine interface), `frontier-llama` (the only crate that touches llama.cpp) and
//! `frontier-process` (worker processes and memory caps). This crate is the tool built on them.

pub mod backend;
pub mod build_info;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod datasets;
pub mod eval;
pub mod extract;
pub mod fake;
pub mod fidelity;
pub mod hashing;
pub mod hub;
pub mod interrupt;
pub mod logging;
pub mod measure;
pub mod memory;
pub mod output;
pub mod paths;
pub mod prompts;
pub mod pyrandom;
pub mod report;
pub mod sandbox;
pub mod settings;
pub mod slurm;
pub mod store;
pub mod sweep;
pub mod tasks;
pub mod worker;
