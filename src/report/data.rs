//! What reports are made of: every cell of a results store with its speed, memory and, per
//! task, the summary and the per-item outcomes (for paired tests). `load` reads a store;
//! everything after it is pure.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::eval::aggregate::{summarize, TaskSummary};
use crate::memory::verdict::{cell_verdict, MemoryRecord, Verdict};
use crate::memory::SERVE_JOB;
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
    /// The cell's id in the store.
    pub id: i64,
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
    /// Repetitions behind the generation speed's mean and sd.
    pub tg_samples: usize,
    /// `plan`'s estimate at the default serving context (one sequence), for cells whose
    /// footprint was not measured and whose model file is at hand: (context, bytes).
    pub serving_estimate: Option<(u32, u64)>,
    pub model_sha256: String,
    pub config: serde_json::Value,
    /// Each task's format comparison tables show (the first one asked for it).
    pub primary_formats: BTreeMap<TaskName, Format>,
    /// Every task in every format run.
    pub tasks: Vec<TaskResult>,
    /// What each of the cell's workers did with memory (under `--mem-limit` or not).
    pub memory: Vec<MemoryRecord>,
    /// The cell's fidelity to its base (the stored run with the most chunks compared).
    pub fidelity: Option<crate::fidelity::StoredFidelity>,
}

/// A model's serving footprint: the peak RSS of one sequence at a stated context.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Serving {
    pub n_ctx: u32,
    pub peak_rss: u64,
    /// What `plan`'s arithmetic expected for the same run.
    pub estimate: Option<u64>,
}

impl CellResult {
    /// A task's results in its primary format (else the first format it ran in).
    pub fn task(&self, t: TaskName) -> Option<&TaskResult> {
        match self.primary_formats.get(&t) {
            Some(&f) => self.task_in(t, f),
            None => self.tasks.iter().find(|r| r.task == t),
        }
    }

    /// The serving footprint, when measured (job `serve`).
    pub fn serving(&self) -> Option<Serving> {
        let m = self.memory.iter().find(|m| m.job == SERVE_JOB)?;
        Some(Serving {
            n_ctx: m.n_ctx?,
            peak_rss: m.peak_rss?,
            estimate: m.estimate,
        })
    }

    /// The evaluation worker's own peak RSS and how many sequences it decoded together.
    pub fn eval_peak(&self) -> Option<(u64, Option<u32>)> {
        let m = self.memory.iter().find(|m| m.job == "eval")?;
        Some((m.peak_rss?, m.n_seq))
    }

    pub fn task_in(&self, t: TaskName, format: Format) -> Option<&TaskResult> {
        self.tasks
            .iter()
            .find(|r| r.task == t && r.format == format)
    }

    /// Bits per weight from the file size: orders quants by precision.
    pub fn bits_per_weight(&self) -> f64 {
        if self.n_params == 0 {
            return 0.0;
        }
        self.file_size as f64 * 8.0 / self.n_params as f64
    }

    /// The memory a reader compares: the serving footprint when measured, else the file size.
    pub fn memory_bytes(&self) -> u64 {
        self.serving().map_or(self.file_size, |s| s.peak_rss)
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
        let memory = store.memory(cell.id)?;
        let pick = |gen: bool| {
            speed
                .iter()
                .find(|s| (s.n_gen > 0) == gen)
                .map(|s| (s.test.clone(), s.avg_ts, s.stddev_ts))
        };
        out.push(CellResult {
            id: cell.id,
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
            tg_samples: speed
                .iter()
                .find(|s| s.n_gen > 0)
                .map_or(0, |s| s.samples_ts.len()),
            serving_estimate: estimate_serving(&cell.info.model_path, &memory),
            model_sha256: cell.info.model_sha256.clone(),
            primary_formats: primary_formats(&cell.info.config),
            config: cell.info.config.clone(),
            tasks: by_task.into_values().map(|(_, r)| r).collect(),
            memory,
            fidelity: crate::fidelity::stored(store, cell.id)?
                .into_iter()
                .max_by_key(|f| f.chunks_done),
        });
    }
    Ok(out)
}

/// Each task's first format, from a cell's config: `{"mmlu": ["raw"], "gsm8k": ["tuned"]}`,
/// or (stores made before formats were per task) one list for every task.
fn primary_formats(config: &serde_json::Value) -> BTreeMap<TaskName, Format> {
    let first = |v: &serde_json::Value| -> Option<Format> {
        serde_json::from_value(v.get(0)?.clone()).ok()
    };
    match config.get("formats") {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .filter_map(|(t, fs)| Some((TaskName::parse(t)?, first(fs)?)))
            .collect(),
        Some(list) => TaskName::ALL
            .into_iter()
            .filter_map(|t| Some((t, first(list)?)))
            .collect(),
        None => BTreeMap::new(),
    }
}

/// `plan`'s arithmetic for one sequence at the default serving context, when no footprint
/// was measured and the model file can be read.
fn estimate_serving(model_path: &str, memory: &[MemoryRecord]) -> Option<(u32, u64)> {
    if memory.iter().any(|m| m.job == SERVE_JOB) {
        return None;
    }
    let ctx = crate::memory::DEFAULT_SERVE_CTX;
    let e = crate::memory::guard::file_estimate(
        std::path::Path::new(model_path),
        ctx as u64,
        1,
        512,
        true,
    )
    .ok()?;
    Some((ctx, e.estimate.total))
}
