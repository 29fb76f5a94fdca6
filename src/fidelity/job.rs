//! The `fidelity` job, in a worker process: run the base file over the text's chunks and
//! keep its distributions (role `Base`), or run a quant over the same tokens and compare
//! each scored position with the base's (role `Quant`), one event per chunk so each is
//! stored at once. Chunks are scored as llama-perplexity scores them: each chunk decoded
//! alone from an empty cache, its first token replaced by BOS when the model adds one, and
//! the positions of its second half predicting the next token.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use frontier_core::bad_input;
use frontier_engine::{ContextOptions, FlashAttn, ModelOptions, Tokenizer};
use frontier_llama::{LlamaEngine, LoadedModel, Logits};
use serde::{Deserialize, Serialize};

use super::base::{BaseHeader, BaseReader, BaseWriter};
use super::metrics::{base_record, compare, ChunkStats};

/// The job's name: `frontier worker fidelity`.
pub const JOB: &str = "fidelity";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FidelityRequest {
    pub model: PathBuf,
    pub model_options: ModelOptions,
    pub threads: u32,
    /// The base distributions: written (role `Base`) or read (role `Quant`).
    pub base_file: PathBuf,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Tokenize `text`, run the model over `n_chunks` chunks of `n_ctx` tokens and keep, for
    /// every scored position, the most likely next tokens until those left out hold at most
    /// `tail` of the probability.
    Base {
        text: String,
        n_ctx: u32,
        n_chunks: u32,
        tail: f32,
    },
    /// Compare with the base file, chunk by chunk, leaving out these (already stored).
    Quant { skip: Vec<u32> },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FidelityEvent {
    Ready {
        n_vocab: u32,
        n_chunks: u32,
        load_ms: f64,
    },
    /// The base's distributions of a chunk are written.
    Based { chunk: u32, ms: f64 },
    /// A chunk of the quant compared.
    Compared(ChunkStats),
}

/// The worker's side.
pub fn serve() -> Result<i32> {
    frontier_process::protocol::serve(run)
}

fn context(n_ctx: u32, threads: u32) -> ContextOptions {
    ContextOptions {
        n_ctx,
        // One decode a chunk, as llama-perplexity with a chunk no longer than its batch.
        n_batch: n_ctx,
        n_ubatch: 512.min(n_ctx),
        n_seq_max: 1,
        threads,
        flash_attn: FlashAttn::Auto.for_decoding(crate::build_info::cpu_only()),
        stream_per_seq: false,
        type_k: Default::default(),
        type_v: Default::default(),
        batch_rows: 0,
        no_padding: false,
    }
}

/// sha256 of the vocabulary: each token's text in id order, then whether a BOS is added.
fn vocab_sha(model: &LoadedModel) -> Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for id in 0..model.n_vocab() as i32 {
        let piece = model.detokenize(&[id])?;
        h.update((piece.len() as u32).to_le_bytes());
        h.update(piece.as_bytes());
    }
    h.update([u8::from(model.adds_bos())]);
    Ok(h.finalize().into())
}

/// Decodes one chunk from an empty cache, with logits from its first scored position on.
fn decode_chunk(
    engine: &mut LlamaEngine<'_>,
    tokens: &[i32],
    first: usize,
    bos: Option<i32>,
) -> Result<()> {
    engine.clear();
    let mut t = tokens.to_vec();
    if let Some(b) = bos {
        t[0] = b;
    }
    engine.decode(&t, 0, 0, Logits::From(first))
}

/// `f` over `0..n` on up to `threads` threads, each a contiguous share, in order.
fn in_parallel<T: Send>(n: usize, threads: u32, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let per = n.div_ceil(threads.max(1) as usize).max(1);
    std::thread::scope(|s| {
        let shares: Vec<_> = (0..n)
            .step_by(per)
            .map(|lo| {
                let f = &f;
                s.spawn(move || (lo..(lo + per).min(n)).map(f).collect::<Vec<T>>())
            })
            .collect();
        shares
            .into_iter()
            .flat_map(|h| h.join().expect("a fidelity thread panicked"))
            .collect()
    })
}

/// The logits of a decoded chunk's scored positions.
fn scored_rows<'e>(engine: &'e LlamaEngine<'_>, n: usize) -> Result<Vec<&'e [f32]>> {
    (0..n).map(|k| engine.logits(k)).collect()
}

pub fn run(r: FidelityRequest, emit: &mut dyn FnMut(FidelityEvent) -> Result<()>) -> Result<()> {
    let model = LoadedModel::load(&r.model, &r.model_options)?;
    let load_ms = model.load_time.as_secs_f64() * 1e3;
    let n_vocab = model.n_vocab() as u32;
    match r.role {
        Role::Base {
            text,
            n_ctx,
            n_chunks,
            tail,
        } => {
            let mut tokens = model.tokenize(&text, true)?;
            drop(text);
            let n_chunks = n_chunks.min((tokens.len() / n_ctx as usize) as u32);
            if n_chunks == 0 {
                return Err(bad_input(format!(
                    "the text is {} tokens long, less than one chunk of {n_ctx}",
                    tokens.len()
                )));
            }
            tokens.truncate((n_chunks * n_ctx) as usize);
            let header = BaseHeader {
                n_ctx,
                n_chunks,
                n_vocab,
                tail,
                vocab_sha: vocab_sha(&model)?,
            };
            let mut engine = model.new_engine(&context(n_ctx, r.threads))?;
            let bos = engine.bos();
            emit(FidelityEvent::Ready {
                n_vocab,
                n_chunks,
                load_ms,
            })?;
            let mut out = BaseWriter::create(&r.base_file, header.clone(), &tokens)?;
            let first = header.first();
            for c in 0..n_chunks as usize {
                let start = Instant::now();
                let chunk = &tokens[c * n_ctx as usize..(c + 1) * n_ctx as usize];
                decode_chunk(&mut engine, chunk, first, bos)?;
                let rows = scored_rows(&engine, header.scored())?;
                let records = in_parallel(rows.len(), r.threads, |k| {
                    base_record(rows[k], chunk[first + k + 1] as usize, tail as f64)
                });
                for record in &records {
                    out.push(record)?;
                }
                emit(FidelityEvent::Based {
                    chunk: c as u32,
                    ms: start.elapsed().as_secs_f64() * 1e3,
                })?;
            }
            out.finish()
        }
        Role::Quant { skip } => {
            let mut base = BaseReader::open(&r.base_file)?;
            let h = base.header.clone();
            if h.n_vocab != n_vocab {
                return Err(bad_input(format!(
                    "{}: a vocabulary of {n_vocab} tokens, the base's has {}: they are not quants of one model",
                    r.model.display(),
                    h.n_vocab
                )));
            }
            if h.vocab_sha != vocab_sha(&model)? {
                return Err(bad_input(format!(
                    "{}: its tokenizer differs from the base's (same size, other tokens): they are not quants of one model",
                    r.model.display()
                )));
            }
            let mut engine = model.new_engine(&context(h.n_ctx, r.threads))?;
            let bos = engine.bos();
            emit(FidelityEvent::Ready {
                n_vocab,
                n_chunks: h.n_chunks,
                load_ms,
            })?;
            let first = h.first();
            for c in 0..h.n_chunks {
                if skip.contains(&c) {
                    continue;
                }
                let start = Instant::now();
                let chunk = base.chunk_tokens(c as usize).to_vec();
                decode_chunk(&mut engine, &chunk, first, bos)?;
                engine.synchronize();
                let mut stats = ChunkStats {
                    chunk: c,
                    decode_ms: start.elapsed().as_secs_f64() * 1e3,
                    ..ChunkStats::default()
                };
                let records = base.chunk(c as usize)?;
                let rows = scored_rows(&engine, h.scored())?;
                let compared = in_parallel(rows.len(), r.threads, |k| {
                    compare(&records[k], rows[k], chunk[first + k + 1] as usize)
                });
                for (record, t) in records.iter().zip(&compared) {
                    stats.add(record, t);
                }
                stats.ms = start.elapsed().as_secs_f64() * 1e3;
                emit(FidelityEvent::Compared(stats))?;
            }
            Ok(())
        }
    }
}
