//! A model file as a cell of the grid: its identity (sha256, quantization) and the
//! provenance stored with every result (engine settings, llama.cpp build, machine, data).

use std::path::Path;

use anyhow::Result;
use frontier_gguf::ModelSummary;
use serde_json::json;

use crate::build_info::BuildInfo;
use crate::datasets::Source;
use crate::eval::runner::EngineSettings;
use crate::hashing::HashCache;
use crate::output::progress;
use crate::store::CellInfo;

/// A model file as a cell: its sha256 (cached), quantization and provenance.
pub fn cell_for_model(
    path: &Path,
    summary: &ModelSummary,
    formats: &crate::tasks::TaskFormats,
    engine: &EngineSettings,
    source: &Source,
    quiet: bool,
) -> Result<CellInfo> {
    let (model, context, parallel) = (&engine.model, &engine.context, engine.parallel);
    let bar = progress::bytes_bar(
        summary.file_size,
        &format!("sha256 {}", path.display()),
        quiet,
    );
    let sha = HashCache::default_location().sha256_file(path, |d| bar.set_position(d))?;
    bar.finish_and_clear();
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let build = BuildInfo::get();
    let remote = match engine.backend.remote() {
        Some(spec) => Some(frontier_remote::probe(spec)?),
        None => None,
    };
    let mut info = CellInfo {
        key: format!("{}:{}", &sha[..16], summary.file_type),
        model: name,
        model_path: path.display().to_string(),
        model_sha256: sha,
        quant: summary.file_type.clone(),
        derived_from: summary.requantized_from(),
        architecture: summary.architecture.clone(),
        n_params: summary.parameters,
        file_size: summary.file_size,
        config: json!({
            "formats": formats.0,
            "threads": context.threads,
            "n_ctx": context.n_ctx,
            "n_batch": context.n_batch,
            "n_ubatch": context.n_ubatch,
            "parallel": parallel,
            "flash_attn": context.flash_attn,
            "batch_rows": match context.batch_rows {
                0 => json!("auto"),
                n => json!(n),
            },
            "padding": !context.no_padding,
            "gpu_layers": model.gpu_layers,
            "use_mmap": model.use_mmap,
            "use_mlock": model.use_mlock,
            "backend": frontier_llama::backend_description(),
            "llama_cpp": build.llama_cpp,
            "frontier": format!("{} ({})", build.frontier_version, build.frontier_commit),
            "target_cpu": build.target_cpu,
            "machine": frontier_core::system::Machine::describe().one_line(),
            "data_source": source.describe(),
        }),
    };
    if let Some(caps) = remote {
        // Another engine's results are another cell; speed and memory are the server's.
        info.key.push_str(&format!("@{}", caps.url));
        info.model.push_str(" (remote)");
        info.config["backend"] = json!(format!("remote: {} at {}", caps.kind.name(), caps.url));
        info.config["llama_cpp"] = json!(caps.build.clone().unwrap_or_else(|| "unknown".into()));
        info.config["remote"] = json!({
            "url": caps.url,
            "server": caps.kind.name(),
            "model": caps.model,
            "build": caps.build,
            "n_ctx": caps.n_ctx,
            "slots": caps.slots,
        });
    }
    Ok(info)
}
