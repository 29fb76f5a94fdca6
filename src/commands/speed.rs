//! `frontier speed MODEL...` (llama-bench's equivalent): the grid llama-bench runs — every
//! model × parameter set (gpu layers, load mode, batch, ubatch, K and V cache types, flash
//! attention, threads, depth) × test (each `-p`, then each `-n`) — each test in its own
//! worker process, so its peak RSS is its own; a table on stderr, and CSV / JSON / JSON
//! lines / SQL / markdown to stdout or a file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{OutputFormat, SpeedArgs};
use crate::measure::capped::{measure_one, MeasuredModel};
use crate::memory::guard;
use crate::memory::verdict::MemoryRecord;
use crate::report::memory::memory_markdown;
use crate::report::speed::{to_csv, to_json, to_jsonl, to_markdown, to_sql, SpeedRow};
use frontier_core::error::bad_input;
use frontier_engine::bench::SpeedConfig;
use frontier_engine::{CacheType, ContextOptions, FlashAttn, ModelOptions};
use frontier_gguf::ModelSummary;
use frontier_llama::backend_description;

/// One parameter set of the grid (llama-bench's `cmd_params_instance` minus the test).
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    gpu_layers: Option<u32>,
    mmap: bool,
    batch: u32,
    ubatch: u32,
    type_k: CacheType,
    type_v: CacheType,
    flash_attn: FlashAttn,
    threads: u32,
    depth: u32,
}

/// One test of an instance: `pp{p}` or `tg{n}`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Test {
    n_prompt: u32,
    n_gen: u32,
}

pub fn run(args: &SpeedArgs, verbosity: u8, quiet: bool) -> Result<i32> {
    let backend = args
        .backend
        .clone()
        .with_api_key_env(args.api_key_env.as_deref())?;
    if let Some(spec) = backend.remote() {
        return remote(args, spec, quiet);
    }
    let instances = instances(args)?;
    let tests = tests(args)?;
    let warmup = if args.no_warmup { 0 } else { args.warmup };
    if args.reps == 0 {
        return Err(bad_input("-r/--repetitions must be at least 1"));
    }
    let cap = args.mem.cap()?;
    if let (Some(cap), false) = (&cap, quiet) {
        eprintln!("memory cap: {}", cap.describe());
    }
    let format = output_format(args.output, args.out.as_deref())?;
    // Every model is found and read before any is measured.
    let mut models = Vec::new();
    for spec in args.models.iter().chain(&args.model) {
        let path = crate::sweep::model_file(spec, quiet)?;
        let header = frontier_gguf::read_file(&path)?;
        models.push((path, ModelSummary::from_header(&header)));
    }
    if models.is_empty() {
        return Err(bad_input(
            "no model: give GGUF files (or -m FILE, as llama-bench)",
        ));
    }
    crate::interrupt::install();

    let cpu_info = frontier_core::system::Machine::describe().cpu;
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    let mut failed = 0;
    'grid: for (path, summary) in &models {
        'model: for inst in &instances {
            for test in &tests {
                if crate::interrupt::interrupted() {
                    break 'grid;
                }
                let mut config = speed_config(args, inst, test, warmup)?;
                if let Some(note) = guard::adapt_options(cap.as_ref(), &mut config.model) {
                    if !quiet {
                        eprintln!("note: {note}");
                    }
                }
                if !quiet {
                    eprintln!(
                        "measuring {} {} (threads {}) ...",
                        display_name(path),
                        test_name(test, inst.depth),
                        inst.threads
                    );
                }
                let test_time = now_iso();
                let one =
                    measure_one(path, &config, args.backend.clone(), cap.as_ref(), verbosity)?;
                let crashed = one.error.is_some();
                rows.extend(rows_for(
                    path, summary, inst, &config, &one, &cpu_info, &test_time,
                ));
                memory.push((display_name(path), one.memory));
                if crashed {
                    // One failed row per model: its other tests would fail the same way.
                    failed += 1;
                    if !quiet {
                        eprintln!("skipping {}'s other tests: it failed", display_name(path));
                    }
                    break 'model;
                }
            }
        }
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
            OutputFormat::Jsonl => to_jsonl(&rows)?,
            OutputFormat::Md => to_markdown(&rows),
            OutputFormat::Sql => to_sql(&rows)?,
        };
        match &args.out {
            Some(path) => std::fs::write(path, &bytes)
                .with_context(|| format!("writing {}", path.display()))?,
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()?;
            }
        }
    }
    if crate::interrupt::interrupted() {
        eprintln!("interrupted: the tests measured so far are above");
        return Ok(crate::interrupt::exit_code());
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// Every parameter set, in llama-bench's nesting order (gpu layers outermost, then load
/// mode, batch, ubatch, K type, V type, flash attention, threads, depth).
fn instances(args: &SpeedArgs) -> Result<Vec<Instance>> {
    let threads = if args.threads.is_empty() {
        vec![frontier_core::system::default_threads()]
    } else {
        args.threads.clone()
    };
    if threads.contains(&0) {
        return Err(bad_input("-t/--threads must be at least 1"));
    }
    if args.batch.contains(&0) || args.ubatch.contains(&0) {
        return Err(bad_input("--batch and --ubatch must be at least 1"));
    }
    let gpu_layers: Vec<Option<u32>> = if args.gpu_layers.is_empty() {
        vec![None]
    } else {
        args.gpu_layers.iter().copied().map(Some).collect()
    };
    let mut out = Vec::new();
    for &gpu_layers in &gpu_layers {
        let mmaps = if args.no_mmap {
            vec![false]
        } else {
            args.mmap.clone()
        };
        for &mmap in &mmaps {
            for &batch in &args.batch {
                for &ubatch in &args.ubatch {
                    for &type_k in &args.cache_type_k {
                        for &type_v in &args.cache_type_v {
                            for &flash_attn in &args.flash_attn {
                                for &threads in &threads {
                                    for &depth in &args.n_depth {
                                        out.push(Instance {
                                            gpu_layers,
                                            mmap,
                                            batch,
                                            ubatch,
                                            type_k,
                                            type_v,
                                            flash_attn,
                                            threads,
                                            depth,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The tests of each instance: every prompt size, then every generation length (0 skips).
fn tests(args: &SpeedArgs) -> Result<Vec<Test>> {
    let mut out: Vec<Test> = args
        .n_prompt
        .iter()
        .filter(|&&p| p > 0)
        .map(|&p| Test {
            n_prompt: p,
            n_gen: 0,
        })
        .collect();
    out.extend(args.n_gen.iter().filter(|&&n| n > 0).map(|&n| Test {
        n_prompt: 0,
        n_gen: n,
    }));
    if out.is_empty() {
        return Err(bad_input("nothing to measure: -p and -n are all 0"));
    }
    Ok(out)
}

fn speed_config(
    args: &SpeedArgs,
    inst: &Instance,
    test: &Test,
    warmup: u32,
) -> Result<SpeedConfig> {
    let longest = inst.depth + test.n_prompt + test.n_gen;
    let n_ctx = match args.ctx {
        Some(c) if c < longest => {
            return Err(bad_input(format!(
                "--ctx {c} is smaller than a test ({longest} tokens, depth included)"
            )))
        }
        Some(c) => c,
        None => longest.max(1),
    };
    Ok(SpeedConfig {
        n_prompt: test.n_prompt,
        n_gen: test.n_gen,
        n_depth: inst.depth,
        reps: args.reps,
        warmup,
        model: ModelOptions {
            gpu_layers: inst.gpu_layers,
            use_mmap: inst.mmap,
            use_mlock: args.mlock,
        },
        context: ContextOptions {
            n_ctx,
            n_batch: inst.batch,
            n_ubatch: inst.ubatch.min(inst.batch),
            n_seq_max: 1,
            threads: inst.threads,
            flash_attn: inst.flash_attn,
            stream_per_seq: false,
            type_k: inst.type_k,
            type_v: inst.type_v,
            batch_rows: 0,
            no_padding: false,
        },
    })
}

fn test_name(t: &Test, depth: u32) -> String {
    let base = if t.n_prompt > 0 {
        format!("pp{}", t.n_prompt)
    } else {
        format!("tg{}", t.n_gen)
    };
    if depth > 0 {
        format!("{base} @ d{depth}")
    } else {
        base
    }
}

fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    frontier_core::units::utc_timestamp(secs)
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

/// llama-bench's `load_mode` for our mmap and mlock flags.
fn load_mode(model: &ModelOptions) -> &'static str {
    match (model.use_mmap, model.use_mlock) {
        (true, false) => "mmap",
        (false, false) => "none",
        (false, true) => "mlock",
        (true, true) => "mmap+mlock",
    }
}

fn flash_attn_code(f: FlashAttn) -> i32 {
    match f {
        FlashAttn::Auto => -1,
        FlashAttn::Off => 0,
        FlashAttn::On => 1,
    }
}

fn rows_for(
    path: &Path,
    summary: &ModelSummary,
    inst: &Instance,
    config: &SpeedConfig,
    one: &MeasuredModel,
    cpu_info: &str,
    test_time: &str,
) -> Vec<SpeedRow> {
    let mem = one.memory.first();
    let uncapped = one.memory.iter().find(|r| r.job == "speed_uncapped");
    let name = test_name(
        &Test {
            n_prompt: config.n_prompt,
            n_gen: config.n_gen,
        },
        config.n_depth,
    );
    let base = SpeedRow {
        build_commit: frontier_llama::build_commit(),
        build_number: 0,
        cpu_info: cpu_info.to_string(),
        gpu_info: String::new(),
        backends: backend_description(),
        model_filename: display_name(path),
        model_type: format!("{} {}", summary.architecture, summary.file_type),
        model_size: summary.file_size,
        model_n_params: summary.parameters,
        n_batch: config.context.n_batch,
        n_ubatch: config.context.n_ubatch,
        n_threads: config.context.threads,
        cpu_mask: "0x0".into(),
        cpu_strict: false,
        poll: 50,
        type_k: inst.type_k.to_string(),
        type_v: inst.type_v.to_string(),
        n_gpu_layers: config.model.gpu_layers.map_or(-1, i64::from),
        n_cpu_moe: 0,
        split_mode: "layer".into(),
        main_gpu: 0,
        no_kv_offload: false,
        flash_attn: flash_attn_code(inst.flash_attn),
        devices: "auto".into(),
        tensor_split: "0.00".into(),
        tensor_buft_overrides: "none".into(),
        load_mode: load_mode(&config.model).into(),
        lazy_mode: "auto".into(),
        embeddings: false,
        no_op_offload: 0,
        no_host: false,
        repack: true,
        fit_target: 0,
        fit_min_ctx: 0,
        n_prompt: config.n_prompt,
        n_gen: config.n_gen,
        n_depth: config.n_depth,
        test_time: test_time.to_string(),
        avg_ns: 0,
        stddev_ns: 0,
        avg_ts: 0.0,
        stddev_ts: 0.0,
        test: name,
        n_ctx: config.context.n_ctx,
        use_mmap: config.model.use_mmap,
        use_mlock: config.model.use_mlock,
        reps: 0,
        warmup: config.warmup,
        samples_ns: Vec::new(),
        samples_ts: Vec::new(),
        peak_rss_bytes: one.peak,
        load_ms: 0.0,
        ttft_ms: None,
        kv_cache_bytes: None,
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
        llama_cpp: frontier_llama::version(),
        error: one.error.clone(),
    };
    let Some(m) = &one.measured else {
        return vec![base];
    };
    m.tests
        .iter()
        .map(|t| {
            let (avg_ns, sd_ns) = mean_sd_ns(&t.samples_ns);
            SpeedRow {
                n_threads: m.threads,
                n_ctx: m.n_ctx,
                test: t.name.clone(),
                n_prompt: t.n_prompt,
                n_gen: t.n_gen,
                n_depth: t.n_depth,
                avg_ns,
                stddev_ns: sd_ns,
                avg_ts: t.avg_ts,
                stddev_ts: t.stddev_ts,
                reps: t.samples_ts.len(),
                samples_ns: t.samples_ns.clone(),
                samples_ts: t.samples_ts.clone(),
                load_ms: m.load_ms,
                ttft_ms: (t.n_prompt > 0).then_some(m.ttft_ms),
                kv_cache_bytes: m.kv_cache_bytes,
                ..base.clone()
            }
        })
        .collect()
}

/// Mean and sample standard deviation of nanosecond timings, as llama-bench computes them.
fn mean_sd_ns(samples: &[u64]) -> (u64, u64) {
    if samples.is_empty() {
        return (0, 0);
    }
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&s| s as f64).sum::<f64>() / n;
    if samples.len() < 2 {
        return (mean as u64, 0);
    }
    let var = samples
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean as u64, var.sqrt() as u64)
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
        Some("jsonl") => Ok(Some(OutputFormat::Jsonl)),
        Some("md") => Ok(Some(OutputFormat::Md)),
        Some("sql") => Ok(Some(OutputFormat::Sql)),
        _ => Err(bad_input(format!(
            "{}: cannot tell the format from the extension; add -o csv|json|jsonl|md|sql",
            path.display()
        ))),
    }
}

/// `speed --backend openai:URL`: the server measured from outside, per concurrency.
fn remote(args: &SpeedArgs, spec: &frontier_remote::RemoteSpec, quiet: bool) -> Result<i32> {
    if args.reps == 0 {
        return Err(bad_input("-r/--repetitions must be at least 1"));
    }
    if args.concurrency.contains(&0) {
        return Err(bad_input("--concurrency must be at least 1"));
    }
    let (n_prompt, n_gen) = (
        args.n_prompt.first().copied().unwrap_or(512),
        args.n_gen.first().copied().unwrap_or(128),
    );
    if n_gen == 0 {
        return Err(bad_input(
            "-n must be above 0: a server is measured by what it generates",
        ));
    }
    if let (Some(w), false) = (spec.plain_http_warning(), quiet) {
        eprintln!("warning: {w}");
    }
    let (caps, rows) =
        frontier_remote::bench::measure(spec, n_prompt, n_gen, &args.concurrency, args.reps)?;
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.concurrency.to_string(),
                format!("pp{} + tg{}", r.n_prompt, r.n_gen),
                format!("{:.1} ± {:.1}", r.ttft_ms, r.ttft_sd_ms),
                format!("{:.1}", r.tg_ts_per_request),
                format!("{:.1}", r.tg_ts_total),
            ]
        })
        .collect();
    let md = crate::output::table::markdown(
        &[
            "requests at once",
            "test",
            "TTFT ms",
            "tg t/s per request",
            "tg t/s total",
        ],
        &[crate::output::table::Align::Right; 5],
        &table,
    );
    if !quiet {
        eprintln!(
            "{} ({}), model {}, build {}; measured from outside: TTFT is {}",
            caps.url,
            caps.kind.name(),
            caps.model,
            caps.build.as_deref().unwrap_or("unknown"),
            rows.first().map_or("", |r| r.ttft_source.as_str())
        );
        eprint!("{md}");
    }
    match args.output {
        Some(OutputFormat::Json) => {
            crate::output::print(serde_json::to_string_pretty(&rows)? + "\n")?
        }
        Some(OutputFormat::Jsonl) => {
            let mut text = String::new();
            for r in &rows {
                text.push_str(&serde_json::to_string(r)?);
                text.push('\n');
            }
            crate::output::print(text)?
        }
        Some(OutputFormat::Md) => crate::output::print(md)?,
        Some(OutputFormat::Csv) => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &rows {
                w.serialize(r)?;
            }
            crate::output::print(String::from_utf8(w.into_inner()?)?)?
        }
        Some(OutputFormat::Sql) => {
            return Err(bad_input(
                "-o sql is for llama-bench rows; use csv or json for a server",
            ))
        }
        None => {}
    }
    Ok(0)
}
