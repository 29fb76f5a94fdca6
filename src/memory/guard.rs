//! The steps around one worker under a memory cap, shared by `speed`, `eval` and `sweep`:
//! estimate the model's peak from its header, refuse a cap below its weights, drop its
//! pages from the page cache so the capped worker's reads are its own, and turn what the
//! worker did into a [`MemoryRecord`].

use std::path::Path;

use anyhow::Result;

use super::verdict::{judge, load_mode, JobEnd, MemoryRecord, Verdict};
use super::{estimate, local_weight_copies, KvType, MemoryEstimate, ModelShape, RunShape};
use frontier_engine::ModelOptions;
use frontier_gguf::ModelSummary;
use frontier_process::cap::{evict_page_cache, refusal, Mechanism, MemCap};

/// A model file's estimate for one run shape, with its weights and size.
#[derive(Debug, Clone)]
pub struct FileEstimate {
    pub weights: u64,
    pub file_size: u64,
    pub estimate: MemoryEstimate,
}

/// Estimates `path` at `n_ctx` cells shared by `n_seq` sequences.
pub fn file_estimate(
    path: &Path,
    n_ctx: u64,
    n_seq: u64,
    n_ubatch: u64,
    mmap: bool,
) -> Result<FileEstimate> {
    let header = frontier_gguf::read_file(path)?;
    let summary = ModelSummary::from_header(&header);
    let shape = ModelShape::from_header(&header, &summary);
    let run = RunShape {
        n_ctx,
        n_seq: n_seq.max(1),
        n_ubatch,
        kv_type: KvType::F16,
        mmap,
        copies: local_weight_copies(),
    };
    Ok(FileEstimate {
        weights: shape.weight_bytes,
        file_size: summary.file_size,
        estimate: estimate(&shape, &run),
    })
}

/// Makes the load options fit the mechanism: `RLIMIT_AS` counts a mapped file as address
/// space whether it is resident or not, so the weights are read instead. Returns a note
/// when it changed something.
pub fn adapt_options(cap: Option<&MemCap>, model: &mut ModelOptions) -> Option<String> {
    let cap = cap?;
    if cap.mechanism.needs_no_mmap() && model.use_mmap {
        model.use_mmap = false;
        return Some(format!(
            "mmap off: the {} cap counts mapped files as address space",
            cap.mechanism.as_str()
        ));
    }
    None
}

/// The record of a cell that is not run because its cap is below its weights.
pub fn refused(
    job: &str,
    cap: Option<&MemCap>,
    est: &FileEstimate,
    model: &ModelOptions,
) -> Option<MemoryRecord> {
    let cap = cap?;
    let why = refusal(cap, est.weights, est.estimate.total)?;
    Some(MemoryRecord {
        job: job.into(),
        limit: Some(cap.limit),
        mechanism: Some(cap.mechanism),
        mode: load_mode(model.use_mmap, model.use_mlock).into(),
        estimate: Some(est.estimate.total),
        weights: est.weights,
        peak_rss: None,
        peak_anon: None,
        peak_file: None,
        cgroup_peak: None,
        disk_read: None,
        major_faults: None,
        verdict: Verdict::Refused,
        detail: why,
        tg_ts: None,
        n_ctx: None,
        n_seq: None,
    })
}

/// Just before a capped worker starts: with a cgroup and mmap, the model's cached pages go,
/// so the pages the worker maps are charged to its cgroup as they would be on a machine with
/// only that much memory.
pub fn before_run(cap: Option<&MemCap>, path: &Path, model: &ModelOptions) {
    if let Some(cap) = cap {
        if model.use_mmap && matches!(cap.mechanism, Mechanism::CgroupV1 | Mechanism::CgroupV2) {
            evict_page_cache(path);
        }
    }
}

/// What one worker did, judged.
pub fn record(
    job: &str,
    cap: Option<&MemCap>,
    est: Option<&FileEstimate>,
    model: &ModelOptions,
    end: &JobEnd<'_>,
) -> MemoryRecord {
    let (verdict, detail) = judge(cap, end);
    let o = end.outcome;
    MemoryRecord {
        job: job.into(),
        limit: cap.map(|c| c.limit),
        mechanism: cap.map(|c| c.mechanism),
        mode: load_mode(model.use_mmap, model.use_mlock).into(),
        estimate: est.map(|e| e.estimate.total),
        weights: est.map_or(0, |e| e.weights),
        peak_rss: Some(o.peak_rss_bytes),
        peak_anon: o.sampled.anon,
        peak_file: o.sampled.file,
        cgroup_peak: o.cap.and_then(|c| c.cgroup_peak),
        disk_read: o.sampled.disk_read,
        major_faults: Some(o.major_faults),
        verdict,
        detail,
        tg_ts: end.tg_capped,
        n_ctx: None,
        n_seq: None,
    }
}
