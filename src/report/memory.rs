//! The memory table: per model and job, the cap and what held it, the estimate against the
//! measured peak (anonymous and file-backed apart), and the verdict with its evidence.

use crate::memory::verdict::MemoryRecord;
use crate::output::table::{markdown, Align};
use frontier_core::units;

fn opt_bytes(b: Option<u64>) -> String {
    b.map_or("-".into(), units::bytes)
}

/// One row per (label, record); the verdicts' evidence follows the table as a list.
pub fn memory_markdown(rows: &[(String, &MemoryRecord)]) -> String {
    use Align::{Left as L, Right as R};
    let headers = [
        "model",
        "job",
        "cap",
        "held by",
        "mode",
        "estimate",
        "peak RSS",
        "anon",
        "file",
        "cgroup peak",
        "disk read",
        "tg t/s",
        "verdict",
    ];
    let align = [L, L, R, L, L, R, R, R, R, R, R, R, L];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, r)| {
            vec![
                label.clone(),
                r.job.clone(),
                opt_bytes(r.limit),
                r.mechanism.map_or("-".into(), |m| m.as_str().to_string()),
                r.mode.clone(),
                opt_bytes(r.estimate),
                opt_bytes(r.peak_rss),
                opt_bytes(r.peak_anon),
                opt_bytes(r.peak_file),
                opt_bytes(r.cgroup_peak),
                opt_bytes(r.disk_read),
                r.tg_ts.map_or("-".into(), |t| format!("{t:.1}")),
                r.verdict.as_str().to_string(),
            ]
        })
        .collect();
    let mut out = markdown(&headers, &align, &body);
    out.push('\n');
    for (label, r) in rows {
        out.push_str(&format!(
            "- {label} ({}): {} — {}\n",
            r.job,
            r.verdict.as_str(),
            r.detail
        ));
    }
    out
}

/// The same rows as CSV.
pub fn memory_csv(rows: &[(String, &MemoryRecord)]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "model",
        "job",
        "limit_bytes",
        "mechanism",
        "mode",
        "estimate_bytes",
        "weights_bytes",
        "peak_rss_bytes",
        "peak_anon_bytes",
        "peak_file_bytes",
        "cgroup_peak_bytes",
        "disk_read_bytes",
        "major_faults",
        "tg_ts",
        "verdict",
        "detail",
    ])?;
    let num = |b: Option<u64>| b.map_or(String::new(), |b| b.to_string());
    for (label, r) in rows {
        w.write_record([
            label.clone(),
            r.job.clone(),
            num(r.limit),
            r.mechanism
                .map_or(String::new(), |m| m.as_str().to_string()),
            r.mode.clone(),
            num(r.estimate),
            r.weights.to_string(),
            num(r.peak_rss),
            num(r.peak_anon),
            num(r.peak_file),
            num(r.cgroup_peak),
            num(r.disk_read),
            num(r.major_faults),
            r.tg_ts.map_or(String::new(), |t| format!("{t:.2}")),
            r.verdict.as_str().to_string(),
            r.detail.clone(),
        ])?;
    }
    Ok(w.into_inner()?)
}
