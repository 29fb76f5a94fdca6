//! `results.csv`: the long table, one row per model × quant × task (a failed cell without
//! results gets one row with its error), with the cell's speed, memory and provenance.

use anyhow::Result;
use serde::Serialize;

use super::comparison::status_str;
use super::data::CellResult;

#[derive(Debug, Serialize)]
struct ResultsRow<'a> {
    model: &'a str,
    quant: &'a str,
    derived_from: Option<&'a str>,
    status: &'a str,
    task: &'a str,
    format: &'a str,
    template: &'a str,
    metric: &'a str,
    score: Option<f64>,
    stderr: Option<f64>,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
    n: Option<u64>,
    format_failures: Option<u64>,
    format_failure_rate: Option<f64>,
    other_metrics: String,
    n_shot: Option<usize>,
    pp_test: Option<&'a str>,
    pp_ts: Option<f64>,
    pp_sd: Option<f64>,
    tg_test: Option<&'a str>,
    tg_ts: Option<f64>,
    tg_sd: Option<f64>,
    peak_rss_bytes: Option<u64>,
    file_size: u64,
    n_params: u64,
    load_ms: Option<f64>,
    model_sha256: &'a str,
    task_key: Option<&'a str>,
    dataset_hash: Option<&'a str>,
    formats: String,
    llama_cpp: String,
    threads: String,
    backend: String,
    machine: String,
    error: Option<&'a str>,
}

fn config_str(c: &CellResult, key: &str) -> String {
    match c.config.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// `results.csv`: one row per model × quant × task (a failed cell without results gets
/// one row with its error), with the cell's speed, memory and provenance.
pub fn results_csv(cells: &[CellResult]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for c in cells {
        let base = |task: &'static str| ResultsRow {
            model: &c.model,
            quant: &c.quant,
            derived_from: c.derived_from.as_deref(),
            status: status_str(c.status),
            task,
            format: "",
            template: "",
            metric: "",
            score: None,
            stderr: None,
            ci95_low: None,
            ci95_high: None,
            n: None,
            format_failures: None,
            format_failure_rate: None,
            other_metrics: String::new(),
            n_shot: None,
            pp_test: c.pp.as_ref().map(|p| p.0.as_str()),
            pp_ts: c.pp.as_ref().map(|p| p.1),
            pp_sd: c.pp.as_ref().map(|p| p.2),
            tg_test: c.tg.as_ref().map(|p| p.0.as_str()),
            tg_ts: c.tg.as_ref().map(|p| p.1),
            tg_sd: c.tg.as_ref().map(|p| p.2),
            peak_rss_bytes: c.peak_rss_bytes,
            file_size: c.file_size,
            n_params: c.n_params,
            load_ms: c.load_ms,
            model_sha256: &c.model_sha256,
            task_key: None,
            dataset_hash: None,
            formats: config_str(c, "formats"),
            llama_cpp: config_str(c, "llama_cpp"),
            threads: config_str(c, "threads"),
            backend: config_str(c, "backend"),
            machine: config_str(c, "machine"),
            error: c.error.as_deref(),
        };
        if c.tasks.is_empty() {
            w.serialize(base(""))?;
            continue;
        }
        for t in &c.tasks {
            let s = &t.summary;
            let others: Vec<String> = s
                .metrics
                .iter()
                .filter(|(k, _)| **k != s.metric)
                .map(|(k, p)| format!("{k}={:.4}", p.value))
                .collect();
            w.serialize(ResultsRow {
                metric: &s.metric,
                score: Some(s.score.value),
                stderr: Some(s.score.stderr),
                ci95_low: Some(s.score.ci_low),
                ci95_high: Some(s.score.ci_high),
                n: Some(s.score.n),
                format_failures: Some(s.format_failures),
                format_failure_rate: Some(if s.score.n > 0 {
                    s.format_failures as f64 / s.score.n as f64
                } else {
                    0.0
                }),
                other_metrics: others.join(" "),
                n_shot: Some(t.n_shot),
                task_key: Some(&t.task_key),
                dataset_hash: Some(&t.dataset_hash),
                format: t.format.as_str(),
                template: &t.template,
                ..base(t.task.as_str())
            })?;
        }
    }
    Ok(w.into_inner()?)
}
