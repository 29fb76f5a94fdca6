//! Fidelity in the reports: each cell's KL divergence from its base with intervals, the
//! sentences that say whether a quant is distinguishable from its base (and from its
//! neighbours) by KLD even where task deltas are not, the notes that qualify those
//! numbers, and the table `frontier fidelity` prints.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::data::CellResult;
use super::deltas::Delta;
use crate::fidelity::metrics::Est;
use crate::output::table::{markdown, Align};
use crate::store::Store;

/// A cell's fidelity as the tables show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FidelityScore {
    pub base: String,
    /// The cell is the base itself (only its perplexity).
    pub is_base: bool,
    /// Scored tokens compared.
    pub n: usize,
    pub chunks_done: u32,
    pub n_chunks: u32,
    pub kld: Est,
    pub kld_median: f64,
    pub kld_p90: f64,
    pub kld_p99: f64,
    pub kld_max: f64,
    pub same_top: Est,
    pub ppl: Est,
    pub ppl_base: Est,
    pub ppl_ratio: Est,
    pub tokens_per_s: Option<f64>,
    pub warning: Option<String>,
}

impl FidelityScore {
    pub fn of(c: &CellResult) -> Option<FidelityScore> {
        let f = c.fidelity.as_ref()?;
        let s = f.summary.clone().unwrap_or_default();
        if !f.run.is_base && f.summary.is_none() {
            return None;
        }
        Some(FidelityScore {
            base: f.run.base_quant.clone(),
            is_base: f.run.is_base,
            n: s.n,
            chunks_done: f.chunks_done,
            n_chunks: f.run.n_chunks,
            kld: s.kld,
            kld_median: s.kld_median,
            kld_p90: s.kld_p90,
            kld_p99: s.kld_p99,
            kld_max: s.kld_max,
            same_top: if f.run.is_base {
                Est {
                    value: 1.0,
                    se: 0.0,
                }
            } else {
                s.same_top
            },
            ppl: if f.run.is_base { f.run.ppl_base } else { s.ppl },
            ppl_base: f.run.ppl_base,
            ppl_ratio: if f.run.is_base {
                Est {
                    value: 1.0,
                    se: 0.0,
                }
            } else {
                s.ppl_ratio
            },
            tokens_per_s: f.tokens_per_s,
            warning: f.run.warning(),
        })
    }

    /// Mean KLD with its 95% interval, or `base`.
    pub fn kld_text(&self) -> String {
        if self.is_base {
            return "base".into();
        }
        let (lo, hi) = self.kld.ci95();
        format!("{:.4} [{:.4}, {:.4}]", self.kld.value, lo.max(0.0), hi)
    }

    /// Top-1 agreement in percent ± standard error.
    pub fn same_top_text(&self) -> String {
        if self.is_base {
            return "100".into();
        }
        format!(
            "{:.1} ± {:.1}",
            self.same_top.value * 100.0,
            self.same_top.se * 100.0
        )
    }

    /// Whether the quant's KLD interval excludes 0 (its distributions measurably moved).
    pub fn distinguishable(&self) -> bool {
        !self.is_base && self.kld.ci95().0 > 0.0
    }
}

/// Per quant, whether KLD tells it from its base (beside what its task deltas say), and per
/// model the order of its quants by KLD with whether neighbours' intervals separate.
pub fn findings(
    cells: &[CellResult],
    scores: &[Option<FidelityScore>],
    deltas: &[Delta],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_model: BTreeMap<&str, Vec<(&str, &FidelityScore)>> = BTreeMap::new();
    for (c, s) in cells.iter().zip(scores) {
        let Some(s) = s else { continue };
        if s.is_base {
            continue;
        }
        by_model.entry(&c.model).or_default().push((&c.quant, s));
        let (lo, hi) = s.kld.ci95();
        let task_deltas: Vec<&Delta> = deltas
            .iter()
            .filter(|d| d.model == c.model && d.quant == c.quant)
            .collect();
        let tasks = if task_deltas.is_empty() {
            String::new()
        } else if task_deltas.iter().all(|d| d.p_value >= 0.05) {
            format!(
                "; no task delta is significant ({})",
                task_deltas
                    .iter()
                    .map(|d| format!("{} p = {:.2}", d.task.as_str(), d.p_value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            "; task scores differ too (see above)".to_string()
        };
        out.push(format!(
            "{} {} vs {} by KL divergence: mean {:.4} (95% CI {:.4}–{:.4}), same top token {:.1}% over {} tokens: {}{tasks}",
            c.model,
            c.quant,
            s.base,
            s.kld.value,
            lo.max(0.0),
            hi,
            s.same_top.value * 100.0,
            s.n,
            if s.distinguishable() {
                "distinguishable from the base"
            } else {
                "not distinguishable from the base"
            }
        ));
    }
    for (model, mut quants) in by_model {
        if quants.len() < 2 {
            continue;
        }
        quants.sort_by(|a, b| a.1.kld.value.total_cmp(&b.1.kld.value));
        let mut order = quants[0].0.to_string();
        let mut all_separate = true;
        for w in quants.windows(2) {
            let separate = w[0].1.kld.ci95().1 < w[1].1.kld.ci95().0;
            all_separate &= separate;
            order.push_str(if separate { " < " } else { " ≈ " });
            order.push_str(w[1].0);
        }
        out.push(format!(
            "{model} quants by KL divergence from the base: {order} ({})",
            if all_separate {
                "every neighbour's 95% interval separate"
            } else {
                "≈: intervals overlap"
            }
        ));
    }
    out
}

/// The notes behind the fidelity columns: text, shape and base of each model, a base made
/// from a quantized file, and a base that is not of higher precision.
pub fn notes(cells: &[CellResult]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for c in cells {
        let Some(f) = &c.fidelity else { continue };
        let r = &f.run;
        let what = (c.model.clone(), r.base_quant.clone(), r.text_sha256.clone());
        if !seen.contains(&what) {
            seen.push(what);
            out.push(format!(
                "Fidelity of {} against its {} file: KL divergence of each quant's next-token distributions from the base's on {} (sha256 {}), {} chunks of {} tokens, the second half of each scored, as llama-perplexity --kl-divergence. {}",
                c.model,
                r.base_quant,
                r.text,
                &r.text_sha256[..r.text_sha256.len().min(16)],
                r.n_chunks,
                r.n_ctx,
                if r.tail == 0.0 {
                    "Exact over the whole vocabulary.".to_string()
                } else {
                    format!(
                        "Per position the base's most likely tokens are kept until the rest of the {}-token vocabulary holds at most {:e} of the probability; the rest is one bucket: a lower bound of the exact divergence (the README states the measured gap).",
                        r.n_vocab, r.tail
                    )
                }
            ));
            if let Some(from) = &r.base_derived_from {
                out.push(format!(
                    "{}'s base {} was itself made from {from}: its KL divergences measure re-quantization loss against that file — exactly these files' fidelity to it, not to original full-precision weights.",
                    c.model, r.base_quant
                ));
            }
        }
        if let Some(w) = r.warning() {
            out.push(format!("{} {}: {w}.", c.model, c.quant));
        }
    }
    out
}

/// The table `frontier fidelity` prints (and `fidelity.md` holds).
pub fn fidelity_md(cells: &[CellResult]) -> String {
    let scores: Vec<Option<FidelityScore>> = cells.iter().map(FidelityScore::of).collect();
    let rows: Vec<Vec<String>> = cells
        .iter()
        .zip(&scores)
        .filter_map(|(c, s)| {
            let s = s.as_ref()?;
            let f = |v: f64| {
                if s.is_base {
                    "-".to_string()
                } else {
                    format!("{v:.4}")
                }
            };
            Some(vec![
                c.model.clone(),
                c.quant.clone(),
                if s.is_base {
                    "-".into()
                } else {
                    s.base.clone()
                },
                s.kld_text(),
                f(s.kld_median),
                f(s.kld_p90),
                f(s.kld_p99),
                f(s.kld_max),
                s.same_top_text(),
                format!("{:.3} ± {:.3}", s.ppl.value, s.ppl.se),
                if s.is_base {
                    "-".into()
                } else {
                    format!("{:.4} ± {:.4}", s.ppl_ratio.value, s.ppl_ratio.se)
                },
                if s.is_base {
                    "-".into()
                } else {
                    format!("{}/{} chunks, {} tokens", s.chunks_done, s.n_chunks, s.n)
                },
                s.tokens_per_s.map_or("-".into(), |t| format!("{t:.0}")),
            ])
        })
        .collect();
    if rows.is_empty() {
        return "No fidelity stored.\n".into();
    }
    let mut md = String::from("# Fidelity\n\n");
    md.push_str(&markdown(
        &[
            "Model",
            "Quant",
            "Base",
            "Mean KLD [95% CI]",
            "Median",
            "p90",
            "p99",
            "Max",
            "Same top %",
            "PPL",
            "PPL ratio",
            "Compared",
            "Tokens/s",
        ],
        &[
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    ));
    let findings = findings(cells, &scores, &[]);
    if !findings.is_empty() {
        md.push('\n');
        for f in findings {
            md.push_str(&format!("- {f}\n"));
        }
    }
    let notes = notes(cells);
    if !notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for (i, n) in notes.iter().enumerate() {
            md.push_str(&format!("{}. {n}\n", i + 1));
        }
    }
    md
}

/// [`fidelity_md`] of a store.
pub fn fidelity_table(store: &Store) -> Result<String> {
    Ok(fidelity_md(&super::data::load(store)?))
}
