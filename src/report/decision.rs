//! The decision framework, computed from a store: for each RAM tier, which model × quant fit
//! at the serving context (with headroom, measured or estimated), and within the tier the
//! best cell for knowledge (MMLU), reasoning (GSM8K), code (HumanEval), generation speed,
//! quality per GB and overall — with a "best" that is within noise of the runner-up said to
//! be a tie. Pure: [`Decision::build`] from the cells and their comparison rows.

use frontier_core::stats::{mcnemar_exact, Z95};
use frontier_core::units;

use super::analysis::{task_title, Comparison, FORMAT_FAILURE_FOOTNOTE};
use super::data::CellResult;
use crate::store::CellStatus;
use crate::tasks::TaskName;

/// The RAM tiers of the hardware table when none are given: 4, 8 and 16 GiB.
pub const DEFAULT_TIERS: [u64; 3] = [4 << 30, 8 << 30, 16 << 30];

/// Where a cell's memory at the serving context comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The peak RSS of one sequence at the serving context, measured.
    Measured,
    /// Measured, and the cell also ran under a cap at most this tier's size and fit.
    MeasuredUnderCap,
    /// `plan`'s arithmetic from the GGUF header (not measured).
    Estimated,
    /// Only the file size is known: a lower bound.
    FileSize,
}

impl Basis {
    pub fn label(self) -> &'static str {
        match self {
            Basis::Measured => "measured",
            Basis::MeasuredUnderCap => "measured under a cap",
            Basis::Estimated => "estimated",
            Basis::FileSize => "file size only (a lower bound)",
        }
    }
}

/// A cell that fits a tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Index of the cell (and of its comparison row).
    pub cell: usize,
    pub memory: u64,
    pub headroom: u64,
    pub basis: Basis,
}

/// What a pick is best at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Task(TaskName),
    Speed,
    QualityPerGb,
    Overall,
}

impl Criterion {
    pub fn title(self) -> String {
        match self {
            Criterion::Task(TaskName::Mmlu) => "Knowledge (MMLU)".into(),
            Criterion::Task(TaskName::Gsm8k) => "Reasoning (GSM8K)".into(),
            Criterion::Task(TaskName::Gsm8kCot) => "Reasoning (GSM8K-CoT)".into(),
            Criterion::Task(TaskName::Humaneval) => "Code (HumanEval)".into(),
            Criterion::Speed => "Generation speed".into(),
            Criterion::QualityPerGb => "Quality per GB".into(),
            Criterion::Overall => "Overall (mean score)".into(),
        }
    }

    /// How a value of this criterion reads: `41.2%`, `118.4 t/s`, `38.5 %/GB`.
    pub fn show(self, v: f64) -> String {
        match self {
            Criterion::Task(_) | Criterion::Overall => format!("{:.1}%", v * 100.0),
            Criterion::Speed => format!("{v:.1} t/s"),
            Criterion::QualityPerGb => format!("{:.1} %/GiB", v * 100.0),
        }
    }
}

/// The best cell of a tier for one criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub criterion: Criterion,
    pub cell: usize,
    pub value: f64,
    pub runner_up: Option<(usize, f64)>,
    /// Set when the best is not distinguishable from the runner-up, saying why.
    pub tie: Option<String>,
    /// Set when the pick's answers had too many format failures to read its score plainly.
    pub flag: Option<String>,
}

/// One RAM tier of the hardware table.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub ram: u64,
    /// Cells that fit, most memory first.
    pub fits: Vec<Fit>,
    /// When nothing fits: the cell needing the least memory, and how much it lacks.
    pub closest: Option<(usize, u64)>,
    pub picks: Vec<Pick>,
}

/// The hardware table and the decision framework.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The context the footprints are at (`None`: no footprint measured).
    pub serve_ctx: Option<u32>,
    pub tiers: Vec<Tier>,
}

/// A cell's memory at the serving context and where the number comes from.
fn memory_of(c: &CellResult) -> (u64, Basis) {
    match (c.serving(), c.serving_estimate) {
        (Some(s), _) => (s.peak_rss, Basis::Measured),
        (None, Some((_, est))) => (est, Basis::Estimated),
        (None, None) => (c.file_size, Basis::FileSize),
    }
}

impl Decision {
    pub fn build(cells: &[CellResult], comparison: &Comparison, tiers: &[u64]) -> Decision {
        let usable: Vec<usize> = (0..cells.len())
            .filter(|&i| cells[i].status == CellStatus::Done && !cells[i].tasks.is_empty())
            .collect();
        let tiers = tiers
            .iter()
            .map(|&ram| {
                let mut fits: Vec<Fit> = usable
                    .iter()
                    .filter_map(|&i| {
                        let (memory, basis) = memory_of(&cells[i]);
                        let capped = cells[i].memory.iter().any(|m| {
                            m.limit.is_some_and(|l| l <= ram)
                                && m.verdict == crate::memory::verdict::Verdict::Fits
                        });
                        let basis = match basis {
                            Basis::Measured if capped => Basis::MeasuredUnderCap,
                            b => b,
                        };
                        (memory <= ram).then(|| Fit {
                            cell: i,
                            memory,
                            headroom: ram - memory,
                            basis,
                        })
                    })
                    .collect();
                fits.sort_by_key(|f| std::cmp::Reverse(f.memory));
                let closest = if fits.is_empty() {
                    usable
                        .iter()
                        .map(|&i| (i, memory_of(&cells[i]).0))
                        .min_by_key(|&(_, m)| m)
                        .map(|(i, m)| (i, m - ram))
                } else {
                    None
                };
                let inside: Vec<usize> = fits.iter().map(|f| f.cell).collect();
                let picks = picks(cells, comparison, &inside);
                Tier {
                    ram,
                    fits,
                    closest,
                    picks,
                }
            })
            .collect();
        Decision {
            serve_ctx: comparison.serve_ctx,
            tiers,
        }
    }
}

/// A value and its 95% interval.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    value: f64,
    low: f64,
    high: f64,
}

/// The mean score over the common tasks, with an interval from the tasks' standard errors
/// (± 1.96 √(Σ se²) / T).
fn overall(c: &CellResult, common: &[TaskName]) -> Option<Estimate> {
    if common.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    let mut var = 0.0;
    for &t in common {
        let s = &c.task(t)?.summary.score;
        sum += s.value;
        var += s.stderr * s.stderr;
    }
    let n = common.len() as f64;
    let half = Z95 * var.sqrt() / n;
    Some(Estimate {
        value: sum / n,
        low: sum / n - half,
        high: sum / n + half,
    })
}

fn criterion_value(c: &CellResult, criterion: Criterion, common: &[TaskName]) -> Option<Estimate> {
    match criterion {
        Criterion::Task(t) => {
            let s = &c.task(t)?.summary.score;
            Some(Estimate {
                value: s.value,
                low: s.ci_low,
                high: s.ci_high,
            })
        }
        Criterion::Speed => {
            let (_, avg, sd) = c.tg.as_ref()?;
            let half = Z95 * sd / (c.tg_samples.max(1) as f64).sqrt();
            Some(Estimate {
                value: *avg,
                low: avg - half,
                high: avg + half,
            })
        }
        Criterion::Overall => overall(c, common),
        Criterion::QualityPerGb => {
            let o = overall(c, common)?;
            let gib = memory_of(c).0 as f64 / (1u64 << 30) as f64;
            (gib > 0.0).then(|| Estimate {
                value: o.value / gib,
                low: o.low / gib,
                high: o.high / gib,
            })
        }
    }
}

/// Whether `a` (the best) and `b` (the runner-up) are within noise, and why: McNemar's exact
/// test on the items both scored for a task, else overlapping 95% intervals.
fn tie(
    cells: &[CellResult],
    criterion: Criterion,
    (a, ea): (usize, Estimate),
    (b, eb): (usize, Estimate),
) -> Option<String> {
    let who = cells[b].label();
    if let Criterion::Task(t) = criterion {
        if let (Some(x), Some(y)) = (cells[a].task(t), cells[b].task(t)) {
            let (mut n, mut only_a, mut only_b) = (0u64, 0u64, 0u64);
            for (id, &ok) in &x.outcomes {
                let Some(&other) = y.outcomes.get(id) else {
                    continue;
                };
                n += 1;
                match (ok, other) {
                    (true, false) => only_a += 1,
                    (false, true) => only_b += 1,
                    _ => {}
                }
            }
            if n > 0 {
                let p = mcnemar_exact(only_a, only_b);
                return (p >= 0.05).then(|| {
                    format!(
                        "tie with {who}: within noise (McNemar p = {p:.2}, n = {n} paired items)"
                    )
                });
            }
        }
    }
    (ea.low <= eb.high).then(|| {
        format!(
            "tie with {who}: within noise (95% intervals {}–{} and {}–{} overlap)",
            criterion.show(ea.low),
            criterion.show(ea.high),
            criterion.show(eb.low),
            criterion.show(eb.high)
        )
    })
}

/// A note when the pick's answers (on its task, or any task for the overall criteria) had
/// no extractable answer more than [`FORMAT_FAILURE_FOOTNOTE`] of the time.
fn format_flag(c: &CellResult, criterion: Criterion) -> Option<String> {
    let tasks: Vec<TaskName> = match criterion {
        Criterion::Task(t) => vec![t],
        Criterion::Speed => return None,
        _ => c.tasks.iter().map(|t| t.task).collect(),
    };
    let notes: Vec<String> = tasks
        .iter()
        .filter_map(|&t| {
            let s = &c.task(t)?.summary;
            let rate = s.format_failures as f64 / s.score.n.max(1) as f64;
            (rate > FORMAT_FAILURE_FOOTNOTE).then(|| {
                format!(
                    "{:.0}% of its {} answers had no extractable answer",
                    rate * 100.0,
                    task_title(t)
                )
            })
        })
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn picks(cells: &[CellResult], comparison: &Comparison, inside: &[usize]) -> Vec<Pick> {
    let mut criteria: Vec<Criterion> = comparison
        .tasks
        .iter()
        .map(|&t| Criterion::Task(t))
        .collect();
    criteria.extend([
        Criterion::Speed,
        Criterion::QualityPerGb,
        Criterion::Overall,
    ]);
    criteria
        .into_iter()
        .filter_map(|criterion| {
            let mut ranked: Vec<(usize, Estimate)> = inside
                .iter()
                .filter_map(|&i| {
                    Some((
                        i,
                        criterion_value(&cells[i], criterion, &comparison.common_tasks)?,
                    ))
                })
                .collect();
            // Equal values: the cell that needs less memory first.
            ranked.sort_by(|a, b| {
                b.1.value
                    .total_cmp(&a.1.value)
                    .then(cells[a.0].memory_bytes().cmp(&cells[b.0].memory_bytes()))
            });
            let (best, e) = *ranked.first()?;
            let runner = ranked.get(1).copied();
            Some(Pick {
                criterion,
                cell: best,
                value: e.value,
                runner_up: runner.map(|(i, r)| (i, r.value)),
                tie: runner.and_then(|r| tie(cells, criterion, (best, e), r)),
                flag: format_flag(&cells[best], criterion),
            })
        })
        .collect()
}

/// The rules, in the words a reader checks a pick against.
pub fn rules(serve_ctx: Option<u32>) -> Vec<String> {
    let ctx = serve_ctx.map_or("the serving context".to_string(), |n| {
        format!("a {n}-token context")
    });
    vec![
        format!("A cell fits a tier when its memory to serve the model — the peak RSS of one sequence at {ctx}, measured (an estimate from the GGUF header where it was not) — is at most the tier's RAM; headroom is what is left."),
        "Knowledge, reasoning, code: the highest score on MMLU, GSM8K, HumanEval among the cells that fit (equal scores: the one that needs less memory). The runner-up ties it when McNemar's exact test on the items both answered gives p ≥ 0.05 (without shared items: when the 95% intervals overlap).".to_string(),
        "Generation speed: the highest tokens/s of the speed test; a tie when mean ± 1.96·sd/√n overlap.".to_string(),
        "Overall: the mean score over the tasks every cell has; quality per GB: that mean per GiB of memory. A tie when the intervals (± 1.96·√Σse² / tasks) overlap.".to_string(),
        format!("⚠ marks a pick with more than {:.0}% of its answers unparseable (format failures, not necessarily wrong).", FORMAT_FAILURE_FOOTNOTE * 100.0),
    ]
}

/// `decision.md`.
pub fn decision_md(d: &Decision, cells: &[CellResult]) -> String {
    use crate::output::table::{markdown, Align};
    let mut md = String::from("# Which model and quant for this machine\n\n");
    md.push_str(&match d.serve_ctx {
        Some(n) => format!("Memory is what serving the model takes: one sequence at a {n}-token context.\n"),
        None => "No serving footprint was measured: memory is estimated from the GGUF headers (or only the file size is known).\n".to_string(),
    });
    md.push_str("\n## Hardware table\n\n");
    let mut rows = Vec::new();
    for t in &d.tiers {
        let fits = if t.fits.is_empty() {
            match t.closest {
                Some((i, lacks)) => format!(
                    "nothing fits; closest: {} (needs {} more)",
                    cells[i].label(),
                    units::bytes(lacks)
                ),
                None => "nothing fits".to_string(),
            }
        } else {
            t.fits
                .iter()
                .map(|f| {
                    format!(
                        "{} ({}, {} free, {})",
                        cells[f.cell].label(),
                        units::bytes(f.memory),
                        units::bytes(f.headroom),
                        f.basis.label()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        rows.push(vec![units::bytes(t.ram), fits]);
    }
    md.push_str(&markdown(
        &["RAM", "What fits (memory, headroom)"],
        &[Align::Left, Align::Left],
        &rows,
    ));
    md.push_str("\n## Decision framework\n");
    for t in &d.tiers {
        md.push_str(&format!("\n### {} RAM\n\n", units::bytes(t.ram)));
        if t.picks.is_empty() {
            md.push_str("No cell with scores fits.\n");
            continue;
        }
        for p in &t.picks {
            md.push_str(&format!(
                "- **{}**: {} ({}){}{}{}\n",
                p.criterion.title(),
                cells[p.cell].label(),
                p.criterion.show(p.value),
                p.runner_up.map_or(String::new(), |(i, v)| format!(
                    "; runner-up {} ({})",
                    cells[i].label(),
                    p.criterion.show(v)
                )),
                p.tie.as_ref().map_or(String::new(), |t| format!(" — {t}")),
                p.flag.as_ref().map_or(String::new(), |f| format!(" ⚠ {f}")),
            ));
        }
    }
    md.push_str("\n## How the picks are made\n\n");
    for r in rules(d.serve_ctx) {
        md.push_str(&format!("- {r}\n"));
    }
    md
}
