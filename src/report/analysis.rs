//! The one analysis step behind every comparison report: from the cells of a store to the
//! rows people compare (scores with intervals, deltas against each model's reference quant
//! with McNemar's exact p-value on the same items, the efficient frontier, verdicts under
//! each memory cap, and the footnotes that qualify a number). `comparison.csv`,
//! `comparison.md` and `frontier.svg` only render a [`Comparison`].

use super::data::{mem_limits, CellResult, Serving};
pub use super::deltas::{deltas, references, Delta};
use super::fidelity::{self, FidelityScore};
use crate::memory::verdict::Verdict;
use crate::store::CellStatus;
use crate::tasks::TaskName;

/// Share of format failures above which a cell's score is footnoted.
pub const FORMAT_FAILURE_FOOTNOTE: f64 = 0.10;

/// Everything the comparison reports show, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The task columns, in order, with the prompt format(s) their scores come from.
    pub tasks: Vec<TaskName>,
    pub formats: Vec<String>,
    /// The serving context of the memory column (the largest among the cells), if measured.
    pub serve_ctx: Option<u32>,
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
    /// Any cell has fidelity to its base (the fidelity columns are shown).
    pub has_fidelity: bool,
    /// Per quant, whether KL divergence tells it from its base; per model, the KLD order.
    pub fidelity_findings: Vec<String>,
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
    /// The serving footprint: one sequence at a stated context.
    pub serving: Option<Serving>,
    /// The evaluation worker's peak and how many sequences it decoded together.
    pub eval_peak: Option<(u64, Option<u32>)>,
    pub file_size: u64,
    /// The memory the frontier compares: the serving footprint, else the file size.
    pub memory_bytes: u64,
    /// Mean primary score over the common tasks.
    pub mean_score: Option<f64>,
    pub on_frontier: bool,
    /// The verdict under each cap (in `limits` order), where the cell ran under it.
    pub fits: Vec<Option<Verdict>>,
    /// The footnote (index into `footnotes`) on the quant: a derived file.
    pub quant_note: Option<usize>,
    /// KL divergence from the model's base, top-1 agreement, perplexity ratio.
    pub fidelity: Option<FidelityScore>,
    pub error: Option<String>,
}

/// One task's score in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScore {
    /// The prompt format the score comes from.
    pub format: crate::prompts::Format,
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
                        let r = c.task(t)?;
                        let s = &r.summary;
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
                            format: r.format,
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
                    serving: c.serving(),
                    eval_peak: c.eval_peak(),
                    file_size: c.file_size,
                    memory_bytes: c.memory_bytes(),
                    mean_score: aggregate_score(c, &common),
                    on_frontier: on_frontier.contains(&i),
                    fits: limits.iter().map(|&l| c.verdict_under(l)).collect(),
                    quant_note,
                    fidelity: FidelityScore::of(c),
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
        let formats = tasks
            .iter()
            .map(|&t| {
                let mut f: Vec<&str> = cells
                    .iter()
                    .filter_map(|c| Some(c.task(t)?.format.as_str()))
                    .collect();
                f.sort();
                f.dedup();
                f.join("/")
            })
            .collect();
        let serve_ctx = rows.iter().filter_map(|r| Some(r.serving?.n_ctx)).max();
        let fidelity_scores: Vec<Option<FidelityScore>> =
            rows.iter().map(|r| r.fidelity.clone()).collect();
        let has_fidelity = fidelity_scores.iter().any(Option::is_some);
        let fidelity_findings = fidelity::findings(cells, &fidelity_scores, &deltas);
        footnotes.extend(fidelity::notes(cells));
        Comparison {
            has_fidelity,
            fidelity_findings,
            tasks,
            formats,
            serve_ctx,
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
