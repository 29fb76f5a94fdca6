//! One model's speed test under a memory cap: refused up front when the cap is below the
//! weights; else measured without the cap (the reference for "thrashing"), then under it,
//! and judged. Without a cap, one plain measurement with its memory record.

use std::path::Path;

use anyhow::Result;

use frontier_engine::bench::{SpeedConfig, SpeedMeasurement};
use frontier_process::MemCap;

use super::speed::{SpeedRequest, SpeedRun};
use crate::backend::Backend;
use crate::memory::guard;
use crate::memory::verdict::{JobEnd, MemoryRecord, Verdict};

/// One model's speed, and its memory under the cap (if any) with the uncapped reference.
pub struct MeasuredModel {
    pub measured: Option<SpeedMeasurement>,
    pub error: Option<String>,
    pub peak: u64,
    pub estimate: Option<u64>,
    /// The capped (or only) run's record first, then the uncapped reference's.
    pub memory: Vec<MemoryRecord>,
}

/// Runs one model in a worker; a crash becomes an error string, not a lost run. Under a
/// cap the model is first measured without it, so "thrashing" can compare tokens/s; a cap
/// below the weights is refused without loading anything.
pub fn measure_one(
    path: &Path,
    config: &SpeedConfig,
    backend: Backend,
    cap: Option<&MemCap>,
    verbosity: u8,
) -> Result<MeasuredModel> {
    let est = guard::file_estimate(
        path,
        config.context.n_ctx as u64,
        1,
        config.context.n_ubatch as u64,
        config.model.use_mmap,
    )?;
    if let Some(record) = guard::refused("speed", cap, &est, &config.model) {
        eprintln!("{}: {}", path.display(), record.detail);
        return Ok(MeasuredModel {
            measured: None,
            error: Some(record.detail.clone()),
            peak: 0,
            estimate: Some(est.estimate.total),
            memory: vec![record],
        });
    }
    let mut memory = Vec::new();
    let mut uncapped_tg = None;
    if cap.is_some() {
        let free = run_speed_job(path, config, backend.clone(), None, verbosity)?;
        uncapped_tg = free.measured.as_ref().and_then(tg_ts);
        let end = free.end(&est, config, uncapped_tg, None);
        memory.push(guard::record(
            "speed_uncapped",
            None,
            Some(&est),
            &config.model,
            &end,
        ));
    }
    guard::before_run(cap, path, &config.model);
    let run = run_speed_job(path, config, backend, cap, verbosity)?;
    let capped_tg = run.measured.as_ref().and_then(tg_ts);
    let end = run.end(&est, config, capped_tg, uncapped_tg);
    memory.insert(
        0,
        guard::record("speed", cap, Some(&est), &config.model, &end),
    );
    let mut error = run.error.clone();
    if error.is_none() && !run.outcome.exit.success() {
        error = Some(run.outcome.failure_summary());
    }
    if run.measured.is_none() && error.is_none() {
        error = Some(run.outcome.failure_summary());
    }
    if cap.is_some() && memory[0].verdict != Verdict::Fits {
        error
            .get_or_insert_with(|| format!("{}: {}", memory[0].verdict.as_str(), memory[0].detail));
    }
    if let Some(e) = &error {
        eprintln!("error: {}: {e}", path.display());
    }
    Ok(MeasuredModel {
        measured: if memory[0].verdict == Verdict::OomKilled {
            None
        } else {
            run.measured
        },
        error,
        peak: run.outcome.peak_rss_bytes,
        estimate: Some(est.estimate.total),
        memory,
    })
}

/// Generation tokens/s of a measurement.
fn tg_ts(m: &SpeedMeasurement) -> Option<f64> {
    m.tests.iter().find(|t| t.n_gen > 0).map(|t| t.avg_ts)
}

impl SpeedRun {
    fn end<'a>(
        &'a self,
        est: &guard::FileEstimate,
        config: &SpeedConfig,
        tg_capped: Option<f64>,
        tg_uncapped: Option<f64>,
    ) -> JobEnd<'a> {
        JobEnd {
            outcome: &self.outcome,
            error: self.error.as_deref(),
            file_size: est.file_size,
            use_mmap: config.model.use_mmap,
            tg_capped,
            tg_uncapped,
        }
    }
}

fn run_speed_job(
    path: &Path,
    config: &SpeedConfig,
    backend: Backend,
    cap: Option<&MemCap>,
    verbosity: u8,
) -> Result<SpeedRun> {
    let request = SpeedRequest {
        model: path.to_path_buf(),
        config: config.clone(),
        backend,
    };
    super::speed::run(&request, cap, verbosity)
}
