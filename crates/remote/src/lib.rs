//! A second engine: a model served over HTTP by llama-server or vLLM (any server with their
//! tokenizer endpoints and OpenAI-style completions), behind the same `Model`/`Engine`/
//! `Tokenizer` traits as the local llama.cpp engine, so tasks, templates, the store and the
//! reports do not know which one ran.

pub mod bench;
mod engine;
mod http;
mod model;
pub mod probe;
mod server;
pub mod spec;

pub use engine::RemoteEngine;
pub use model::RemoteModel;
pub use probe::{probe, Capabilities, ServerKind};
pub use spec::RemoteSpec;
