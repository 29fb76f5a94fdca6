//! Peak memory of running a GGUF model, predicted from its header alone: the weights (the
//! mapped file, or loaded into anonymous memory), the copies llama.cpp's CPU backend makes
//! of some weights in its AMX / repacked layouts, the KV cache, the compute and output
//! buffers, and the runtime's own memory. Each part is shown, with the arithmetic.
//!
//! The parts follow llama.cpp's own allocations (the buffer sizes it logs); the resident
//! share of the compute buffer and the runtime overhead are calibrated on measurements of
//! prompt processing (a full micro-batch) on the test models; see `frontier plan --explain`.

use serde::{Deserialize, Serialize};

use frontier_gguf::{GgufHeader, ModelSummary};

const MIB: f64 = 1024.0 * 1024.0;

/// What the CPU backend of this build does with weights: AMX copies (Intel AMX builds),
/// repacked copies (which types depends on the CPU: ggml-cpu's repack.cpp), or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightCopies {
    Amx,
    /// x86 with AVX2: Q4_0, Q4_K, IQ4_NL and MXFP4 matrices.
    Repack,
    /// x86 with AVX-512: those and Q2_K.
    RepackAvx512,
    /// ARM with dot products: Q4_0, Q4_K, Q5_K, Q6_K, Q8_0, IQ4_NL and MXFP4.
    RepackArm,
    None,
}

impl WeightCopies {
    /// From llama.cpp's `llama_print_system_info()` of this build on this CPU.
    pub fn from_system_info(info: &str) -> WeightCopies {
        let has = |feature: &str| info.contains(&format!("{feature} = 1"));
        if has("AMX_INT8") {
            WeightCopies::Amx
        } else if !has("REPACK") {
            WeightCopies::None
        } else if has("AVX512") {
            WeightCopies::RepackAvx512
        } else if has("AVX2") {
            WeightCopies::Repack
        } else if has("NEON") && has("DOTPROD") {
            WeightCopies::RepackArm
        } else {
            WeightCopies::None
        }
    }

    /// Whether this CPU's repack code copies a matrix of this ggml type with `rows` rows.
    fn repacks(self, ggml_type: u32, rows: u64) -> bool {
        let x86 = matches!(ggml_type, 2 | 12 | 20 | 39) && rows.is_multiple_of(8);
        match self {
            WeightCopies::Repack => x86,
            WeightCopies::RepackAvx512 => x86 || (ggml_type == 10 && rows.is_multiple_of(8)),
            WeightCopies::RepackArm => match ggml_type {
                2 | 8 | 20 | 39 => rows.is_multiple_of(4),
                12..=14 => rows.is_multiple_of(8),
                _ => false,
            },
            WeightCopies::Amx | WeightCopies::None => false,
        }
    }
}

/// KV cache element type: llama.cpp's names (`f16`, `q8_0`, ...).
pub use frontier_engine::CacheType as KvType;

/// How the model will be run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunShape {
    pub n_ctx: u64,
    /// Sequences evaluated together (they share one unified KV cache of `n_ctx` cells).
    pub n_seq: u64,
    pub n_ubatch: u64,
    pub kv_type: KvType,
    /// Weights memory-mapped (file-backed pages) or read into anonymous memory.
    pub mmap: bool,
    pub copies: WeightCopies,
}

/// The model's shape, from a GGUF header or (without one) from catalog data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub n_layer: u64,
    pub n_embd: u64,
    pub n_ff: u64,
    pub n_vocab: u64,
    /// K and V elements per cell per layer: n_head_kv × (key_length + value_length).
    pub kv_per_cell_layer: u64,
    /// Bytes of tensor data in the file.
    pub weight_bytes: u64,
    /// Bytes of the weights' AMX copies (when the build makes them).
    pub amx_copy_bytes: u64,
    /// Bytes of the source tensors of those copies that nothing else needs: with mmap off
    /// llama.cpp loads them straight into the copy's layout and never keeps the source.
    pub amx_source_bytes: u64,
    /// The repacked copies (same bytes as their sources) on x86 AVX2, x86 AVX-512 and ARM.
    #[serde(default)]
    pub repack: [CopyBytes; 3],
    /// Two attention masks (sliding window and global), as gemma-2/3.
    pub sliding_window: bool,
}

/// Bytes a CPU's weight copies take and those of their sources nothing else needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyBytes {
    pub bytes: u64,
    pub source_bytes: u64,
}

/// The repack variants, in the order of [`ModelShape::repack`].
const REPACKS: [WeightCopies; 3] = [
    WeightCopies::Repack,
    WeightCopies::RepackAvx512,
    WeightCopies::RepackArm,
];

/// Each part of the estimate, in bytes, and the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    pub weights_mapped: u64,
    pub weights_anonymous: u64,
    pub weight_copies: u64,
    pub kv_cache: u64,
    pub compute_allocated: u64,
    pub compute_resident: u64,
    pub output_buffer: u64,
    pub runtime: u64,
    /// Expected peak resident memory.
    pub total: u64,
    /// The arithmetic, one line per part.
    pub explain: Vec<String>,
}

/// Resident runtime memory before any model: the binary, libraries, allocator.
const RUNTIME_BASE: f64 = 24.0 * MIB;
/// llama.cpp's vocabulary structures per token (text, scores, maps).
const VOCAB_BYTES_PER_TOKEN: f64 = 110.0;

impl ModelShape {
    pub fn from_header(h: &GgufHeader, s: &ModelSummary) -> ModelShape {
        let n_layer = s.block_count.unwrap_or(0);
        let n_embd = s.embedding_length.unwrap_or(0);
        let n_head = s.head_count.unwrap_or(1).max(1);
        let head_dim = if n_embd > 0 { n_embd / n_head } else { 0 };
        let k = s.key_length.unwrap_or(head_dim);
        let v = s.value_length.unwrap_or(head_dim);
        let n_head_kv = s.head_count_kv.unwrap_or(n_head);
        let arch = &s.architecture;
        let n_ff = h
            .get_u64(&format!("{arch}.feed_forward_length"))
            .or_else(|| match h.get(&format!("{arch}.feed_forward_length")) {
                Some(frontier_gguf::Value::Array(a)) => {
                    a.values.iter().filter_map(|v| v.as_u64()).max()
                }
                _ => None,
            })
            .unwrap_or(4 * n_embd);
        let tied = !h.tensors.iter().any(|t| t.name == "output.weight");
        let copies = weight_copies(h, tied);
        ModelShape {
            n_layer,
            n_embd,
            n_ff,
            n_vocab: s.vocab_size.unwrap_or(0),
            kv_per_cell_layer: n_head_kv * (k + v),
            weight_bytes: h.data_bytes(),
            amx_copy_bytes: copies.amx,
            amx_source_bytes: copies.amx_source,
            repack: copies.repack,
            sliding_window: s.sliding_window.is_some(),
        }
    }
}

/// Typical bits per weight of a quantization in GGUF files (embeddings and norms included).
pub fn bits_per_weight(quant: &str) -> Option<f64> {
    Some(match quant.to_ascii_uppercase().as_str() {
        "F32" => 32.0,
        "F16" | "BF16" => 16.0,
        "Q8_0" => 8.5,
        "Q6_K" => 6.56,
        "Q5_K_M" => 5.69,
        "Q5_K_S" => 5.54,
        "Q5_0" => 5.5,
        "Q4_K_M" => 4.85,
        "Q4_K_S" => 4.58,
        "Q4_1" => 5.0,
        "Q4_0" => 4.55,
        "Q3_K_M" => 3.91,
        "Q2_K" => 3.0,
        "IQ4_XS" => 4.25,
        _ => return None,
    })
}

impl ModelShape {
    /// The shape from catalog numbers and a quant name, when no GGUF header is at hand:
    /// weights from the typical bits per weight, weight copies approximated per quant.
    pub fn from_catalog(c: &crate::catalog::CatalogShape, quant: &str) -> Option<ModelShape> {
        let weight_bytes = (c.n_params as f64 * bits_per_weight(quant)? / 8.0) as u64;
        let embeddings = (c.n_vocab * c.n_embd) as f64;
        let q = quant.to_ascii_uppercase();
        let aligned = c.n_embd.is_multiple_of(256) && c.n_ff.is_multiple_of(256);
        let amx = match q.as_str() {
            "F16" if c.tied => weight_bytes as f64,
            "F16" => weight_bytes as f64 - embeddings * 2.0,
            "Q8_0" => weight_bytes as f64 * 38.0 / 34.0,
            "Q4_0" | "Q4_1" => weight_bytes as f64,
            _ if q.starts_with("Q4_K") || q.starts_with("Q5_K") || q == "Q6_K" => {
                // K-quants need rows of 256; otherwise llama.cpp's quantizer fell back to
                // other types for most tensors, which AMX does not copy.
                weight_bytes as f64 * if aligned { 1.02 } else { 0.5 }
            }
            _ => 0.0,
        };
        let w = weight_bytes as f64;
        let k_share = if aligned { 0.8 } else { 0.0 };
        // x86 AVX2, x86 AVX-512, ARM.
        let repack: [f64; 3] = match q.as_str() {
            "Q4_0" => [w, w, w],
            "Q8_0" => [0.0, 0.0, w],
            "Q2_K" => [0.0, w * k_share, 0.0],
            _ if q.starts_with("Q4_K") => [w * k_share, w * k_share, w * k_share],
            _ if q.starts_with("Q5_K") || q == "Q6_K" => [0.0, 0.0, w * k_share],
            _ => [0.0; 3],
        };
        // The copies' sources: the AMX layouts add a few bytes per block; the embedding
        // table stays as it is (it is also the input).
        let amx_growth = match q.as_str() {
            "Q8_0" => 38.0 / 34.0,
            _ if q.starts_with("Q4_K") => 148.0 / 144.0,
            _ => 1.0,
        };
        let input_embeddings = embeddings * bits_per_weight(quant)? / 8.0;
        let amx_source = (amx / amx_growth - if c.tied { input_embeddings } else { 0.0 }).max(0.0);
        Some(ModelShape {
            n_layer: c.n_layer,
            n_embd: c.n_embd,
            n_ff: c.n_ff,
            n_vocab: c.n_vocab,
            kv_per_cell_layer: c.n_head_kv * 2 * c.head_dim,
            weight_bytes,
            amx_copy_bytes: amx as u64,
            amx_source_bytes: amx_source as u64,
            repack: repack.map(|b| CopyBytes {
                bytes: b as u64,
                source_bytes: b as u64,
            }),
            sliding_window: c.sliding_window,
        })
    }
}

/// The copies llama.cpp's CPU backend makes of matrix weights, and their sources.
#[derive(Debug, Default)]
struct Copies {
    amx: u64,
    amx_source: u64,
    repack: [CopyBytes; 3],
}

/// Bytes of the copies llama.cpp's CPU backend makes of matrix weights: in AMX layouts
/// (ggml-cpu/amx: row size per block plus compensation terms) and in repacked layouts
/// (same bytes as the source, for the types the repack code handles). A tied embedding
/// table is copied for the output but kept as the input, so it is no copy's lone source.
fn weight_copies(h: &GgufHeader, tied: bool) -> Copies {
    let mut c = Copies::default();
    for t in &h.tensors {
        if t.dims.len() < 2 {
            continue;
        }
        // The embedding table is only gathered from, unless it doubles as the output.
        if t.name == "token_embd.weight" && !tied {
            continue;
        }
        let (k, n) = (t.dims[0], t.dims[1]);
        // AMX: block bytes (+4 for Q8_0, Q4_K, Q5_K compensation, +2 for IQ4_XS), rows
        // of out-features a multiple of 32, in-features aligned to the block.
        let amx_block: Option<(u64, u64)> = match t.ggml_type {
            2 => Some((32, 18)),    // Q4_0
            3 => Some((32, 20)),    // Q4_1
            8 => Some((32, 38)),    // Q8_0
            12 => Some((256, 148)), // Q4_K
            13 => Some((256, 180)), // Q5_K
            14 => Some((256, 210)), // Q6_K
            23 => Some((256, 138)), // IQ4_XS
            1 => Some((16, 32)),    // F16, unpacked
            _ => None,
        };
        if let Some((blk, bytes)) = amx_block {
            if k % blk == 0 && n % 32 == 0 {
                c.amx += n * (k / blk) * bytes;
                if t.name != "token_embd.weight" {
                    c.amx_source += t.n_bytes;
                }
            }
        }
        // Repacked layouts: the same bytes, for the types each CPU's repack code handles.
        for (copy, variant) in c.repack.iter_mut().zip(REPACKS) {
            if variant.repacks(t.ggml_type, n) {
                copy.bytes += t.n_bytes;
                if t.name != "token_embd.weight" {
                    copy.source_bytes += t.n_bytes;
                }
            }
        }
    }
    c
}

/// llama.cpp pads the context to a multiple of 256 cells.
pub fn padded_ctx(n_ctx: u64) -> u64 {
    n_ctx.div_ceil(256) * 256
}

/// The estimate for one model shape and run shape.
pub fn estimate(m: &ModelShape, r: &RunShape) -> MemoryEstimate {
    let mib = |b: f64| b / MIB;
    let n_ctx = padded_ctx(r.n_ctx) as f64;
    let u = r.n_ubatch.min(n_ctx as u64) as f64;
    let mut explain = Vec::new();

    let weights = m.weight_bytes as f64;
    let (copies, sources) = match r.copies {
        WeightCopies::Amx => (m.amx_copy_bytes as f64, m.amx_source_bytes as f64),
        WeightCopies::None => (0.0, 0.0),
        repack => {
            let i = REPACKS
                .iter()
                .position(|&v| v == repack)
                .expect("a repack variant");
            (m.repack[i].bytes as f64, m.repack[i].source_bytes as f64)
        }
    };
    let (mapped, anon) = if r.mmap {
        (weights, 0.0)
    } else {
        (0.0, (weights - sources).max(0.0))
    };
    if r.mmap {
        explain.push(format!(
            "weights: {:.1} MiB of tensor data, memory-mapped (file-backed pages, all read at load)",
            mib(weights)
        ));
    } else {
        explain.push(format!(
            "weights: {:.1} MiB of tensor data read into anonymous memory, less {:.1} MiB loaded straight into the copies below",
            mib(weights),
            mib(sources)
        ));
    }
    explain.push(format!(
        "weight copies ({:?} layouts of matrix weights): {:.1} MiB",
        r.copies,
        mib(copies)
    ));

    let kv = n_ctx * m.n_layer as f64 * m.kv_per_cell_layer as f64 * r.kv_type.bytes();
    explain.push(format!(
        "KV cache: {} cells × {} layers × {} K+V elements × {} bytes = {:.1} MiB (one unified cache for {} sequences)",
        n_ctx,
        m.n_layer,
        m.kv_per_cell_layer,
        r.kv_type.bytes(),
        mib(kv),
        r.n_seq
    ));

    let masks = if m.sliding_window { 2.0 } else { 1.0 };
    let compute = u * (m.n_vocab as f64 * 4.0 + m.n_embd as f64 * 20.0) + n_ctx * u * 2.0 * masks;
    let resident = u * (m.n_embd as f64 * 20.0 + m.n_ff as f64 * 12.0)
        + if m.sliding_window {
            n_ctx * u * 2.0
        } else {
            0.0
        };
    explain.push(format!(
        "compute buffer: {u} tokens × ({} vocab × 4 + {} embd × 20) + {n_ctx} × {u} × 2 × {masks} masks = {:.1} MiB allocated; \
         resident when a full micro-batch runs: {u} × ({} embd × 20 + {} ff × 12){} = {:.1} MiB",
        m.n_vocab,
        m.n_embd,
        mib(compute),
        m.n_embd,
        m.n_ff,
        if m.sliding_window { " + one sliding-window mask" } else { "" },
        mib(resident)
    ));
    let output = m.n_vocab as f64 * 4.0 * r.n_seq as f64;
    let runtime = RUNTIME_BASE + m.n_vocab as f64 * VOCAB_BYTES_PER_TOKEN;
    explain.push(format!(
        "output buffer {:.1} MiB; runtime {:.1} MiB (binary and libraries {:.0} MiB + {} vocabulary entries × {} bytes)",
        mib(output),
        mib(runtime),
        mib(RUNTIME_BASE),
        m.n_vocab,
        VOCAB_BYTES_PER_TOKEN
    ));
    let total = mapped + anon + copies + kv + resident + output + runtime;
    explain.push(format!(
        "expected peak: {:.1} + {:.1} + {:.1} + {:.1} + {:.1} + {:.1} = {:.1} MiB",
        mib(mapped + anon),
        mib(copies),
        mib(kv),
        mib(resident),
        mib(output),
        mib(runtime),
        mib(total)
    ));
    MemoryEstimate {
        weights_mapped: mapped as u64,
        weights_anonymous: anon as u64,
        weight_copies: copies as u64,
        kv_cache: kv as u64,
        compute_allocated: compute as u64,
        compute_resident: resident as u64,
        output_buffer: output as u64,
        runtime: runtime as u64,
        total: total as u64,
        explain,
    }
}
