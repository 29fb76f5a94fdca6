//! Everything Hugging Face: list a repo's files, download them into the standard HF cache
//! (shared with `huggingface-cli`) with progress, resume and sha256 checks, tokens and gated
//! repos, offline mode, and ranged reads of remote files.

mod cache;
mod client;
mod config;
mod download;
mod error;
mod repo;
mod verify;

#[cfg(test)]
mod tests;

pub use client::Hub;
pub use config::{HubConfig, DEFAULT_ENDPOINT};
pub use repo::{RepoFile, RepoKind};
