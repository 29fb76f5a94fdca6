//! Aggregates of stored items: per task and metric, the accuracy with its standard error
//! and Wilson 95% interval, format failures apart from wrong answers, and for MMLU the
//! per-subject and per-category scores (micro averages over questions, as lm-eval).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::ItemRow;
use crate::tasks::{mmlu, TaskName};
use frontier_core::stats::{proportion, Proportion};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskSummary {
    pub task: String,
    /// The primary metric (`acc`, `strict_match`, `pass@1`) and its value.
    pub metric: String,
    pub score: Proportion,
    /// Every metric of the task (GSM8K has two filters).
    pub metrics: BTreeMap<String, Proportion>,
    pub format_failures: u64,
    /// MMLU: per subject and per category.
    pub groups: BTreeMap<String, Proportion>,
    pub categories: BTreeMap<String, Proportion>,
}

pub fn summarize(task: TaskName, items: &[ItemRow]) -> TaskSummary {
    let n = items.len() as u64;
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for it in items {
        for (k, v) in &it.metrics {
            *sums.entry(k.clone()).or_default() += v;
        }
    }
    let metrics: BTreeMap<String, Proportion> = sums
        .iter()
        .map(|(k, &s)| (k.clone(), proportion(s, n)))
        .collect();
    let metric = task.primary_metric().to_string();
    let score = metrics
        .get(&metric)
        .copied()
        .unwrap_or_else(|| proportion(0.0, n));

    let mut groups: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let mut categories: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    if task == TaskName::Mmlu {
        for it in items {
            let Some(g) = &it.group else { continue };
            let v = it.metrics.get(&metric).copied().unwrap_or(0.0);
            let e = groups.entry(g.clone()).or_default();
            e.0 += v;
            e.1 += 1;
            let c = categories
                .entry(mmlu::category(g).unwrap_or("other").to_string())
                .or_default();
            c.0 += v;
            c.1 += 1;
        }
    }
    let props = |m: BTreeMap<String, (f64, u64)>| {
        m.into_iter()
            .map(|(k, (s, n))| (k, proportion(s, n)))
            .collect()
    };
    TaskSummary {
        task: task.as_str().to_string(),
        metric,
        score,
        metrics,
        format_failures: items.iter().filter(|i| i.format_failure).count() as u64,
        groups: props(groups),
        categories: props(categories),
    }
}
