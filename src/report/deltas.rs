//! Quantization deltas: each cell against its model's reference quant (the most bits per
//! weight) on the items both scored, with McNemar's exact p-value.

use std::collections::BTreeMap;

use serde::Serialize;

use super::data::CellResult;
use crate::tasks::TaskName;
use frontier_core::stats::mcnemar_exact;

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
