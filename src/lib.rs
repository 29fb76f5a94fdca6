//! frontier: measure quality, speed and memory of small language models (GGUF, llama.cpp)
//! on the user's own hardware and find the efficient frontier among them.

pub mod build_info;
pub mod chat_template;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod hashing;
pub mod logging;
pub mod measure;
pub mod output;
pub mod paths;
pub mod quantize;
pub mod report;
pub mod stats;
pub mod system;
pub mod units;
pub mod worker;
