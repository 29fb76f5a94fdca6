//! frontier's one door to llama.cpp: the only crate that depends on `llama-cpp-2` and
//! `llama-cpp-sys-2`. Everything else talks to it through the `frontier-engine` interface
//! and plain data.
//!
//! - [`LoadedModel`] / [`LlamaEngine`]: load a GGUF (validated by `frontier-gguf` first),
//!   tokenize, score continuations with shared prefixes, generate with continuous batching,
//!   stream chat replies;
//! - [`bench`]: the llama-bench equivalent (prompt and generation tokens/s);
//! - [`quantize()`], [`apply_chat_template`], [`projection`] (llama.cpp's own memory fit);
//! - llama.cpp's log routed into `tracing` ([`LOG_TARGETS`], [`last_llama_error`],
//!   [`watch_llama_lines`]), and what this build is ([`version`], [`system_info`],
//!   [`backend_description`]).

mod backend;
pub mod bench;
mod context;
mod engine;
mod generate;
mod logs;
mod model;
pub mod projection;
mod quantize;
mod score;
#[cfg(test)]
mod step_shapes;
mod stream;
mod system;
mod template;

pub use backend::{backend_description, ensure_backend};
pub use context::{context_memory_from_log, Fed, LlamaEngine, Logits};
pub use logs::{last_llama_error, watch_llama_lines, WatchGuard, LOG_TARGETS};
pub use model::LoadedModel;
pub use quantize::{progress_of, quantize};
pub use stream::StreamedReply;
pub use system::{build_commit, system_info, version};
pub use template::apply_chat_template;
