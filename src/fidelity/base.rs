//! The base file's next-token distributions on a text, kept on disk so that every quant
//! scored later (in this run or another sweep) compares against the same numbers without
//! running the base again. Written as the base runs, position by position (never all in
//! memory), under a `.partial` name until complete; read back the same way.
//!
//! For each scored position the file keeps the base's negative log-likelihood of the actual
//! next token and its most likely tokens with their log-probabilities, as many as it takes
//! for the tokens left out to hold at most `tail` of the probability (all of them when
//! `tail` is 0); the left-out tokens are one residual bucket (see `metrics::compare`).
//! Peaked positions need a few tokens, flat ones thousands: see the README for the sizes
//! and the gap to the exact divergence this leaves.
//!
//! Layout (little-endian): `FRFIDEL2`, n_ctx u32, n_chunks u32, n_vocab u32, tail f32, the
//! sha256 of the base's vocabulary (32 bytes: every token's text, in id order), the text's
//! tokens (n_ctx × n_chunks i32); then per chunk, per scored position (the second half of
//! the chunk: `first = n_ctx / 2` to `n_ctx - 2`, predicting the next token): nll f32,
//! count u32, count × (token u32, log-probability f32), most likely first; then the byte
//! offset of each chunk's first record (n_chunks × u64) and `FRFIDEND`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const MAGIC: &[u8; 8] = b"FRFIDEL2";
const END: &[u8; 8] = b"FRFIDEND";

/// What a base file holds, from its header.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseHeader {
    pub n_ctx: u32,
    pub n_chunks: u32,
    pub n_vocab: u32,
    /// Probability a position's left-out tokens hold at most (0: none left out).
    pub tail: f32,
    /// sha256 of the vocabulary: a quant with another one is not a quant of this model.
    pub vocab_sha: [u8; 32],
}

impl BaseHeader {
    /// The first scored position of a chunk (llama-perplexity's `n_ctx / 2`).
    pub fn first(&self) -> usize {
        self.n_ctx as usize / 2
    }

    /// Scored positions per chunk.
    pub fn scored(&self) -> usize {
        self.n_ctx as usize - 1 - self.first()
    }

    fn tokens_offset(&self) -> u64 {
        8 + 16 + 32
    }

    fn records_offset(&self) -> u64 {
        self.tokens_offset() + 4 * self.n_ctx as u64 * self.n_chunks as u64
    }
}

/// Where the base distributions of a base file (by sha256) on a text (by sha256) live.
pub fn cache_path(base_sha: &str, text_sha: &str, n_ctx: u32, n_chunks: u32, tail: f32) -> PathBuf {
    crate::paths::cache_dir().join("fidelity").join(format!(
        "{}-{}-c{n_ctx}-n{n_chunks}-t{tail:e}.bin",
        &base_sha[..base_sha.len().min(16)],
        &text_sha[..text_sha.len().min(16)]
    ))
}

/// One scored position of the base.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseRecord {
    /// −log p(actual next token).
    pub nll: f32,
    /// The most likely tokens and their log-probabilities, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// Writes a base file as the base model runs.
pub struct BaseWriter {
    out: BufWriter<File>,
    partial: PathBuf,
    path: PathBuf,
    header: BaseHeader,
    offset: u64,
    chunk_offsets: Vec<u64>,
    in_chunk: usize,
}

impl BaseWriter {
    pub fn create(path: &Path, header: BaseHeader, tokens: &[i32]) -> Result<BaseWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let mut out = BufWriter::with_capacity(
            1 << 20,
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?,
        );
        out.write_all(MAGIC)?;
        for v in [header.n_ctx, header.n_chunks, header.n_vocab] {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(&header.tail.to_le_bytes())?;
        out.write_all(&header.vocab_sha)?;
        for t in tokens {
            out.write_all(&t.to_le_bytes())?;
        }
        Ok(BaseWriter {
            out,
            partial,
            path: path.to_path_buf(),
            offset: header.records_offset(),
            header,
            chunk_offsets: Vec::new(),
            in_chunk: 0,
        })
    }

    /// The next scored position (chunks in order, each `scored()` positions).
    pub fn push(&mut self, r: &BaseRecord) -> Result<()> {
        if self.in_chunk == 0 {
            self.chunk_offsets.push(self.offset);
        }
        self.in_chunk = (self.in_chunk + 1) % self.header.scored();
        self.out.write_all(&r.nll.to_le_bytes())?;
        self.out.write_all(&(r.top.len() as u32).to_le_bytes())?;
        for &(id, lp) in &r.top {
            self.out.write_all(&id.to_le_bytes())?;
            self.out.write_all(&lp.to_le_bytes())?;
        }
        self.offset += 8 + 8 * r.top.len() as u64;
        Ok(())
    }

    /// Writes the chunk index, flushes and gives the file its final name.
    pub fn finish(mut self) -> Result<()> {
        if self.chunk_offsets.len() != self.header.n_chunks as usize || self.in_chunk != 0 {
            bail!(
                "{}: {} chunks written, {} expected",
                self.partial.display(),
                self.chunk_offsets.len(),
                self.header.n_chunks
            );
        }
        for o in &self.chunk_offsets {
            self.out.write_all(&o.to_le_bytes())?;
        }
        self.out.write_all(END)?;
        self.out.flush()?;
        drop(self.out);
        std::fs::rename(&self.partial, &self.path)?;
        Ok(())
    }
}

/// Reads a base file: the header, tokens and chunk index at once, records one at a time.
pub struct BaseReader {
    file: BufReader<File>,
    pub header: BaseHeader,
    pub tokens: Vec<i32>,
    chunk_offsets: Vec<u64>,
    /// Bytes of the file.
    pub bytes: u64,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl BaseReader {
    pub fn open(path: &Path) -> Result<BaseReader> {
        let damaged = |why: &str| {
            anyhow::anyhow!(
                "{}: {why} (a damaged base file; delete it to compute it again)",
                path.display()
            )
        };
        let mut file = BufReader::with_capacity(
            1 << 20,
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        );
        let bytes = std::fs::metadata(path)?.len();
        let mut head = [0u8; 56];
        file.read_exact(&mut head)
            .map_err(|_| damaged("too short"))?;
        if &head[..8] != MAGIC {
            bail!("{}: not a frontier base-distribution file", path.display());
        }
        let mut vocab_sha = [0u8; 32];
        vocab_sha.copy_from_slice(&head[24..56]);
        let header = BaseHeader {
            n_ctx: u32_at(&head, 8),
            n_chunks: u32_at(&head, 12),
            n_vocab: u32_at(&head, 16),
            tail: f32::from_bits(u32_at(&head, 20)),
            vocab_sha,
        };
        let index_bytes = 8 * header.n_chunks as u64 + 8;
        if bytes < header.records_offset() + index_bytes || header.n_ctx < 4 {
            return Err(damaged("too short"));
        }
        let mut raw = vec![0u8; 4 * header.n_ctx as usize * header.n_chunks as usize];
        file.read_exact(&mut raw)?;
        let tokens = raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        file.seek(SeekFrom::Start(bytes - index_bytes))?;
        let mut index = vec![0u8; index_bytes as usize];
        file.read_exact(&mut index)?;
        if &index[index.len() - 8..] != END {
            return Err(damaged("no chunk index at its end"));
        }
        let chunk_offsets: Vec<u64> = index[..index.len() - 8]
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let in_order = chunk_offsets.windows(2).all(|w| w[0] < w[1])
            && chunk_offsets.first() == Some(&header.records_offset())
            && chunk_offsets
                .last()
                .is_some_and(|&o| o < bytes - index_bytes);
        if !in_order {
            return Err(damaged("a chunk index out of order"));
        }
        Ok(BaseReader {
            file,
            header,
            tokens,
            chunk_offsets,
            bytes,
        })
    }

    /// The tokens of chunk `c`.
    pub fn chunk_tokens(&self, c: usize) -> &[i32] {
        let n = self.header.n_ctx as usize;
        &self.tokens[c * n..(c + 1) * n]
    }

    /// Positions the reader at chunk `c`'s first record.
    pub fn seek_chunk(&mut self, c: usize) -> Result<()> {
        self.file.seek(SeekFrom::Start(self.chunk_offsets[c]))?;
        Ok(())
    }

    /// The next record (after [`BaseReader::seek_chunk`], the chunk's positions in order).
    pub fn next_record(&mut self) -> Result<BaseRecord> {
        let mut head = [0u8; 8];
        self.file.read_exact(&mut head)?;
        let nll = f32::from_bits(u32_at(&head, 0));
        let n = u32_at(&head, 4);
        if n == 0 || n > self.header.n_vocab {
            bail!(
                "a base record of {n} tokens in a {}-token vocabulary",
                self.header.n_vocab
            );
        }
        let mut buf = vec![0u8; 8 * n as usize];
        self.file.read_exact(&mut buf)?;
        Ok(BaseRecord {
            nll,
            top: buf
                .chunks_exact(8)
                .map(|b| (u32_at(b, 0), f32::from_bits(u32_at(b, 4))))
                .collect(),
        })
    }

    /// Every record of chunk `c`.
    pub fn chunk(&mut self, c: usize) -> Result<Vec<BaseRecord>> {
        self.seek_chunk(c)?;
        (0..self.header.scored())
            .map(|_| self.next_record())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_file_round_trips_chunk_by_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.bin");
        let header = BaseHeader {
            n_ctx: 8,
            n_chunks: 2,
            n_vocab: 50,
            tail: 1e-4,
            vocab_sha: [7; 32],
        };
        let tokens: Vec<i32> = (0..16).collect();
        let mut w = BaseWriter::create(&path, header.clone(), &tokens).unwrap();
        // 3 scored positions a chunk (4, 5, 6), of varying lengths.
        for c in 0..2u32 {
            for p in 0..3u32 {
                let top = (0..=p).map(|k| (c + k, -0.5 * (k + 1) as f32)).collect();
                w.push(&BaseRecord {
                    nll: (c * 10 + p) as f32,
                    top,
                })
                .unwrap();
            }
        }
        assert!(!path.exists(), "not under its name until complete");
        w.finish().unwrap();
        let mut r = BaseReader::open(&path).unwrap();
        assert_eq!(r.header, header);
        assert_eq!(r.chunk_tokens(1), &tokens[8..]);
        let second = r.chunk(1).unwrap();
        assert_eq!(second.len(), 3);
        assert_eq!(second[2].nll, 12.0);
        assert_eq!(second[2].top, vec![(1, -0.5), (2, -1.0), (3, -1.5)]);
        assert_eq!(r.chunk(0).unwrap()[0].top, vec![(0, -0.5)]);
        // A cut file is refused.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(BaseReader::open(&path).is_err());
    }

    #[test]
    fn an_incomplete_base_is_not_finished() {
        let dir = tempfile::tempdir().unwrap();
        let header = BaseHeader {
            n_ctx: 8,
            n_chunks: 2,
            n_vocab: 50,
            tail: 0.0,
            vocab_sha: [0; 32],
        };
        let mut w = BaseWriter::create(&dir.path().join("b.bin"), header, &[0; 16]).unwrap();
        w.push(&BaseRecord {
            nll: 1.0,
            top: vec![(1, -0.1)],
        })
        .unwrap();
        assert!(w.finish().is_err());
    }
}
