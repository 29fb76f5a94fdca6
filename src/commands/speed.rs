//! `frontier speed MODEL...`: each model measured in its own worker process; a table on
//! stderr, and CSV / JSON / markdown to stdout or a file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{OutputFormat, SpeedArgs};
use crate::measure::capped::{measure_one, MeasuredModel};
use crate::memory::guard;
use crate::memory::verdict::MemoryRecord;
use crate::report::memory::memory_markdown;
use crate::report::speed::{to_csv, to_json, to_markdown, SpeedRow};
use crate::settings::run_options;
use frontier_core::error::bad_input;
use frontier_engine::bench::SpeedConfig;
use frontier_gguf::ModelSummary;
use frontier_llama::backend_description;

pub fn run(args: &SpeedArgs, verbosity: u8, quiet: bool) -> Result<i32> {
    let mut config = speed_config(args)?;
    let cap = args.mem.cap()?;
    if let Some(note) = guard::adapt_options(cap.as_ref(), &mut config.model) {
        if !quiet {
            eprintln!("note: {note}");
        }
    }
    if let (Some(cap), false) = (&cap, quiet) {
        eprintln!("memory cap: {}", cap.describe());
    }
    let format = output_format(args.output, args.out.as_deref())?;
    // Validate every model before measuring any.
    let mut models = Vec::new();
    for path in &args.models {
        let header = frontier_gguf::read_file(path)?;
        models.push((path.clone(), ModelSummary::from_header(&header)));
    }

    let cpu_info = frontier_core::system::Machine::describe().cpu;
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    let mut failed = 0;
    for (path, summary) in &models {
        if !quiet {
            eprintln!("measuring {} ...", path.display());
        }
        let one = measure_one(path, &config, args.run.backend, cap.as_ref(), verbosity)?;
        if one.error.is_some() {
            failed += 1;
        }
        rows.extend(rows_for(path, summary, &config, &one, &cpu_info));
        memory.push((display_name(path), one.memory));
    }

    if !quiet {
        eprint!("{}", String::from_utf8_lossy(&to_markdown(&rows)));
        if cap.is_some() {
            let table: Vec<(String, &MemoryRecord)> = memory
                .iter()
                .flat_map(|(name, recs)| recs.iter().map(move |r| (name.clone(), r)))
                .collect();
            eprintln!();
            eprint!("{}", memory_markdown(&table));
        }
        eprintln!(
            "llama.cpp: {}; {}",
            frontier_llama::version(),
            llama_system_info_line()
        );
    }
    if let Some(format) = format {
        let bytes = match format {
            OutputFormat::Csv => to_csv(&rows)?,
            OutputFormat::Json => to_json(&rows)?,
            OutputFormat::Md => to_markdown(&rows),
        };
        match &args.out {
            Some(path) => std::fs::write(path, &bytes)
                .with_context(|| format!("writing {}", path.display()))?,
            None => std::io::stdout().lock().write_all(&bytes)?,
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn llama_system_info_line() -> String {
    frontier_llama::ensure_backend()
        .map_or_else(|e| e.to_string(), |_| frontier_llama::system_info())
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn rows_for(
    path: &Path,
    summary: &ModelSummary,
    config: &SpeedConfig,
    one: &MeasuredModel,
    cpu_info: &str,
) -> Vec<SpeedRow> {
    let mem = one.memory.first();
    let uncapped = one.memory.iter().find(|r| r.job == "speed_uncapped");
    let base = SpeedRow {
        model_filename: display_name(path),
        model_type: format!("{} {}", summary.architecture, summary.file_type),
        model_size: summary.file_size,
        model_n_params: summary.parameters,
        backend: backend_description(),
        n_threads: config.context.threads,
        n_batch: config.context.n_batch,
        n_ubatch: config.context.n_ubatch,
        n_ctx: config.context.n_ctx,
        n_gpu_layers: config.model.gpu_layers,
        flash_attn: format!("{:?}", config.context.flash_attn).to_lowercase(),
        use_mmap: config.model.use_mmap,
        use_mlock: config.model.use_mlock,
        test: "-".into(),
        n_prompt: config.n_prompt,
        n_gen: config.n_gen,
        n_depth: config.n_depth,
        avg_ts: 0.0,
        stddev_ts: 0.0,
        reps: 0,
        peak_rss_bytes: one.peak,
        load_ms: 0.0,
        ttft_ms: 0.0,
        kv_cache_bytes: None,
        llama_cpp: frontier_llama::version(),
        cpu_info: cpu_info.to_string(),
        error: one.error.clone(),
        est_peak_bytes: one.estimate,
        peak_anon_bytes: mem.and_then(|m| m.peak_anon),
        peak_file_bytes: mem.and_then(|m| m.peak_file),
        mem_limit_bytes: mem.and_then(|m| m.limit),
        mem_mechanism: mem
            .and_then(|m| m.mechanism)
            .map(|m| m.as_str().to_string()),
        mem_verdict: mem
            .filter(|m| m.limit.is_some())
            .map(|m| m.verdict.as_str().to_string()),
        uncapped_tg_ts: uncapped.and_then(|r| r.tg_ts),
    };
    let Some(m) = &one.measured else {
        return vec![base];
    };
    m.tests
        .iter()
        .map(|t| SpeedRow {
            n_ctx: m.n_ctx,
            n_batch: m.n_batch,
            n_ubatch: m.n_ubatch,
            n_threads: m.threads,
            test: t.name.clone(),
            n_prompt: t.n_prompt,
            n_gen: t.n_gen,
            n_depth: t.n_depth,
            avg_ts: t.avg_ts,
            stddev_ts: t.stddev_ts,
            reps: t.samples_ts.len(),
            load_ms: m.load_ms,
            ttft_ms: m.ttft_ms,
            kv_cache_bytes: m.kv_cache_bytes,
            ..base.clone()
        })
        .collect()
}

fn speed_config(args: &SpeedArgs) -> Result<SpeedConfig> {
    if args.reps == 0 {
        return Err(bad_input("-r/--repetitions must be at least 1"));
    }
    if args.n_prompt == 0 && args.n_gen == 0 {
        return Err(bad_input("nothing to measure: -p and -n are both 0"));
    }
    let (model, mut context) = run_options(&args.run)?;
    let longest = args.n_depth + args.n_prompt.max(args.n_gen);
    context.n_ctx = match args.ctx {
        Some(c) if c < longest => {
            return Err(bad_input(format!(
                "--ctx {c} is smaller than the longest test ({longest} tokens, depth included)"
            )))
        }
        Some(c) => c,
        None => (args.n_depth + args.n_prompt + args.n_gen).max(1),
    };
    Ok(SpeedConfig {
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        n_depth: args.n_depth,
        reps: args.reps,
        model,
        context,
    })
}

/// `--output`, or the extension of `--out`.
fn output_format(
    explicit: Option<OutputFormat>,
    out: Option<&Path>,
) -> Result<Option<OutputFormat>> {
    if explicit.is_some() {
        return Ok(explicit);
    }
    let Some(path) = out else { return Ok(None) };
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(Some(OutputFormat::Csv)),
        Some("json") => Ok(Some(OutputFormat::Json)),
        Some("md") => Ok(Some(OutputFormat::Md)),
        _ => Err(bad_input(format!(
            "{}: cannot tell the format from the extension; add --output csv|json|md",
            path.display()
        ))),
    }
}
