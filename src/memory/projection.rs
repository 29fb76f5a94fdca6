//! The `projection` job: llama.cpp's own memory projection for a local model, asked of a
//! worker process (the fit reports on stderr, so it runs where its stderr can be read).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use frontier_llama::projection::{parse_projection, run_fit, LlamaProjection};
use serde::{Deserialize, Serialize};

/// The job's name: `frontier worker projection`.
pub const JOB: &str = "projection";

/// Project this model at this run shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProjectionRequest {
    pub model: PathBuf,
    pub n_ctx: u32,
    pub n_seq: u32,
    pub n_ubatch: u32,
    pub mmap: bool,
}

/// The projection is on the worker's stderr.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionEvent {
    Projected,
}

/// The worker's side.
pub fn serve() -> Result<i32> {
    frontier_process::protocol::serve(|r: ProjectionRequest, emit| {
        run_fit(&r.model, r.n_ctx, r.n_seq, r.n_ubatch, r.mmap)?;
        emit(ProjectionEvent::Projected)
    })
}

/// What llama.cpp projects for `path` at `n_ctx` cells and `n_seq` sequences.
pub fn llama_projection(
    path: &Path,
    n_ctx: u32,
    n_seq: u32,
    n_ubatch: u32,
    mmap: bool,
) -> Result<LlamaProjection> {
    let request = ProjectionRequest {
        model: path.to_path_buf(),
        n_ctx,
        n_seq,
        n_ubatch,
        mmap,
    };
    let mut done = false;
    let command = crate::worker::command(JOB, 0, mmap)?;
    let outcome = frontier_process::run_worker(&command, &request, None, |e| match e {
        ProjectionEvent::Projected => done = true,
    })?;
    if let Some(f) = &outcome.failure {
        bail!("{}", f.message);
    }
    if !done {
        bail!(
            "llama.cpp's projection failed: {}",
            outcome.failure_summary()
        );
    }
    let projection = parse_projection(&outcome.stderr_tail);
    if projection.total.is_none() && projection.model.is_none() {
        bail!(
            "llama.cpp reported no projection; its last words: {}",
            outcome.stderr_tail.join(" / ")
        );
    }
    Ok(projection)
}
