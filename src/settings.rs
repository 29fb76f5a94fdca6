//! Settings resolved once from the command line, before any model loads (ripgrep's
//! low-level args → high-level settings, hyperfine's `Options::from_cli_arguments`): the
//! tasks and their options, the data source, the prompt formats, the engine and the
//! sandbox, shared by `eval`, `sweep` and `throughput`. Library code takes these, never
//! the clap structs.

use std::sync::Arc;

use anyhow::Result;
use frontier_core::bad_input;
use frontier_engine::{ContextOptions, ModelOptions};

use crate::cli::{BatchArgs, DataSourceArg, FormatArg, RunArgs, SandboxArgs, TaskArg, TaskArgs};
use crate::datasets::Source;
use crate::eval::runner::EngineSettings;
use crate::eval::AUTO_PARALLEL;
use crate::prompts::Format;
use crate::sandbox::{Sandbox, SandboxPolicy};
use crate::tasks::humaneval::ProgramLimits;
use crate::tasks::plan::GenerationSteps;
use crate::tasks::{build_plan, TaskFormats, TaskName, TaskOptions, TaskPlan};
use frontier_process::MemCap;

/// The tasks asked for: evaluation tasks in the order given, without duplicates, and the
/// sweep's measurements (speed, fidelity), which are not evaluation tasks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskSelection {
    pub eval: Vec<TaskName>,
    pub speed: bool,
    pub fidelity: bool,
}

pub fn parse_tasks(args: &[TaskArg]) -> TaskSelection {
    let mut out = TaskSelection::default();
    for a in args {
        let t = match a {
            TaskArg::Mmlu => TaskName::Mmlu,
            TaskArg::Gsm8k => TaskName::Gsm8k,
            TaskArg::Gsm8kCot => TaskName::Gsm8kCot,
            TaskArg::Humaneval => TaskName::Humaneval,
            TaskArg::Speed => {
                out.speed = true;
                continue;
            }
            TaskArg::Fidelity => {
                out.fidelity = true;
                continue;
            }
        };
        if !out.eval.contains(&t) {
            out.eval.push(t);
        }
    }
    out
}

/// The evaluation tasks of `eval` and `throughput`, which measure no speed or fidelity.
pub fn eval_tasks(args: &[TaskArg]) -> Result<Vec<TaskName>> {
    let selected = parse_tasks(args);
    if selected.speed {
        return Err(bad_input(
            "speed is measured by `frontier speed` (or a sweep's --tasks speed), not by eval",
        ));
    }
    if selected.fidelity {
        return Err(bad_input(
            "fidelity is measured by `frontier fidelity` (or a sweep's --tasks fidelity), not by eval",
        ));
    }
    if selected.eval.is_empty() {
        return Err(bad_input("no tasks given"));
    }
    Ok(selected.eval)
}

/// What the fidelity task compares on: the text read and hashed now.
pub fn fidelity_settings(
    args: &crate::cli::FidelityArgs,
    n_ctx: u32,
) -> Result<crate::fidelity::FidelitySettings> {
    let text = match &args.text {
        Some(path) => crate::fidelity::FidelityText::from_file(path)?,
        None => crate::fidelity::FidelityText::default_text()?,
    };
    Ok(crate::fidelity::FidelitySettings {
        text,
        n_ctx,
        n_chunks: args.chunks,
        tail: args.tail,
        base: args.base.clone(),
    })
}

/// The task options and where the data comes from; the sandbox's limits on a HumanEval
/// program are among the options, as they decide its verdicts.
pub fn task_options(args: &TaskArgs, sandbox: &SandboxArgs) -> Result<(TaskOptions, Source)> {
    let (limit, task_limits) = parse_limits(&args.limit)?;
    let timeout = sandbox.timeout;
    if !timeout.is_finite() || timeout <= 0.0 {
        return Err(bad_input(format!(
            "--sandbox-timeout {timeout}: must be a positive number of seconds"
        )));
    }
    let selected = parse_tasks(&args.tasks);
    if let Some(t) = task_limits.keys().find(|t| !selected.eval.contains(t)) {
        return Err(bad_input(format!(
            "--limit {}=…: {} is not among --tasks",
            t.as_str(),
            t.as_str()
        )));
    }
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
            humaneval_limits: ProgramLimits {
                wall_ms: (timeout * 1000.0).round().max(1.0) as u64,
                memory_bytes: sandbox.memory.0,
            },
            // Set from the engine settings (see `generation_steps`).
            generation_steps: None,
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

/// The sandbox for HumanEval, when it is among the tasks, with the limits the task options
/// hold; refuses a weak one unless allowed.
pub fn sandbox_for(
    tasks: &[TaskName],
    opts: &TaskOptions,
    args: &SandboxArgs,
) -> Result<Option<Arc<Sandbox>>> {
    if !tasks.contains(&TaskName::Humaneval) {
        return Ok(None);
    }
    let limits = opts.humaneval_limits;
    let policy = SandboxPolicy {
        memory_bytes: limits.memory_bytes,
        wall_timeout_ms: limits.wall_ms,
        cpu_seconds: limits.wall_ms.div_ceil(1000),
        allow_weak: args.allow_weak_sandbox,
        ..SandboxPolicy::default()
    };
    Ok(Some(Arc::new(
        Sandbox::new(policy).map_err(|e| bad_input(format!("{e:#}")))?,
    )))
}

/// `--limit 5`, `--limit mmlu=10,gsm8k=100`, or both.
pub fn parse_limits(
    specs: &[String],
) -> Result<(Option<usize>, std::collections::BTreeMap<TaskName, usize>)> {
    let mut global = None;
    let mut per_task = std::collections::BTreeMap::new();
    let number = |spec: &str, s: &str| -> Result<usize> {
        match s.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(bad_input(format!(
                "--limit {spec}: '{s}' is not a number of items (at least 1)"
            ))),
            Ok(n) => Ok(n),
        }
    };
    for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match spec.split_once('=') {
            Some((task, n)) => {
                let t = TaskName::parse(task).ok_or_else(|| {
                    bad_input(format!(
                        "--limit {spec}: unknown task '{task}'{}",
                        frontier_core::suggest::hint(task, TaskName::ALL.map(TaskName::as_str))
                    ))
                })?;
                if per_task.insert(t, number(spec, n)?).is_some() {
                    return Err(bad_input(format!(
                        "--limit: {} is limited twice",
                        t.as_str()
                    )));
                }
            }
            None if global.is_some() => {
                return Err(bad_input("--limit: two limits for every task"))
            }
            None => global = Some(number(spec, spec)?),
        }
    }
    Ok((global, per_task))
}

/// `--format raw,chat` / `all`, in order, for every task; none given: each task's default
/// ([`TaskFormats::defaults`]).
pub fn task_formats(args: &[FormatArg], tasks: &[TaskName]) -> TaskFormats {
    let mut out = Vec::new();
    for a in args {
        let add: &[Format] = match a {
            FormatArg::Raw => &[Format::Raw],
            FormatArg::Chat => &[Format::Chat],
            FormatArg::Tuned => &[Format::Tuned],
            FormatArg::All => &[Format::Raw, Format::Chat, Format::Tuned],
        };
        for f in add {
            if !out.contains(f) {
                out.push(*f);
            }
        }
    }
    if out.is_empty() {
        TaskFormats::defaults(tasks)
    } else {
        TaskFormats::every(tasks, &out)
    }
}

/// Model and context options from the shared run flags (context size set by the caller).
pub fn run_options(run: &RunArgs) -> Result<(ModelOptions, ContextOptions)> {
    let threads = run
        .threads
        .unwrap_or_else(frontier_core::system::default_threads);
    if threads == 0 {
        return Err(bad_input("--threads must be at least 1"));
    }
    if run.batch == 0 || run.ubatch == 0 {
        return Err(bad_input("--batch and --ubatch must be at least 1"));
    }
    let model = ModelOptions {
        gpu_layers: run.gpu_layers,
        use_mmap: !run.no_mmap,
        use_mlock: run.mlock,
    };
    let context = ContextOptions {
        n_ctx: 0,
        n_batch: run.batch,
        n_ubatch: run.ubatch.min(run.batch),
        n_seq_max: 1,
        threads,
        flash_attn: run.flash_attn,
        stream_per_seq: false,
        type_k: run.cache_type_k,
        type_v: run.cache_type_v,
        batch_rows: 0,
        no_padding: false,
    };
    Ok((model, context))
}

/// The shape of the generation steps `engine` asks for, which generation tasks record in
/// their protocols: a server batches as it likes (0 rows, not padded); steps of one row have
/// nothing to pad, with or without `--no-padding`.
pub fn generation_steps(engine: &EngineSettings) -> GenerationSteps {
    if engine.backend.remote().is_some() {
        return GenerationSteps {
            rows: 0,
            padding: false,
        };
    }
    let on_cpu = crate::eval::parallel::on_cpu(&engine.model);
    let rows =
        crate::eval::parallel::generation_rows(engine.context.batch_rows, engine.parallel, on_cpu);
    GenerationSteps {
        rows,
        padding: !engine.context.no_padding || rows <= 1,
    }
}

/// The engine settings of `eval` and `sweep`: load and context options from the run flags,
/// batching from `--parallel`/`--no-batch`/`--ctx`, adapted to the memory cap's mechanism
/// (a note says so unless `quiet`).
pub fn engine_settings(
    run: &RunArgs,
    batch: &BatchArgs,
    mem_cap: Option<&MemCap>,
    quiet: bool,
) -> Result<EngineSettings> {
    if batch.parallel == Some(0) {
        return Err(bad_input("--parallel must be at least 1"));
    }
    if batch.batch_rows == Some(0) {
        return Err(bad_input("--batch-rows must be at least 1"));
    }
    let (mut model, mut context) = run_options(run)?;
    context.n_ctx = batch.ctx.unwrap_or(0);
    context.batch_rows = batch.batch_rows.unwrap_or(0);
    context.no_padding = batch.no_padding;
    if let Some(note) = crate::memory::guard::adapt_options(mem_cap, &mut model) {
        if !quiet {
            eprintln!("note: {note}");
        }
    }
    Ok(EngineSettings {
        model,
        context,
        parallel: if batch.no_batch {
            1
        } else {
            batch.parallel.unwrap_or(AUTO_PARALLEL)
        },
        share_prefix: !batch.no_batch,
        backend: run.backend(quiet)?,
    })
}
