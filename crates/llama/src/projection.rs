//! llama.cpp's own projection of a model's memory: `common_fit_params` (through
//! `LlamaModelParams::fit_params`) loads the model without allocating, builds the context,
//! and reports its breakdown (model, context and compute bytes per device and host) and the
//! total it projects. It reports them through llama.cpp's common log at trace level, which
//! prints to stderr; so the fit runs in a worker ([`run_fit`]) and the parent reads the
//! lines from the worker's stderr ([`parse_projection`]).

use std::ffi::CString;
use std::num::NonZeroU32;
use std::path::Path;

use anyhow::{Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::model::params::LlamaModelParams;
use serde::{Deserialize, Serialize};

/// llama.cpp's projection for one run shape, in bytes (it reports MiB).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlamaProjection {
    /// The breakdown's host row: model weights (and their copies), KV cache and output,
    /// compute buffers.
    pub model: Option<u64>,
    pub context: Option<u64>,
    pub compute: Option<u64>,
    /// "projected to use N MiB of host memory".
    pub total: Option<u64>,
    /// Rows of other buffer types (e.g. `AMX`, `CPU_REPACK`): listed in the breakdown but
    /// not part of the host total.
    pub other: Vec<(String, u64)>,
}

const MIB: u64 = 1024 * 1024;

/// The verbosity of llama.cpp's common log (`LOG_LEVEL_INFO` = 3 by default); the fit
/// reports at `LOG_LEVEL_TRACE` = 4.
const COMMON_LOG_LEVEL_TRACE: std::os::raw::c_int = 4;

extern "C" {
    /// A plain global of llama.cpp's common library (common/log.cpp), linked in with
    /// `common_fit_params`.
    static mut common_log_verbosity_thold: std::os::raw::c_int;
}

/// In a worker: asks llama.cpp to fit `path` at `n_ctx` cells and `n_seq` sequences, with
/// its report on stderr.
pub fn run_fit(path: &Path, n_ctx: u32, n_seq: u32, n_ubatch: u32, mmap: bool) -> Result<()> {
    crate::backend::ensure_backend()?;
    let c_path = CString::new(path.as_os_str().to_string_lossy().as_bytes())
        .context("model path holds a NUL byte")?;
    let mut cparams = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_ubatch.max(n_ctx.min(2048)))
        .with_n_ubatch(n_ubatch)
        .with_n_seq_max(n_seq.max(1))
        .with_kv_unified(true);
    let mut mparams = Box::pin(LlamaModelParams::default().with_use_mmap(mmap));
    // SAFETY: llama_max_devices has no preconditions; the verbosity is a plain int that
    // only llama.cpp's logging reads, and nothing else runs in this process now.
    let mut margins = vec![0usize; unsafe { llama_cpp_sys_2::llama_max_devices() }];
    unsafe { common_log_verbosity_thold = COMMON_LOG_LEVEL_TRACE };
    let fitted = mparams.as_mut().fit_params(
        &c_path,
        &mut cparams,
        &mut margins,
        n_ctx,
        llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR,
    );
    // The common log prints from its own thread; give it a moment to drain.
    std::thread::sleep(std::time::Duration::from_millis(200));
    match fitted {
        Ok(_) => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "llama.cpp could not project {}: {e}",
            path.display()
        )),
    }
}

/// Reads the breakdown's host row (`| - Host | self = model + context + compute |`) and the
/// "projected to use" line.
pub fn parse_projection(lines: &[String]) -> LlamaProjection {
    let mut p = LlamaProjection::default();
    for line in lines {
        if let Some(rest) = line.split("projected to use ").nth(1) {
            p.total = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .map(|m| m * MIB);
        }
        // "| - NAME | [total free] self = model + context + compute [unaccounted] |"
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(name), Some(values)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(name) = name.strip_prefix("- ") else {
            continue;
        };
        let Some((before, parts)) = values.split_once('=') else {
            continue;
        };
        let self_bytes = before
            .split_whitespace()
            .last()
            .and_then(|n| n.parse::<u64>().ok());
        let parts: Vec<u64> = parts
            .split('+')
            .filter_map(|t| t.split_whitespace().next()?.parse().ok())
            .collect();
        match (name.trim(), self_bytes, parts.as_slice()) {
            ("Host", _, &[model, context, compute]) => {
                p.model = Some(model * MIB);
                p.context = Some(context * MIB);
                p.compute = Some(compute * MIB);
            }
            (other, Some(total), _) => p.other.push((other.to_string(), total * MIB)),
            _ => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_host_row_and_the_total() {
        let lines = vec![
            "llama_memory_breakdown_print: | memory breakdown [MiB] | total   free    self   model   context   compute    unaccounted |".to_string(),
            "llama_memory_breakdown_print: |   - Host               |                  365 =   309 +      12 +      44                |".to_string(),
            "common_memory_breakdown_print: |   - AMX                |                  256 =   256 +       0 +       0                |".to_string(),
            "common_fit_params_impl: projected to use 365 MiB of host memory vs. 24000 MiB of total host memory".to_string(),
        ];
        let p = parse_projection(&lines);
        assert_eq!(p.model, Some(309 * MIB));
        assert_eq!(p.context, Some(12 * MIB));
        assert_eq!(p.compute, Some(44 * MIB));
        assert_eq!(p.total, Some(365 * MIB));
        assert_eq!(p.other, vec![("AMX".to_string(), 256 * MIB)]);
    }
}
