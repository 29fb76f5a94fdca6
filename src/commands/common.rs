//! Option resolution shared by `eval` and `sweep`: tasks and their options, the data
//! source, the sandbox, and a model file's identity as a cell.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::build_info::BuildInfo;
use crate::cli::{DataSourceArg, SandboxArgs, TaskArgs};
use crate::datasets::Source;
use crate::engine::backend_description;
use crate::error::bad_input;
use crate::eval::runner::EngineSettings;
use crate::gguf::{self, ModelSummary};
use crate::hashing::HashCache;
use crate::output::progress;
use crate::sandbox::{Sandbox, SandboxPolicy};
use crate::store::CellInfo;
use crate::tasks::{build_plan, TaskName, TaskOptions, TaskPlan};

/// The tasks asked for, in the order given, without duplicates.
pub fn parse_tasks(names: &[String]) -> Result<Vec<TaskName>> {
    let mut out = Vec::new();
    for n in names.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let t = TaskName::parse(n).ok_or_else(|| {
            bad_input(format!(
                "unknown task '{n}' (known: mmlu, gsm8k, gsm8k_cot, humaneval)"
            ))
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(bad_input("no tasks given"));
    }
    Ok(out)
}

pub fn task_options(args: &TaskArgs) -> Result<(TaskOptions, Source)> {
    let (limit, task_limits) = parse_limits(&args.limit)?;
    let source = match (&args.data_dir, args.data_source) {
        (Some(d), _) => Source::Dir(d.clone()),
        (None, Some(DataSourceArg::Hub)) => Source::Hub {
            revision: args.data_revision.clone(),
        },
        (None, _) => Source::Embedded,
    };
    Ok((
        TaskOptions {
            mmlu_shots: args.shots,
            subjects: args.subjects.clone(),
            limit,
            task_limits,
            gsm8k_shots: args.gsm8k_shots,
            gsm8k_sampling: args.gsm8k_sampling,
            gsm8k_max_tokens: args.gsm8k_max_tokens,
            humaneval_max_tokens: args.humaneval_max_tokens,
            plus: args.plus,
        },
        source,
    ))
}

/// Builds every task's plan (reading and checking the datasets) before any model runs.
pub fn build_plans(
    tasks: &[TaskName],
    opts: &TaskOptions,
    source: &Source,
) -> Result<Vec<TaskPlan>> {
    tasks.iter().map(|&t| build_plan(t, opts, source)).collect()
}

/// The sandbox for HumanEval, when it is among the tasks; refuses a weak one unless allowed.
pub fn sandbox_for(tasks: &[TaskName], args: &SandboxArgs) -> Result<Option<Arc<Sandbox>>> {
    if !tasks.contains(&TaskName::Humaneval) {
        return Ok(None);
    }
    if args.timeout.is_nan() || args.timeout <= 0.0 {
        return Err(bad_input("--sandbox-timeout must be positive"));
    }
    let memory = crate::units::parse_bytes(&args.memory)
        .map_err(|e| bad_input(format!("--sandbox-memory: {e}")))?;
    let policy = SandboxPolicy {
        memory_bytes: memory,
        wall_timeout_ms: (args.timeout * 1000.0).round() as u64,
        cpu_seconds: args.timeout.ceil() as u64,
        allow_weak: args.allow_weak_sandbox,
        ..SandboxPolicy::default()
    };
    Ok(Some(Arc::new(
        Sandbox::new(policy).map_err(|e| bad_input(format!("{e:#}")))?,
    )))
}

/// A model file as a cell: its sha256 (cached), quantization and provenance.
pub fn cell_for_model(
    path: &Path,
    summary: &ModelSummary,
    format: &str,
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
    Ok(CellInfo {
        key: format!("{}:{}:{format}", &sha[..16], summary.file_type),
        model: name,
        model_path: path.display().to_string(),
        model_sha256: sha,
        quant: summary.file_type.clone(),
        derived_from: requantized_from(summary),
        architecture: summary.architecture.clone(),
        n_params: summary.parameters,
        file_size: summary.file_size,
        config: json!({
            "format": format,
            "threads": context.threads,
            "n_ctx": context.n_ctx,
            "n_batch": context.n_batch,
            "n_ubatch": context.n_ubatch,
            "parallel": parallel,
            "flash_attn": context.flash_attn,
            "gpu_layers": model.gpu_layers,
            "use_mmap": model.use_mmap,
            "use_mlock": model.use_mlock,
            "backend": backend_description(),
            "llama_cpp": build.llama_cpp,
            "frontier": format!("{} ({})", build.frontier_version, build.frontier_commit),
            "target_cpu": build.target_cpu,
            "machine": crate::system::Machine::describe().one_line(),
            "data_source": source.describe(),
        }),
    })
}

/// Reads and validates a model file.
pub fn model_summary(path: &Path) -> Result<ModelSummary> {
    Ok(ModelSummary::from_header(&gguf::read_file(path)?))
}

/// What a file was requantized from, when `frontier quantize` made it from an already
/// quantized file: its quality is at most that source's.
pub fn requantized_from(summary: &ModelSummary) -> Option<String> {
    let from = summary.quantized_from.as_deref()?;
    let source_type = from.split_whitespace().next()?;
    (!crate::quantize::is_full_precision(source_type)).then(|| from.to_string())
}

/// `--limit 5`, `--limit mmlu=10,gsm8k=100`, or both.
pub fn parse_limits(
    specs: &[String],
) -> Result<(Option<usize>, std::collections::BTreeMap<TaskName, usize>)> {
    let mut global = None;
    let mut per_task = std::collections::BTreeMap::new();
    let number = |s: &str| -> Result<usize> {
        match s.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(bad_input(format!("--limit {s}: must be a number of items, at least 1"))),
            Ok(n) => Ok(n),
        }
    };
    for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match spec.split_once('=') {
            Some((task, n)) => {
                let t = TaskName::parse(task)
                    .ok_or_else(|| bad_input(format!("--limit {spec}: unknown task '{task}'")))?;
                per_task.insert(t, number(n)?);
            }
            None => global = Some(number(spec)?),
        }
    }
    Ok((global, per_task))
}
