//! Quantization fidelity: how far a quant's next-token distributions move from its base
//! file's on one text (KL divergence, top-token agreement, perplexity ratio), as
//! llama-perplexity's `--kl-divergence` measures it. The base runs once per base file and
//! text ([`ensure_base`], cached on disk by their hashes); each quant is compared chunk by
//! chunk in a worker, every chunk stored as it finishes so a killed run resumes
//! ([`score_cell`]).

pub mod base;
pub mod job;
pub mod metrics;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use frontier_core::bad_input;
use frontier_engine::ModelOptions;
use frontier_process::MemCap;
use serde::{Deserialize, Serialize};

use crate::store::Store;
use base::{cache_path, BaseReader};
use job::{FidelityEvent, FidelityRequest, Role};
use metrics::{summarize, ChunkStats, Est, Fidelity};
pub use text::FidelityText;

/// llama-perplexity's default context for `--kl-divergence`.
pub const DEFAULT_CTX: u32 = 512;
/// Chunks compared by default: 20 × 255 = 5,100 scored tokens.
pub const DEFAULT_CHUNKS: u32 = 20;
/// The probability a position's left-out base tokens may hold by default (the rest is one
/// bucket); 0 keeps them all.
pub const DEFAULT_TAIL: f32 = 1e-3;

/// What fidelity compares on, resolved from the command line.
#[derive(Debug, Clone)]
pub struct FidelitySettings {
    pub text: FidelityText,
    pub n_ctx: u32,
    pub n_chunks: u32,
    /// The probability a position's left-out base tokens may hold; 0: none left out (the
    /// exact KL divergence).
    pub tail: f32,
    /// `--base`: a quant among the model's files, or a GGUF file; default the model's
    /// highest-precision file.
    pub base: Option<String>,
}

/// The file a model's quants are compared against.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseChoice {
    pub quant: String,
    pub path: PathBuf,
    pub sha256: String,
    /// Bits per weight of the file's tensor data.
    pub bits_per_weight: f64,
    /// Set when the base was itself made from a quantized file (the test models' F16).
    pub derived_from: Option<String>,
}

/// One file a model could be compared against: its quant name and path.
pub struct Candidate<'a> {
    pub quant: &'a str,
    pub path: &'a Path,
    pub derived_from: Option<&'a str>,
}

/// Bits per weight of a GGUF file's tensor data.
pub fn bits_per_weight(path: &Path) -> Result<f64> {
    let s = frontier_gguf::read_summary(path)?;
    Ok(s.tensor_data_bytes as f64 * 8.0 / s.parameters.max(1) as f64)
}

/// The base of a model among its files: `--base QUANT` names one (case-insensitive), `--base
/// FILE` is any GGUF file, and by default the file with the most bits per weight. `None`
/// when the model has a single file and no `--base`: nothing to compare with.
pub fn choose_base(files: &[Candidate<'_>], base: Option<&str>) -> Result<Option<BaseChoice>> {
    let hashes = crate::hashing::HashCache::default_location();
    let choice = |quant: &str, path: &Path, derived: Option<&str>| -> Result<BaseChoice> {
        Ok(BaseChoice {
            quant: quant.to_string(),
            path: path.to_path_buf(),
            sha256: hashes.sha256_file(path, |_| {})?,
            bits_per_weight: bits_per_weight(path)?,
            derived_from: derived.map(str::to_string),
        })
    };
    if let Some(b) = base {
        if let Some(f) = files.iter().find(|f| f.quant.eq_ignore_ascii_case(b)) {
            return choice(f.quant, f.path, f.derived_from).map(Some);
        }
        let path = Path::new(b);
        if path.is_file() {
            let s = frontier_gguf::read_summary(path)?;
            return choice(&s.file_type, path, s.requantized_from().as_deref()).map(Some);
        }
        return Err(bad_input(format!(
            "--base {b}: neither one of the model's quants ({}) nor a file",
            files.iter().map(|f| f.quant).collect::<Vec<_>>().join(", ")
        )));
    }
    if files.len() < 2 {
        return Ok(None);
    }
    let mut best: Option<(f64, &Candidate<'_>)> = None;
    for f in files {
        let bpw = bits_per_weight(f.path)?;
        if best.is_none_or(|(b, _)| bpw > b) {
            best = Some((bpw, f));
        }
    }
    let (_, f) = best.expect("two files or more");
    choice(f.quant, f.path, f.derived_from).map(Some)
}

/// Refuses a quant that cannot be compared with the base: another vocabulary or tokenizer
/// (read from both files' headers before anything runs; the worker checks every token's text).
pub fn check_same_vocabulary(base: &Path, quant: &Path) -> Result<()> {
    let describe = |p: &Path| -> Result<(Option<u64>, Option<String>, Option<String>)> {
        let h = frontier_gguf::read_file(p)?;
        Ok((
            h.array_len("tokenizer.ggml.tokens"),
            h.get_str("tokenizer.ggml.model").map(str::to_string),
            h.get_str("tokenizer.ggml.pre").map(str::to_string),
        ))
    };
    let (b, q) = (describe(base)?, describe(quant)?);
    if b != q {
        let show = |(n, m, p): &(Option<u64>, Option<String>, Option<String>)| {
            format!(
                "{} tokens, tokenizer {} / {}",
                n.map_or("?".into(), |n| n.to_string()),
                m.as_deref().unwrap_or("?"),
                p.as_deref().unwrap_or("-")
            )
        };
        return Err(bad_input(format!(
            "{} ({}) and its base {} ({}) have different vocabularies: they are not quants of one model",
            quant.display(),
            show(&q),
            base.display(),
            show(&b)
        )));
    }
    Ok(())
}

/// What one cell's fidelity run compares, stored beside its chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityRun {
    pub base_quant: String,
    pub base_path: String,
    pub base_sha256: String,
    pub base_bits_per_weight: f64,
    pub base_derived_from: Option<String>,
    pub quant_bits_per_weight: f64,
    pub text: String,
    pub text_sha256: String,
    pub n_ctx: u32,
    /// Chunks of the text compared (at most those asked for).
    pub n_chunks: u32,
    /// The probability a position's left-out base tokens hold at most (0: exact).
    pub tail: f32,
    pub n_vocab: u32,
    /// The cell is the base itself: only its perplexity.
    pub is_base: bool,
    /// The base's perplexity on the text.
    pub ppl_base: Est,
    /// Bytes of the stored base distributions.
    pub base_file_bytes: u64,
}

impl FidelityRun {
    /// The base is not of higher precision than the quant: its "loss" is not a loss.
    pub fn warning(&self) -> Option<String> {
        (!self.is_base && self.base_bits_per_weight <= self.quant_bits_per_weight + 0.01).then(
            || {
                format!(
                "the base {} ({:.2} bits/weight) is not of higher precision than this file ({:.2})",
                self.base_quant, self.base_bits_per_weight, self.quant_bits_per_weight
            )
            },
        )
    }
}

/// The store key of a fidelity run: base file, text and shape.
pub fn key(base_sha: &str, text_sha: &str, n_ctx: u32, n_chunks: u32, tail: f32) -> String {
    format!(
        "base:{}/text:{}/c{n_ctx}/n{n_chunks}/t{tail:e}",
        &base_sha[..base_sha.len().min(16)],
        &text_sha[..text_sha.len().min(16)]
    )
}

/// How the worker runs: the model options and threads of the sweep's engine.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub model: ModelOptions,
    pub threads: u32,
    pub cap: Option<MemCap>,
    pub verbosity: u8,
}

/// The base's distributions on the text: the cached file (`false`), or computed now in a
/// worker (`true`).
pub fn ensure_base(
    settings: &FidelitySettings,
    base: &BaseChoice,
    worker: &WorkerSettings,
    on_chunk: &mut dyn FnMut(u32, u32),
) -> Result<(PathBuf, bool)> {
    let path = cache_path(
        &base.sha256,
        &settings.text.sha256,
        settings.n_ctx,
        settings.n_chunks,
        settings.tail,
    );
    if path.is_file() && BaseReader::open(&path).is_ok() {
        return Ok((path, false));
    }
    let request = FidelityRequest {
        model: base.path.clone(),
        model_options: worker.model.clone(),
        threads: worker.threads,
        base_file: path.clone(),
        role: Role::Base {
            text: settings.text.text.clone(),
            n_ctx: settings.n_ctx,
            n_chunks: settings.n_chunks,
            tail: settings.tail,
        },
    };
    let mut total = settings.n_chunks;
    let outcome = run_worker(&request, worker, |e| match e {
        FidelityEvent::Ready { n_chunks, .. } => total = n_chunks,
        FidelityEvent::Based { chunk, .. } => on_chunk(chunk + 1, total),
        FidelityEvent::Compared(_) => {}
    })?;
    if let Some(failure) = outcome {
        return Err(failure.context(format!("the base {}", base.path.display())));
    }
    BaseReader::open(&path).with_context(|| format!("the base distributions of {}", base.quant))?;
    Ok((path, true))
}

/// What [`score_cell`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CellFidelity {
    /// The base distributions file, and whether it was computed now (else reused).
    pub base_file: PathBuf,
    pub base_computed: bool,
    pub base_file_bytes: u64,
    /// The cell is the base itself.
    pub is_base: bool,
    /// Chunks compared now, and found already stored.
    pub compared: u32,
    pub already: u32,
}

/// Runs a fidelity job in a worker; `Some(error)` when the job failed (a bad input stays one).
fn run_worker(
    request: &FidelityRequest,
    worker: &WorkerSettings,
    on_event: impl FnMut(FidelityEvent),
) -> Result<Option<anyhow::Error>> {
    let command = crate::worker::command(job::JOB, worker.verbosity, worker.model.use_mmap)?;
    let outcome = frontier_process::run_worker(&command, request, worker.cap.as_ref(), on_event)?;
    Ok(match (&outcome.failure, outcome.exit.success()) {
        (Some(f), _) if f.bad_input => Some(bad_input(f.message.clone())),
        (Some(f), _) => Some(anyhow::anyhow!("{}", f.message)),
        (None, false) => Some(anyhow::anyhow!("{}", outcome.failure_summary())),
        (None, true) => None,
    })
}

/// Compares one cell's file with the base on the text, storing each chunk as it finishes
/// and skipping chunks already stored. The base's own cell stores its perplexity only.
pub fn score_cell(
    store: &Store,
    cell_id: i64,
    quant: &Path,
    settings: &FidelitySettings,
    base: &BaseChoice,
    worker: &WorkerSettings,
    on_chunk: &mut dyn FnMut(u32, u32),
) -> Result<CellFidelity> {
    check_same_vocabulary(&base.path, quant)?;
    let (base_file, base_computed) = ensure_base(settings, base, worker, on_chunk)?;
    let mut reader = BaseReader::open(&base_file)?;
    let h = reader.header.clone();
    let key = key(
        &base.sha256,
        &settings.text.sha256,
        h.n_ctx,
        settings.n_chunks,
        settings.tail,
    );
    let quant_sha = crate::hashing::HashCache::default_location().sha256_file(quant, |_| {})?;
    let run = FidelityRun {
        base_quant: base.quant.clone(),
        base_path: base.path.display().to_string(),
        base_sha256: base.sha256.clone(),
        base_bits_per_weight: base.bits_per_weight,
        base_derived_from: base.derived_from.clone(),
        quant_bits_per_weight: bits_per_weight(quant)?,
        text: settings.text.name.clone(),
        text_sha256: settings.text.sha256.clone(),
        n_ctx: h.n_ctx,
        n_chunks: h.n_chunks,
        tail: h.tail,
        n_vocab: h.n_vocab,
        is_base: quant_sha == base.sha256,
        ppl_base: base_perplexity(&mut reader)?,
        base_file_bytes: reader.bytes,
    };
    store.upsert_fidelity_run(cell_id, &key, &run)?;
    let done: Vec<ChunkStats> = store.fidelity_chunks(cell_id, &key)?;
    let skip: Vec<u32> = done.iter().map(|c| c.chunk).collect();
    let mut outcome = CellFidelity {
        base_file: base_file.clone(),
        base_computed,
        base_file_bytes: reader.bytes,
        is_base: run.is_base,
        compared: 0,
        already: skip.len() as u32,
    };
    if run.is_base || skip.len() as u32 >= h.n_chunks {
        return Ok(outcome);
    }
    let request = FidelityRequest {
        model: quant.to_path_buf(),
        model_options: worker.model.clone(),
        threads: worker.threads,
        base_file,
        role: Role::Quant { skip: skip.clone() },
    };
    let mut stored = skip.len() as u32;
    let mut error = None;
    let failure = run_worker(&request, worker, |e| {
        if let FidelityEvent::Compared(stats) = e {
            if error.is_none() {
                match store.insert_fidelity_chunk(cell_id, &key, stats.chunk, &stats) {
                    Ok(()) => {
                        stored += 1;
                        on_chunk(stored, h.n_chunks);
                    }
                    Err(e) => error = Some(e),
                }
            }
        }
    })?;
    if let Some(e) = error {
        return Err(e);
    }
    outcome.compared = stored - outcome.already;
    match failure {
        Some(f) => Err(f),
        None => Ok(outcome),
    }
}

/// The base's perplexity on the text, from the negative log-likelihoods in its file.
fn base_perplexity(reader: &mut BaseReader) -> Result<Est> {
    let mut stats = ChunkStats::default();
    // The chunks follow each other: one pass from the first.
    reader.seek_chunk(0)?;
    for _ in 0..reader.header.n_chunks as usize * reader.header.scored() {
        let r = reader.next_record()?;
        let t = metrics::TokenCompare {
            kld: 0.0,
            same_top: true,
            nll: r.nll as f64,
        };
        stats.add(&r, &t);
    }
    Ok(summarize(&[stats]).ppl_base)
}

/// A cell's stored fidelity: what was compared and the summary of the chunks done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFidelity {
    pub key: String,
    pub run: FidelityRun,
    pub chunks_done: u32,
    /// Scored tokens per second of the quant's run (decode and comparison).
    pub tokens_per_s: Option<f64>,
    pub summary: Option<Fidelity>,
}

/// Every fidelity run stored for a cell.
pub fn stored(store: &Store, cell_id: i64) -> Result<Vec<StoredFidelity>> {
    let mut out = Vec::new();
    for (key, run) in store.fidelity_runs::<FidelityRun>(cell_id)? {
        let chunks: Vec<ChunkStats> = store.fidelity_chunks(cell_id, &key)?;
        let ms: f64 = chunks.iter().map(|c| c.ms).sum();
        out.push(StoredFidelity {
            tokens_per_s: (ms > 0.0).then(|| (chunks.len() as f64 * run.n_ctx as f64) / (ms / 1e3)),
            summary: (!chunks.is_empty()).then(|| summarize(&chunks)),
            chunks_done: chunks.len() as u32,
            key,
            run,
        });
    }
    Ok(out)
}
