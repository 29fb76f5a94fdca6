//! `frontier quantize SRC DST TYPE`: validate, convert through llama.cpp with progress,
//! write atomically, check the result with our reader.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::QuantizeArgs;
use crate::output::progress;
use frontier_core::error::bad_input;
use frontier_core::units;
use frontier_gguf::types::{is_full_precision, parse_quantize_target as parse_target};
use frontier_gguf::ModelSummary;
use frontier_llama::{progress_of, quantize};

pub fn run(args: &QuantizeArgs, quiet: bool) -> Result<i32> {
    let target = parse_target(&args.quant)?;
    let header = frontier_gguf::read_file(&args.src)?;
    let src = ModelSummary::from_header(&header);
    if args.dst.is_dir() {
        return Err(bad_input(format!(
            "{}: is a directory; give a file name",
            args.dst.display()
        )));
    }
    if args.dst.exists() && !args.force {
        return Err(bad_input(format!(
            "{}: already exists (use --force to overwrite)",
            args.dst.display()
        )));
    }
    if let (Ok(a), Ok(b)) = (args.src.canonicalize(), args.dst.canonicalize()) {
        if a == b {
            return Err(bad_input(format!(
                "{}: source and destination are the same file",
                args.dst.display()
            )));
        }
    }
    if !is_full_precision(&src.file_type) && !args.allow_requantize {
        return Err(bad_input(format!(
            "{}: is already quantized ({}); converting it to {} cannot restore lost precision. \
             Pass --allow-requantize to do it anyway",
            args.src.display(),
            src.file_type,
            target.name
        )));
    }
    if let Some(dir) = args.dst.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(bad_input(format!("{}: no such directory", dir.display())));
        }
    }

    let partial = args.dst.with_file_name(format!(
        ".{}.partial-{}",
        args.dst
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let bar = progress::count_bar(
        src.tensor_count as u64,
        &format!("{} → {}", src.file_type, target.name),
        quiet,
    );
    let watcher_bar = bar.clone();
    let watch = frontier_llama::watch_llama_lines(move |line| {
        if let Some((done, total)) = progress_of(line) {
            watcher_bar.set_length(total);
            watcher_bar.set_position(done);
        }
    });
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let start = Instant::now();
    // A source that was itself made from a lossy file passes that file on: it bounds the
    // quality of everything made from it (F16 from Q4_1, then Q2_K from that F16).
    let quantized_from = match src.requantized_from() {
        Some(lossy_ancestor) => lossy_ancestor,
        None => {
            let sha =
                crate::hashing::HashCache::default_location().sha256_file(&args.src, |_| {})?;
            format!(
                "{} {} sha256:{}",
                src.file_type,
                args.src
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                &sha[..16]
            )
        }
    };
    let result = quantize(
        &args.src,
        &partial,
        target,
        args.allow_requantize,
        threads,
        &quantized_from,
    );
    drop(watch);
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let written = frontier_gguf::read_file(&partial).context("checking the quantized file");
    let written = match written {
        Ok(h) => ModelSummary::from_header(&h),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &args.dst)
        .with_context(|| format!("moving the result to {}", args.dst.display()))?;
    if !quiet {
        eprintln!(
            "wrote {}: {} → {}, {} → {} in {:.1} s",
            args.dst.display(),
            src.file_type,
            written.file_type,
            units::bytes(src.file_size),
            units::bytes(written.file_size),
            start.elapsed().as_secs_f64()
        );
        if !is_full_precision(&src.file_type) {
            eprintln!(
                "note: requantized from {}: the new file has {}'s size and speed but not its quality",
                src.file_type, written.file_type
            );
        }
    }
    Ok(0)
}
