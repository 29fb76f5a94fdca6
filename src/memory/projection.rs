//! llama.cpp's own memory projection for a local model, asked of a worker process (the fit
//! reports on stderr, so it runs where its stderr can be read).

use std::path::Path;

use anyhow::{bail, Result};

use crate::engine::{parse_projection, LlamaProjection};
use crate::worker::{run_job, Event, Job};

/// What llama.cpp projects for `path` at `n_ctx` cells and `n_seq` sequences.
pub fn llama_projection(
    path: &Path,
    n_ctx: u32,
    n_seq: u32,
    n_ubatch: u32,
    mmap: bool,
) -> Result<LlamaProjection> {
    let job = Job::Projection {
        model: path.to_path_buf(),
        n_ctx,
        n_seq,
        n_ubatch,
        mmap,
    };
    let mut done = false;
    let mut error = None;
    let outcome = run_job(&job, 0, |e| match e {
        Event::Projected => done = true,
        Event::Error { message, .. } => error = Some(message),
        _ => {}
    })?;
    if let Some(e) = error {
        bail!("{e}");
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
