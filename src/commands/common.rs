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
    formats: &[crate::prompts::Format],
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
        key: format!("{}:{}", &sha[..16], summary.file_type),
        model: name,
        model_path: path.display().to_string(),
        model_sha256: sha,
        quant: summary.file_type.clone(),
        derived_from: requantized_from(summary),
        architecture: summary.architecture.clone(),
        n_params: summary.parameters,
        file_size: summary.file_size,
        config: json!({
            "formats": formats,
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
            Ok(0) | Err(_) => Err(bad_input(format!(
                "--limit {s}: must be a number of items, at least 1"
            ))),
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

/// `--format raw,chat` / `all` in order, without duplicates.
pub fn parse_formats(specs: &[String]) -> Result<Vec<crate::prompts::Format>> {
    use crate::prompts::Format;
    let mut out = Vec::new();
    for s in specs
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
    {
        let add: Vec<Format> = match s.as_str() {
            "raw" => vec![Format::Raw],
            "chat" => vec![Format::Chat],
            "tuned" => vec![Format::Tuned],
            "all" => vec![Format::Raw, Format::Chat, Format::Tuned],
            other => {
                return Err(bad_input(format!(
                    "unknown format '{other}' (raw, chat, tuned, all)"
                )))
            }
        };
        for f in add {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    if out.is_empty() {
        out.push(Format::Raw);
    }
    Ok(out)
}

/// Every task's plan for one model in every format: the family template chosen from the
/// model's metadata (or `template`), the embedded chat template rendered with Jinja. A task
/// a format does not apply to (gsm8k_cot beyond raw) is left out.
pub fn plans_for_model(
    tasks: &[TaskName],
    opts: &TaskOptions,
    source: &Source,
    formats: &[crate::prompts::Format],
    template: Option<&str>,
    summary: &ModelSummary,
    path: &Path,
) -> Result<Vec<TaskPlan>> {
    use crate::prompts::{family_named, select_family, Format, PromptStyle};
    let family = match template {
        Some(t) => family_named(t)?,
        None => select_family(
            summary,
            &path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
        ),
    };
    let mut plans = Vec::new();
    for &format in formats {
        let style = PromptStyle::for_model(
            format,
            family.clone(),
            summary.chat_template_text.as_deref(),
            summary.bos_text.as_deref().unwrap_or_default(),
            summary.eos_text.as_deref().unwrap_or_default(),
        )
        .map_err(|e| bad_input(format!("{}: {e:#}", path.display())))?;
        for &task in tasks {
            if task == TaskName::Gsm8kCot && format != Format::Raw {
                continue;
            }
            plans.push(crate::tasks::plan::build_styled(
                task, opts, source, &style,
            )?);
        }
    }
    Ok(plans)
}
