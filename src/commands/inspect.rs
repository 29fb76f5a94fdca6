//! `frontier inspect`: what a GGUF file holds, from our own reader, plus its sha256.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::hashing::HashCache;
use crate::memory::projection::llama_projection;
use crate::memory::{estimate, local_weight_copies, MemoryEstimate, ModelShape, WeightCopies};
use crate::output::progress;
use frontier_core::units;
use frontier_gguf::ModelSummary;
use frontier_llama::projection::LlamaProjection;

#[derive(Debug, Serialize)]
struct Inspection {
    path: PathBuf,
    #[serde(flatten)]
    summary: ModelSummary,
    sha256: Option<String>,
    /// Peak memory estimates at the requested context sizes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    memory: Vec<ContextMemory>,
}

#[derive(Debug, Serialize)]
struct ContextMemory {
    n_ctx: u64,
    estimate: MemoryEstimate,
    /// llama.cpp's own projection (`--llama-projection`).
    #[serde(skip_serializing_if = "Option::is_none")]
    llama: Option<LlamaProjection>,
}

pub fn run(args: &InspectArgs, quiet: bool) -> Result<i32> {
    let cache = HashCache::default_location();
    let mut found = Vec::new();
    let mut code = 0;
    for spec in &args.files {
        let one = crate::sweep::model_file(spec, quiet)
            .and_then(|path| inspect_one(&path, &cache, args, quiet));
        match one {
            Ok(i) => found.push(i),
            Err(e) => {
                eprintln!("error: {e:#}");
                code = code.max(frontier_core::error::exit_code(&e));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = match found.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            many => serde_json::to_string_pretty(many)?,
        };
        writeln!(out, "{text}")?;
    } else {
        for (i, f) in found.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            out.write_all(render_text(f).as_bytes())?;
            for ContextMemory {
                n_ctx,
                estimate: e,
                llama,
            } in &f.memory
            {
                writeln!(
                    out,
                    "{:<15} {} at ctx {n_ctx} (weights {}, copies {}, KV {}, compute {}, runtime {})",
                    "memory:",
                    units::bytes(e.total),
                    units::bytes(e.weights_mapped + e.weights_anonymous),
                    units::bytes(e.weight_copies),
                    units::bytes(e.kv_cache),
                    units::bytes(e.compute_resident),
                    units::bytes(e.runtime)
                )?;
                if args.explain {
                    for line in &e.explain {
                        writeln!(out, "                  {line}")?;
                    }
                }
                if let Some(p) = llama {
                    let mb = |b: Option<u64>| b.map_or("-".into(), units::bytes);
                    let other: Vec<String> = p
                        .other
                        .iter()
                        .map(|(name, b)| format!("; not in its total: {name} {}", units::bytes(*b)))
                        .collect();
                    writeln!(
                        out,
                        "{:<15} {} at ctx {n_ctx} projected by llama.cpp (host: model {}, context {}, compute {}{})",
                        "",
                        mb(p.total),
                        mb(p.model),
                        mb(p.context),
                        mb(p.compute),
                        other.concat()
                    )?;
                }
            }
        }
    }
    Ok(code)
}

fn inspect_one(
    path: &Path,
    cache: &HashCache,
    args: &InspectArgs,
    quiet: bool,
) -> Result<Inspection> {
    let hash = !args.no_hash;
    let header = frontier_gguf::read_file(path)?;
    let summary = ModelSummary::from_header(&header);
    let shape = ModelShape::from_header(&header, &summary);
    let copies = if args.ctx.is_empty() {
        WeightCopies::None
    } else {
        local_weight_copies()
    };
    let memory = args
        .ctx
        .iter()
        .map(|&n_ctx| -> Result<ContextMemory> {
            let run = args.estimate.run_shape(n_ctx, copies);
            let llama = if args.llama_projection {
                Some(llama_projection(
                    path,
                    n_ctx as u32,
                    run.n_seq as u32,
                    run.n_ubatch as u32,
                    run.mmap,
                )?)
            } else {
                None
            };
            Ok(ContextMemory {
                n_ctx,
                estimate: estimate(&shape, &run),
                llama,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let sha256 = if hash {
        let bar = progress::bytes_bar(
            summary.file_size,
            &format!("sha256 {}", path.display()),
            quiet,
        );
        let digest = cache.sha256_file(path, |done| bar.set_position(done))?;
        bar.finish_and_clear();
        Some(digest)
    } else {
        None
    };
    Ok(Inspection {
        path: path.to_path_buf(),
        summary,
        sha256,
        memory,
    })
}

fn render_text(i: &Inspection) -> String {
    let s = &i.summary;
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let types: Vec<String> = s
        .tensor_types
        .iter()
        .map(|t| format!("{} {}", t.ggml_type, t.tensors))
        .collect();
    let mut lines = vec![
        ("file", i.path.display().to_string()),
        ("architecture", s.architecture.clone()),
        ("name", s.name.clone().unwrap_or_else(|| "-".into())),
        (
            "parameters",
            format!("{} ({})", units::params_short(s.parameters), s.parameters),
        ),
        (
            "file type",
            format!(
                "{}{}",
                s.file_type,
                if s.file_type_guessed {
                    " (guessed from tensors)"
                } else {
                    ""
                }
            ),
        ),
        (
            "tensors",
            format!("{} ({})", s.tensor_count, types.join(", ")),
        ),
        ("context length", opt(s.context_length)),
        ("vocab size", opt(s.vocab_size)),
        (
            "layers",
            format!(
                "{}, embedding {}, heads {} (kv {})",
                opt(s.block_count),
                opt(s.embedding_length),
                opt(s.head_count),
                opt(s.head_count_kv)
            ),
        ),
        (
            "chat template",
            match &s.chat_template {
                Some(t) => format!("{} ({} bytes, sha256 {}…)", t.family, t.bytes, t.sha256_16),
                None => "none embedded".into(),
            },
        ),
        (
            "file size",
            format!("{} ({} bytes)", units::bytes(s.file_size), s.file_size),
        ),
        (
            "quantized from",
            s.quantized_from.clone().unwrap_or_else(|| "-".into()),
        ),
        ("gguf version", s.gguf_version.to_string()),
    ];
    if let Some(h) = &i.sha256 {
        lines.push(("sha256", h.clone()));
    }
    lines
        .into_iter()
        .map(|(k, v)| format!("{:<15} {v}\n", format!("{k}:")))
        .collect()
}
