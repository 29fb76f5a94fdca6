//! Everything Hugging Face: list a repo's files (the whole tree, page by page, at one
//! commit), download them at that commit into the standard HF cache (shared with
//! `huggingface_hub`) with progress, resume and sha256 checks, ranged reads of remote files,
//! tokens and gated repos, rate limits, offline mode and an unreachable Hub.

mod cache;
mod client;
mod config;
mod download;
mod error;
mod http;
mod listing;
mod range;
mod repo;
mod retry;
mod saved;
mod verify;

#[cfg(test)]
mod tests;

pub use client::Hub;
pub use config::{HubConfig, DEFAULT_ENDPOINT};
pub use error::{unreachable_cause, Unreachable};
pub use listing::Listing;
pub use repo::{RepoFile, RepoKind};
