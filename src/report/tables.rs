//! The sweep's tables, as pure functions of the cells: `results.csv` (long: one row per
//! model × quant × task), `comparison.csv` / `comparison.md` (wide, as people publish them),
//! quantization deltas against the highest-precision quant of each model with McNemar's
//! exact test on the same items, and the efficient frontier (no other cell is better on
//! both score and memory).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::data::{mem_limits, CellResult};
use crate::memory::verdict::Verdict;
use crate::output::table::{markdown, Align};
use crate::stats::mcnemar_exact;
use crate::store::CellStatus;
use crate::tasks::TaskName;
use crate::units;

/// A paired comparison of one cell with its model's reference quant on one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    pub model: String,
    pub quant: String,
    pub reference: String,
    pub task: TaskName,
    /// Items both cells scored.
    pub n: usize,
    /// Score difference on those items, in points (percent).
    pub points: f64,
    /// Right in the reference only / in this cell only.
    pub lost: u64,
    pub gained: u64,
    pub p_value: f64,
}

impl Delta {
    /// "Q4_K_M loses 1.2 points on MMLU vs F16 (p = 0.43, not significant)".
    pub fn sentence(&self) -> String {
        if self.lost == 0 && self.gained == 0 {
            return format!(
                "{} {} scores the same as {} on {} ({} paired items, every answer the same)",
                self.model,
                self.quant,
                self.reference,
                self.task.as_str(),
                self.n
            );
        }
        let verb = if self.points < 0.0 { "loses" } else { "gains" };
        let sig = if self.p_value < 0.05 {
            "significant"
        } else {
            "not significant"
        };
        format!(
            "{} {} {} {:.1} points on {} vs {} ({} paired items, {} lost, {} gained; McNemar p = {}, {sig})",
            self.model,
            self.quant,
            verb,
            self.points.abs(),
            self.task.as_str(),
            self.reference,
            self.n,
            self.lost,
            self.gained,
            format_p(self.p_value)
        )
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Tasks in the order columns show them.
pub fn tasks_present(cells: &[CellResult]) -> Vec<TaskName> {
    let mut t: Vec<TaskName> = cells
        .iter()
        .flat_map(|c| c.tasks.iter().map(|r| r.task))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// For each model, the index of its highest-precision cell (most bits per weight) that ran.
pub fn references(cells: &[CellResult]) -> BTreeMap<String, usize> {
    let mut refs: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        if c.tasks.is_empty() {
            continue;
        }
        match refs.get(&c.model) {
            Some(&j) if cells[j].bits_per_weight() >= c.bits_per_weight() => {}
            _ => {
                refs.insert(c.model.clone(), i);
            }
        }
    }
    refs
}

/// Paired deltas of every cell against its model's reference, per task.
pub fn deltas(cells: &[CellResult]) -> Vec<Delta> {
    let refs = references(cells);
    let mut out = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let Some(&r) = refs.get(&c.model) else {
            continue;
        };
        if r == i {
            continue;
        }
        let reference = &cells[r];
        for t in &c.tasks {
            let Some(rt) = reference.task(t.task) else {
                continue;
            };
            let (mut n, mut lost, mut gained, mut both, mut ref_right) =
                (0usize, 0u64, 0u64, 0u64, 0u64);
            for (id, &ok) in &t.outcomes {
                let Some(&rok) = rt.outcomes.get(id) else {
                    continue;
                };
                n += 1;
                match (rok, ok) {
                    (true, false) => lost += 1,
                    (false, true) => gained += 1,
                    (true, true) => both += 1,
                    _ => {}
                }
                if rok {
                    ref_right += 1;
                }
            }
            if n == 0 {
                continue;
            }
            let mine = both + gained;
            out.push(Delta {
                model: c.model.clone(),
                quant: c.quant.clone(),
                reference: reference.quant.clone(),
                task: t.task,
                n,
                points: (mine as f64 - ref_right as f64) / n as f64 * 100.0,
                lost,
                gained,
                p_value: mcnemar_exact(lost, gained),
            });
        }
    }
    out
}

/// The mean primary score over `tasks` (None when the cell lacks one of them).
pub fn aggregate_score(c: &CellResult, tasks: &[TaskName]) -> Option<f64> {
    if tasks.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for &t in tasks {
        sum += c.task(t)?.summary.score.value;
    }
    Some(sum / tasks.len() as f64)
}

/// Indices of the cells on the efficient frontier of (aggregate score ↑, memory ↓) over the
/// tasks every scored cell has.
pub fn frontier(cells: &[CellResult]) -> Vec<usize> {
    let common = common_tasks(cells);
    let points: Vec<(usize, f64, u64)> = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status == CellStatus::Done)
        .filter_map(|(i, c)| Some((i, aggregate_score(c, &common)?, c.memory_bytes())))
        .collect();
    points
        .iter()
        .filter(|&&(i, s, m)| {
            !points
                .iter()
                .any(|&(j, s2, m2)| j != i && s2 >= s && m2 <= m && (s2 > s || m2 < m))
        })
        .map(|&(i, _, _)| i)
        .collect()
}

/// Tasks every cell with results has.
pub fn common_tasks(cells: &[CellResult]) -> Vec<TaskName> {
    let scored: Vec<&CellResult> = cells.iter().filter(|c| !c.tasks.is_empty()).collect();
    tasks_present(cells)
        .into_iter()
        .filter(|&t| scored.iter().all(|c| c.task(t).is_some()))
        .collect()
}

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

fn status_str(s: CellStatus) -> &'static str {
    match s {
        CellStatus::Done => "done",
        CellStatus::Failed => "failed",
        CellStatus::Running => "incomplete",
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

/// Column header of a task in the wide tables.
pub fn task_title(t: TaskName) -> &'static str {
    match t {
        TaskName::Mmlu => "MMLU",
        TaskName::Gsm8k => "GSM8K",
        TaskName::Gsm8kCot => "GSM8K-CoT",
        TaskName::Humaneval => "HumanEval",
    }
}

/// `comparison.csv`: the wide table, one row per cell, with deltas and the frontier mark.
pub fn comparison_csv(cells: &[CellResult]) -> Result<Vec<u8>> {
    let tasks = tasks_present(cells);
    let on_frontier = frontier(cells);
    let deltas = deltas(cells);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec![
        "model".into(),
        "quant".into(),
        "derived_from".into(),
        "status".into(),
    ];
    for t in &tasks {
        let name = t.as_str();
        header.extend([
            format!("{name}_score"),
            format!("{name}_ci95_low"),
            format!("{name}_ci95_high"),
            format!("{name}_n"),
            format!("{name}_format_failure_rate"),
            format!("{name}_delta_points"),
            format!("{name}_delta_p"),
        ]);
    }
    header.extend(["pp_ts", "tg_ts", "peak_rss_bytes", "file_size", "frontier"].map(String::from));
    let limits = mem_limits(cells);
    header.extend(
        limits
            .iter()
            .map(|&l| format!("fits_{}", units::bytes_compact(l))),
    );
    header.push("error".into());
    w.write_record(&header)?;
    for (i, c) in cells.iter().enumerate() {
        let mut row: Vec<String> = vec![
            c.model.clone(),
            c.quant.clone(),
            c.derived_from.clone().unwrap_or_default(),
            status_str(c.status).into(),
        ];
        for &t in &tasks {
            match c.task(t) {
                Some(r) => {
                    let s = &r.summary;
                    let d = deltas
                        .iter()
                        .find(|d| d.model == c.model && d.quant == c.quant && d.task == t);
                    row.extend([
                        format!("{:.4}", s.score.value),
                        format!("{:.4}", s.score.ci_low),
                        format!("{:.4}", s.score.ci_high),
                        s.score.n.to_string(),
                        format!("{:.4}", s.format_failures as f64 / s.score.n.max(1) as f64),
                        d.map_or(String::new(), |d| format!("{:.2}", d.points)),
                        d.map_or(String::new(), |d| format!("{:.4}", d.p_value)),
                    ]);
                }
                None => row.extend(std::iter::repeat_n(String::new(), 7)),
            }
        }
        row.extend([
            c.pp.as_ref()
                .map_or(String::new(), |p| format!("{:.2}", p.1)),
            c.tg.as_ref()
                .map_or(String::new(), |p| format!("{:.2}", p.1)),
            c.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
            c.file_size.to_string(),
            on_frontier.contains(&i).to_string(),
        ]);
        row.extend(limits.iter().map(|&l| {
            c.verdict_under(l)
                .map_or(String::new(), |v| v.as_str().to_string())
        }));
        row.push(c.error.clone().unwrap_or_default());
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

/// "Best under 4 GiB: …": the cell with the highest mean score among those that fit the cap.
fn best_under(cells: &[CellResult], common: &[TaskName], limit: u64) -> String {
    let fitting = cells
        .iter()
        .filter(|c| c.verdict_under(limit) == Some(Verdict::Fits))
        .filter_map(|c| Some((c, aggregate_score(c, common)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let tried = cells
        .iter()
        .filter(|c| c.verdict_under(limit).is_some())
        .count();
    match fitting {
        Some((c, score)) => {
            format!(
            "\nBest under {}: **{}** (mean score {:.1}%, peak RSS {}; {} of {tried} cells fit).\n",
            units::bytes(limit),
            c.label(),
            score * 100.0,
            c.peak_rss_bytes.map_or("-".into(), units::bytes),
            cells.iter().filter(|c| c.verdict_under(limit) == Some(Verdict::Fits)).count()
        )
        }
        None => format!(
            "\nNo cell with scores fits under {} ({tried} ran under that cap).\n",
            units::bytes(limit)
        ),
    }
}

/// Share of format failures above which a cell's score is footnoted.
pub const FORMAT_FAILURE_FOOTNOTE: f64 = 0.10;

/// `comparison.md`: the table people publish, the deltas in words, notes.
pub fn comparison_md(cells: &[CellResult]) -> String {
    let tasks = tasks_present(cells);
    let on_frontier = frontier(cells);
    let mut headers: Vec<String> = vec!["Model".into(), "Quant".into()];
    headers.extend(tasks.iter().map(|t| format!("{} %", task_title(*t))));
    headers.extend(["pp t/s", "tg t/s", "Peak RSS", "File size", "Frontier"].map(String::from));
    let limits = mem_limits(cells);
    headers.extend(limits.iter().map(|&l| format!("Fits {}", units::bytes(l))));
    let mut align = vec![Align::Left, Align::Left];
    align.extend(tasks.iter().map(|_| Align::Right));
    align.extend([
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
    ]);
    align.extend(limits.iter().map(|_| Align::Left));

    let mut footnotes: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let mut quant = c.quant.clone();
        if let Some(from) = &c.derived_from {
            let source_quant = from.split_whitespace().next().unwrap_or(from);
            footnotes.push(format!(
                "{} {} was made locally from {from}: its size, speed and memory are real {}, its quality is at most that of {source_quant}.",
                c.model, c.quant, c.quant
            ));
            quant.push_str(&format!(" [{}]", footnotes.len()));
        }
        let mut row = vec![c.model.clone(), quant];
        for &t in &tasks {
            match c.task(t) {
                Some(r) => {
                    let s = &r.summary;
                    let mut cell = format!(
                        "{:.1} ± {:.1}",
                        s.score.value * 100.0,
                        s.score.stderr * 100.0
                    );
                    let rate = s.format_failures as f64 / s.score.n.max(1) as f64;
                    if rate > FORMAT_FAILURE_FOOTNOTE {
                        footnotes.push(format!(
                            "{} {} {}: {:.0}% of answers ({} of {}) had no extractable answer: a format failure, not necessarily a capability gap.",
                            c.model,
                            c.quant,
                            task_title(t),
                            rate * 100.0,
                            s.format_failures,
                            s.score.n
                        ));
                        cell.push_str(&format!(" [{}]", footnotes.len()));
                    }
                    row.push(cell);
                }
                None if c.status == CellStatus::Failed => row.push("failed".into()),
                None => row.push("-".into()),
            }
        }
        row.push(c.pp.as_ref().map_or("-".into(), |p| format!("{:.1}", p.1)));
        row.push(c.tg.as_ref().map_or("-".into(), |p| format!("{:.1}", p.1)));
        row.push(c.peak_rss_bytes.map_or("-".into(), units::bytes));
        row.push(units::bytes(c.file_size));
        row.push(if on_frontier.contains(&i) {
            "★".into()
        } else {
            String::new()
        });
        for &l in &limits {
            row.push(match c.verdict_under(l) {
                Some(Verdict::Fits) => "yes".into(),
                Some(v) => format!("no: {}", v.as_str()),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut md = String::from("# Comparison\n\n");
    md.push_str(&markdown(&header_refs, &align, &rows));
    md.push_str("\nScores are percentages ± standard error. ★ marks the efficient frontier: no other cell has both a higher mean score");
    let common = common_tasks(cells);
    md.push_str(&format!(
        " (over {}) and a lower peak RSS.\n",
        common
            .iter()
            .map(|t| task_title(*t))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for &l in &limits {
        md.push_str(&best_under(cells, &common, l));
    }
    let deltas = deltas(cells);
    if !deltas.is_empty() {
        md.push_str("\n## Quantization deltas (paired, same items)\n\n");
        for d in &deltas {
            md.push_str(&format!("- {}\n", d.sentence()));
        }
    }
    let failed: Vec<&CellResult> = cells
        .iter()
        .filter(|c| c.status == CellStatus::Failed)
        .collect();
    if !failed.is_empty() {
        md.push_str("\n## Failed cells\n\n");
        for c in failed {
            md.push_str(&format!(
                "- {} {}: {}\n",
                c.model,
                c.quant,
                c.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    if !footnotes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for (i, f) in footnotes.iter().enumerate() {
            md.push_str(&format!("{}. {f}\n", i + 1));
        }
    }
    md
}

/// Per model × quant × task: the score under each format, the spread between the best and
/// the worst, and the format-failure rate apart from wrong answers. Empty when every cell
/// ran one format.
pub fn format_sensitivity_md(cells: &[CellResult]) -> String {
    use crate::prompts::Format;
    let formats = [Format::Raw, Format::Chat, Format::Tuned];
    let several = cells.iter().any(|c| {
        let mut f: Vec<Format> = c.tasks.iter().map(|t| t.format).collect();
        f.sort();
        f.dedup();
        f.len() > 1
    });
    if !several {
        return String::new();
    }
    let mut rows = Vec::new();
    for c in cells {
        for t in tasks_of_any_format(c) {
            let mut row = vec![c.model.clone(), c.quant.clone(), task_title(t).to_string()];
            let mut scores = Vec::new();
            for f in formats {
                match c.task_in(t, f) {
                    Some(r) => {
                        let s = &r.summary;
                        let rate = s.format_failures as f64 / s.score.n.max(1) as f64;
                        scores.push(s.score.value);
                        row.push(format!(
                            "{:.1} ({:.0}% ff)",
                            s.score.value * 100.0,
                            rate * 100.0
                        ));
                    }
                    None => row.push("-".into()),
                }
            }
            let spread = if scores.len() > 1 {
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let min = scores.iter().cloned().fold(f64::MAX, f64::min);
                format!("{:.1}", (max - min) * 100.0)
            } else {
                "-".into()
            };
            row.push(spread);
            rows.push(row);
        }
    }
    let mut md = String::from("\n## Format sensitivity\n\n");
    md.push_str(&markdown(
        &[
            "Model",
            "Quant",
            "Task",
            "raw % (ff)",
            "chat % (ff)",
            "tuned % (ff)",
            "spread (points)",
        ],
        &[
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    ));
    md.push_str("\nff = format failures: answers with nothing to extract (no number, no code), counted apart from wrong answers.\n");
    md
}

fn tasks_of_any_format(c: &CellResult) -> Vec<TaskName> {
    let mut t: Vec<TaskName> = c.tasks.iter().map(|r| r.task).collect();
    t.sort();
    t.dedup();
    t
}
