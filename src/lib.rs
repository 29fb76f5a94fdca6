//! frontier: measure quality, speed and memory of small language models (GGUF, llama.cpp)
//! on the user's own hardware and find the efficient frontier among them.

pub mod build_info;
pub mod catalog;
pub(crate) mod cgroup;
pub mod chat_template;
pub mod cli;
pub mod commands;
pub mod datasets;
pub mod engine;
pub mod error;
pub mod eval;
pub mod gguf;
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
pub mod quantize;
pub mod report;
pub mod sandbox;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod system;
pub mod tasks;
pub mod units;
pub mod worker;
