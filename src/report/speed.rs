//! Speed results as rows (one per model × test), and their CSV, JSON, markdown and
//! terminal renderings. Column names follow llama-bench's CSV where they mean the same.

use anyhow::Result;
use serde::Serialize;

use crate::output::table::{markdown, Align};
use frontier_core::units;

/// One model × test, or one failed model (`test` = "-", `error` set).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpeedRow {
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub backend: String,
    pub n_threads: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub n_ctx: u32,
    pub n_gpu_layers: Option<u32>,
    pub flash_attn: String,
    pub use_mmap: bool,
    pub use_mlock: bool,
    pub test: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub reps: usize,
    pub peak_rss_bytes: u64,
    pub load_ms: f64,
    pub ttft_ms: f64,
    pub kv_cache_bytes: Option<u64>,
    pub llama_cpp: String,
    pub cpu_info: String,
    pub error: Option<String>,
    /// Expected peak from the GGUF header (`frontier plan`'s arithmetic).
    pub est_peak_bytes: Option<u64>,
    /// Peak `RssAnon` / `RssFile` of the worker, sampled every 20 ms.
    pub peak_anon_bytes: Option<u64>,
    pub peak_file_bytes: Option<u64>,
    /// `--mem-limit`, the mechanism that held it, and what happened under it.
    pub mem_limit_bytes: Option<u64>,
    pub mem_mechanism: Option<String>,
    pub mem_verdict: Option<String>,
    /// Generation tokens/s of the same test without the cap (measured just before).
    pub uncapped_tg_ts: Option<f64>,
}

pub fn to_csv(rows: &[SpeedRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    Ok(w.into_inner()?)
}

pub fn to_json(rows: &[SpeedRow]) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(rows)?;
    v.push(b'\n');
    Ok(v)
}

/// Markdown: the columns a reader compares, like llama-bench's table plus memory.
pub fn to_markdown(rows: &[SpeedRow]) -> Vec<u8> {
    let capped = rows.iter().any(|r| r.mem_limit_bytes.is_some());
    let mut headers = vec![
        "model",
        "size",
        "params",
        "backend",
        "threads",
        "test",
        "t/s",
        "peak RSS",
        "est. peak",
        "load ms",
        "ttft ms",
    ];
    use Align::{Left as L, Right as R};
    let mut align = vec![L, R, R, L, R, L, R, R, R, R, R];
    if capped {
        headers.extend(["cap", "verdict"]);
        align.extend([R, L]);
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let ts = match &r.error {
                Some(e) => format!("failed: {e}"),
                None => format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
            };
            let mut row = vec![
                format!("{} ({})", r.model_filename, r.model_type),
                units::bytes(r.model_size),
                units::params_short(r.model_n_params),
                r.backend.clone(),
                r.n_threads.to_string(),
                r.test.clone(),
                ts,
                if r.peak_rss_bytes > 0 {
                    units::bytes(r.peak_rss_bytes)
                } else {
                    "-".into()
                },
                r.est_peak_bytes.map_or("-".into(), units::bytes),
                format!("{:.0}", r.load_ms),
                if r.ttft_ms > 0.0 {
                    format!("{:.1}", r.ttft_ms)
                } else {
                    "-".into()
                },
            ];
            if capped {
                row.push(r.mem_limit_bytes.map_or("-".into(), units::bytes));
                row.push(r.mem_verdict.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    markdown(&headers, &align, &body).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(test: &str, ts: f64) -> SpeedRow {
        SpeedRow {
            model_filename: "m.gguf".into(),
            model_type: "llama Q4_K_M".into(),
            model_size: 100 << 20,
            model_n_params: 134_515_008,
            backend: "CPU".into(),
            n_threads: 2,
            n_batch: 2048,
            n_ubatch: 512,
            n_ctx: 640,
            n_gpu_layers: None,
            flash_attn: "auto".into(),
            use_mmap: true,
            use_mlock: false,
            test: test.into(),
            n_prompt: 512,
            n_gen: 0,
            n_depth: 0,
            avg_ts: ts,
            stddev_ts: 1.25,
            reps: 5,
            peak_rss_bytes: 150 << 20,
            load_ms: 40.0,
            ttft_ms: 520.5,
            kv_cache_bytes: Some(7 << 20),
            llama_cpp: "x".into(),
            cpu_info: "cpu".into(),
            error: None,
            est_peak_bytes: Some(152 << 20),
            peak_anon_bytes: Some(50 << 20),
            peak_file_bytes: Some(100 << 20),
            mem_limit_bytes: None,
            mem_mechanism: None,
            mem_verdict: None,
            uncapped_tg_ts: None,
        }
    }

    #[test]
    fn markdown_snapshot() {
        let md = String::from_utf8(to_markdown(&[row("pp512", 980.123)])).unwrap();
        let expected = [
            "| model                 |    size | params | backend | threads | test  |           t/s | peak RSS | est. peak | load ms | ttft ms |",
            "| --------------------- | ------: | -----: | ------- | ------: | ----- | ------------: | -------: | --------: | ------: | ------: |",
            "| m.gguf (llama Q4_K_M) | 100 MiB | 134.5M | CPU     |       2 | pp512 | 980.12 ± 1.25 |  150 MiB |   152 MiB |      40 |   520.5 |",
        ];
        assert_eq!(md, expected.join("\n") + "\n");
    }

    #[test]
    fn csv_has_llama_bench_like_header() {
        let csv = String::from_utf8(to_csv(&[row("tg128", 200.0)]).unwrap()).unwrap();
        let header = csv.lines().next().unwrap();
        for col in [
            "model_filename",
            "model_size",
            "model_n_params",
            "n_threads",
            "test",
            "avg_ts",
            "stddev_ts",
            "peak_rss_bytes",
            "load_ms",
            "ttft_ms",
        ] {
            assert!(
                header.split(',').any(|h| h == col),
                "missing {col} in {header}"
            );
        }
    }
}
