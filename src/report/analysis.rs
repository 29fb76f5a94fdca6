//! The one analysis step behind every comparison report: from the cells of a store to the
//! rows people compare (scores with intervals, deltas against each model's reference quant
//! with McNemar's exact p-value on the same items, the efficient frontier, verdicts under
//! each memory cap, and the footnotes that qualify a number). `comparison.csv`,
//! `comparison.md` and `frontier.svg` only render a [`Comparison`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::data::{mem_limits, CellResult};
use crate::memory::verdict::Verdict;
use crate::store::CellStatus;
use crate::tasks::TaskName;
use frontier_core::stats::mcnemar_exact;

/// Share of format failures above which a cell's score is footnoted.
pub const FORMAT_FAILURE_FOOTNOTE: f64 = 0.10;

/// Everything the comparison reports show, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The task columns, in order.
    pub tasks: Vec<TaskName>,
    /// The tasks every scored cell has: the mean score (and so the frontier) is over these.
    pub common_tasks: Vec<TaskName>,
    /// The memory caps cells ran under, smallest first (one "fits" column each).
    pub limits: Vec<u64>,
    /// One row per cell, in store order.
    pub rows: Vec<Row>,
    pub deltas: Vec<Delta>,
    /// Numbered notes (1-based in print), in the order rows refer to them.
    pub footnotes: Vec<String>,
    /// Per cap: the best-scoring cell that fits under it.
    pub best_under: Vec<BestUnder>,
}

/// One cell of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub model: String,
    pub quant: String,
    pub derived_from: Option<String>,
    pub status: CellStatus,
    /// One per task column; `None` where the cell has no result for it.
    pub scores: Vec<Option<TaskScore>>,
    pub pp_ts: Option<f64>,
    pub tg_ts: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub file_size: u64,
    /// The memory the frontier compares: peak RSS when measured, else the file size.
    pub memory_bytes: u64,
    /// Mean primary score over the common tasks.
    pub mean_score: Option<f64>,
    pub on_frontier: bool,
    /// The verdict under each cap (in `limits` order), where the cell ran under it.
    pub fits: Vec<Option<Verdict>>,
    /// The footnote (index into `footnotes`) on the quant: a derived file.
    pub quant_note: Option<usize>,
    pub error: Option<String>,
}

/// One task's score in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScore {
    pub value: f64,
    pub stderr: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: u64,
    pub format_failures: u64,
    pub format_failure_rate: f64,
    /// Against the model's reference quant, on the items both scored.
    pub delta: Option<Delta>,
    /// The footnote on a high format-failure rate.
    pub note: Option<usize>,
}

/// The cell with the highest mean score among those that fit under a cap.
#[derive(Debug, Clone, PartialEq)]
pub struct BestUnder {
    pub limit: u64,
    /// The row, its mean score and peak RSS.
    pub best: Option<(usize, f64)>,
    /// Cells that fit, and cells that ran under this cap.
    pub fitting: usize,
    pub tried: usize,
}

impl Comparison {
    pub fn build(cells: &[CellResult]) -> Comparison {
        let tasks = tasks_present(cells);
        let common = common_tasks(cells);
        let on_frontier = frontier(cells);
        let deltas = deltas(cells);
        let limits = mem_limits(cells);
        let mut footnotes = Vec::new();
        let rows = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let quant_note = c.derived_from.as_ref().map(|from| {
                    let source_quant = from.split_whitespace().next().unwrap_or(from);
                    footnotes.push(format!(
                        "{} {} was made locally from {from}: its size, speed and memory are real {}, its quality is at most that of {source_quant}.",
                        c.model, c.quant, c.quant
                    ));
                    footnotes.len() - 1
                });
                let scores = tasks
                    .iter()
                    .map(|&t| {
                        let s = &c.task(t)?.summary;
                        let rate = s.format_failures as f64 / s.score.n.max(1) as f64;
                        let note = (rate > FORMAT_FAILURE_FOOTNOTE).then(|| {
                            footnotes.push(format!(
                                "{} {} {}: {:.0}% of answers ({} of {}) had no extractable answer: a format failure, not necessarily a capability gap.",
                                c.model,
                                c.quant,
                                task_title(t),
                                rate * 100.0,
                                s.format_failures,
                                s.score.n
                            ));
                            footnotes.len() - 1
                        });
                        Some(TaskScore {
                            value: s.score.value,
                            stderr: s.score.stderr,
                            ci_low: s.score.ci_low,
                            ci_high: s.score.ci_high,
                            n: s.score.n,
                            format_failures: s.format_failures,
                            format_failure_rate: rate,
                            delta: deltas
                                .iter()
                                .find(|d| d.model == c.model && d.quant == c.quant && d.task == t)
                                .cloned(),
                            note,
                        })
                    })
                    .collect();
                Row {
                    model: c.model.clone(),
                    quant: c.quant.clone(),
                    derived_from: c.derived_from.clone(),
                    status: c.status,
                    scores,
                    pp_ts: c.pp.as_ref().map(|p| p.1),
                    tg_ts: c.tg.as_ref().map(|p| p.1),
                    peak_rss_bytes: c.peak_rss_bytes,
                    file_size: c.file_size,
                    memory_bytes: c.memory_bytes(),
                    mean_score: aggregate_score(c, &common),
                    on_frontier: on_frontier.contains(&i),
                    fits: limits.iter().map(|&l| c.verdict_under(l)).collect(),
                    quant_note,
                    error: c.error.clone(),
                }
            })
            .collect::<Vec<Row>>();
        let best_under = limits
            .iter()
            .enumerate()
            .map(|(k, &limit)| {
                let fit = |r: &&Row| r.fits[k] == Some(Verdict::Fits);
                BestUnder {
                    limit,
                    best: rows
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| fit(r))
                        .filter_map(|(i, r)| Some((i, r.mean_score?)))
                        .max_by(|a, b| a.1.total_cmp(&b.1)),
                    fitting: rows.iter().filter(fit).count(),
                    tried: rows.iter().filter(|r| r.fits[k].is_some()).count(),
                }
            })
            .collect();
        Comparison {
            tasks,
            common_tasks: common,
            limits,
            rows,
            deltas,
            footnotes,
            best_under,
        }
    }
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
