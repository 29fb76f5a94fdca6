//! What reports are made of: every cell of a results store with its speed, memory and, per
//! task, the summary and the per-item outcomes (for paired tests). `load` reads a store;
//! everything after it is pure.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::eval::aggregate::{summarize, TaskSummary};
use crate::memory::verdict::{cell_verdict, MemoryRecord, Verdict};
use crate::prompts::Format;
use crate::store::{CellStatus, Store};
use crate::tasks::TaskName;

/// One task's results in one cell, in one prompt format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    pub task: TaskName,
    pub format: Format,
    /// The template the prompts were rendered with.
    pub template: String,
    pub task_key: String,
    pub n_shot: usize,
    pub dataset_hash: String,
    pub summary: TaskSummary,
    /// Item id → whether it scored on the primary metric.
    #[serde(skip)]
    pub outcomes: BTreeMap<String, bool>,
}

/// One model × quantization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellResult {
    pub model: String,
    pub quant: String,
    pub derived_from: Option<String>,
    pub status: CellStatus,
    pub error: Option<String>,
    pub file_size: u64,
    pub n_params: u64,
    pub peak_rss_bytes: Option<u64>,
    pub load_ms: Option<f64>,
    /// Prompt processing and generation speed: (test name, mean t/s, sd).
    pub pp: Option<(String, f64, f64)>,
    pub tg: Option<(String, f64, f64)>,
    pub model_sha256: String,
    pub config: serde_json::Value,
    /// The format comparison tables show (the first one asked for).
    pub primary_format: Format,
    /// Every task in every format run.
    pub tasks: Vec<TaskResult>,
    /// What each of the cell's workers did with memory (under `--mem-limit` or not).
    pub memory: Vec<MemoryRecord>,
}

impl CellResult {
    /// A task's results in the primary format.
    pub fn task(&self, t: TaskName) -> Option<&TaskResult> {
        self.task_in(t, self.primary_format)
    }

    pub fn task_in(&self, t: TaskName, format: Format) -> Option<&TaskResult> {
        self.tasks
            .iter()
            .find(|r| r.task == t && r.format == format)
    }

    /// The results in the primary format.
    pub fn primary_tasks(&self) -> impl Iterator<Item = &TaskResult> {
        self.tasks
            .iter()
            .filter(|r| r.format == self.primary_format)
    }

    /// Bits per weight from the file size: orders quants by precision.
    pub fn bits_per_weight(&self) -> f64 {
        if self.n_params == 0 {
            return 0.0;
        }
        self.file_size as f64 * 8.0 / self.n_params as f64
    }

    /// The memory a reader compares: peak RSS when measured, else the file size.
    pub fn memory_bytes(&self) -> u64 {
        self.peak_rss_bytes.unwrap_or(self.file_size)
    }

    pub fn label(&self) -> String {
        format!("{} {}", self.model, self.quant)
    }

    /// The verdict under `limit`: the worst of the cell's workers that ran under it.
    pub fn verdict_under(&self, limit: u64) -> Option<Verdict> {
        let capped: Vec<MemoryRecord> = self
            .memory
            .iter()
            .filter(|m| m.limit == Some(limit))
            .cloned()
            .collect();
        cell_verdict(&capped).map(|m| m.verdict)
    }
}

/// The memory caps the cells ran under, smallest first.
pub fn mem_limits(cells: &[CellResult]) -> Vec<u64> {
    let mut limits: Vec<u64> = cells
        .iter()
        .flat_map(|c| c.memory.iter().filter_map(|m| m.limit))
        .collect();
    limits.sort_unstable();
    limits.dedup();
    limits
}

/// Every cell of a store, in the order they were first run.
pub fn load(store: &Store) -> Result<Vec<CellResult>> {
    let mut out = Vec::new();
    let runs = store.task_runs(None)?;
    for cell in store.cells()? {
        let mut by_task: BTreeMap<(TaskName, Format), (usize, TaskResult)> = BTreeMap::new();
        for tr in runs.iter().filter(|t| t.cell_id == cell.id) {
            let Some(task) = TaskName::parse(&tr.task) else {
                continue;
            };
            let items = store.items(tr.id)?;
            if items.is_empty() {
                continue;
            }
            let metric = task.primary_metric();
            let format: Format = tr
                .protocol
                .get("format")
                .and_then(|f| serde_json::from_value(f.clone()).ok())
                .unwrap_or(Format::Raw);
            let result = TaskResult {
                task,
                format,
                template: tr
                    .protocol
                    .get("template")
                    .and_then(|t| t.as_str())
                    .unwrap_or("raw (lm-eval)")
                    .to_string(),
                task_key: tr.task_key.clone(),
                n_shot: tr.n_shot,
                dataset_hash: tr.dataset_hash.clone(),
                summary: summarize(task, &items),
                outcomes: items
                    .iter()
                    .map(|i| {
                        (
                            i.item_id.clone(),
                            i.metrics.get(metric).copied().unwrap_or(0.0) > 0.5,
                        )
                    })
                    .collect(),
            };
            // Several protocols of one task and format: report the one with the most items.
            let n = items.len();
            if by_task.get(&(task, format)).is_none_or(|(m, _)| n >= *m) {
                by_task.insert((task, format), (n, result));
            }
        }
        let speed = store.speed(cell.id)?;
        let pick = |gen: bool| {
            speed
                .iter()
                .find(|s| (s.n_gen > 0) == gen)
                .map(|s| (s.test.clone(), s.avg_ts, s.stddev_ts))
        };
        out.push(CellResult {
            model: cell.info.model.clone(),
            quant: cell.info.quant.clone(),
            derived_from: cell.info.derived_from.clone(),
            status: cell.status,
            error: cell.error.clone(),
            file_size: cell.info.file_size,
            n_params: cell.info.n_params,
            peak_rss_bytes: cell.peak_rss_bytes,
            load_ms: cell.load_ms,
            pp: pick(false),
            tg: pick(true),
            model_sha256: cell.info.model_sha256.clone(),
            primary_format: cell
                .info
                .config
                .get("formats")
                .and_then(|f| f.get(0))
                .and_then(|f| serde_json::from_value(f.clone()).ok())
                .unwrap_or(Format::Raw),
            config: cell.info.config.clone(),
            tasks: by_task.into_values().map(|(_, r)| r).collect(),
            memory: store.memory(cell.id)?,
        });
    }
    Ok(out)
}
