//! The results store: one SQLite file per output folder with runs, cells (model × quant),
//! task runs (one task under one protocol in a cell) and items (one scored question each),
//! plus speed measurements. Every item is written in its own transaction as it arrives, so
//! a crash loses at most the items in flight and a rerun skips what is stored.

mod merge;
mod schema;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::memory::verdict::MemoryRecord;
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

pub use merge::{summarize, MergeCounts, Provenance, ShardSummary};

/// A model × quantization under one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellInfo {
    /// Identity for resuming: model sha256 + quant (+ prompt format).
    pub key: String,
    pub model: String,
    pub model_path: String,
    pub model_sha256: String,
    pub quant: String,
    /// When the quant was made locally from another file: that file's quant and path.
    pub derived_from: Option<String>,
    pub architecture: String,
    pub n_params: u64,
    pub file_size: u64,
    /// Engine settings, llama.cpp build, backend, machine: provenance.
    pub config: serde_json::Value,
}

/// How a cell's last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    Running,
    Done,
    Failed,
}

impl CellStatus {
    fn as_str(self) -> &'static str {
        match self {
            CellStatus::Running => "running",
            CellStatus::Done => "done",
            CellStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> CellStatus {
        match s {
            "done" => CellStatus::Done,
            "failed" => CellStatus::Failed,
            _ => CellStatus::Running,
        }
    }
}

/// A cell as stored, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredCell {
    pub id: i64,
    pub info: CellInfo,
    pub status: CellStatus,
    pub error: Option<String>,
    pub peak_rss_bytes: Option<u64>,
    pub load_ms: Option<f64>,
}

/// One task under one protocol in one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRun {
    pub id: i64,
    pub cell_id: i64,
    pub task: String,
    pub task_key: String,
    pub protocol: serde_json::Value,
    pub dataset_hash: String,
    pub n_shot: usize,
    pub n_items: usize,
}

/// What identifies a task run and what it covers.
#[derive(Debug, Clone, Copy)]
pub struct TaskRunSpec<'a> {
    pub task: &'a str,
    pub task_key: &'a str,
    pub protocol: &'a serde_json::Value,
    pub dataset_hash: &'a str,
    pub n_shot: usize,
    pub n_items: usize,
}

/// One scored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRow {
    pub item_id: String,
    pub group: Option<String>,
    pub prompt_sha256: String,
    pub output: String,
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
    pub format_failure: bool,
    pub metrics: std::collections::BTreeMap<String, f64>,
    pub detail: serde_json::Value,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub time_ms: f64,
}

/// A speed test of a cell (`pp512`, `tg128`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedRecord {
    pub test: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ts: Vec<f64>,
    pub ttft_ms: f64,
    pub load_ms: f64,
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening results store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn).with_context(|| format!("preparing {}", path.display()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing store, failing when there is none.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(frontier_core::error::bad_input(format!(
                "{}: no results store here",
                path.display()
            )));
        }
        Store::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn begin_run(&self, command: &str, details: &serde_json::Value) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, command, details_json) VALUES (?1, ?2, ?3)",
            params![now(), command, details.to_string()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Registers a cell (or refreshes its description) and marks it running.
    pub fn upsert_cell(&self, run_id: i64, cell: &CellInfo) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO cells (key, model, model_path, model_sha256, quant, derived_from, architecture,
                                n_params, file_size, config_json, status, run_id, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11, ?12)
             ON CONFLICT(key) DO UPDATE SET model = excluded.model, model_path = excluded.model_path,
                derived_from = excluded.derived_from, config_json = excluded.config_json,
                status = 'running', error = NULL, run_id = excluded.run_id, updated_at = excluded.updated_at",
            params![
                cell.key,
                cell.model,
                cell.model_path,
                cell.model_sha256,
                cell.quant,
                cell.derived_from,
                cell.architecture,
                cell.n_params as i64,
                cell.file_size as i64,
                cell.config.to_string(),
                run_id,
                now()
            ],
        )?;
        Ok(self
            .conn
            .query_row("SELECT id FROM cells WHERE key = ?1", [&cell.key], |r| {
                r.get(0)
            })?)
    }

    /// Records how a cell's run ended. The peak RSS kept is the largest seen across its
    /// worker processes (speed and evaluation).
    pub fn finish_cell(
        &self,
        cell_id: i64,
        status: CellStatus,
        error: Option<&str>,
        peak_rss_bytes: Option<u64>,
        load_ms: Option<f64>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE cells SET status = ?2, error = ?3,
                peak_rss_bytes = CASE WHEN ?4 IS NULL THEN peak_rss_bytes
                                      ELSE MAX(COALESCE(peak_rss_bytes, 0), ?4) END,
                load_ms = COALESCE(?5, load_ms), updated_at = ?6 WHERE id = ?1",
            params![
                cell_id,
                status.as_str(),
                error,
                peak_rss_bytes.map(|b| b as i64),
                load_ms,
                now()
            ],
        )?;
        Ok(())
    }

    pub fn cells(&self) -> Result<Vec<StoredCell>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, key, model, model_path, model_sha256, quant, derived_from, architecture, n_params,
                    file_size, config_json, status, error, peak_rss_bytes, load_ms FROM cells ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredCell {
                id: r.get(0)?,
                info: CellInfo {
                    key: r.get(1)?,
                    model: r.get(2)?,
                    model_path: r.get(3)?,
                    model_sha256: r.get(4)?,
                    quant: r.get(5)?,
                    derived_from: r.get(6)?,
                    architecture: r.get(7)?,
                    n_params: r.get::<_, i64>(8)? as u64,
                    file_size: r.get::<_, i64>(9)? as u64,
                    config: json_col(r.get::<_, String>(10)?),
                },
                status: CellStatus::parse(&r.get::<_, String>(11)?),
                error: r.get(12)?,
                peak_rss_bytes: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
                load_ms: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Registers a task run (by cell and protocol key) and returns it.
    pub fn upsert_task_run(&self, cell_id: i64, spec: &TaskRunSpec<'_>) -> Result<TaskRun> {
        let TaskRunSpec {
            task,
            task_key,
            protocol,
            dataset_hash,
            n_shot,
            n_items,
        } = *spec;
        self.conn.execute(
            "INSERT INTO task_runs (cell_id, task, task_key, protocol_json, dataset_hash, n_shot, n_items)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(cell_id, task_key) DO UPDATE SET n_items = MAX(n_items, excluded.n_items)",
            params![cell_id, task, task_key, protocol.to_string(), dataset_hash, n_shot as i64, n_items as i64],
        )?;
        self.task_runs(Some(cell_id))?
            .into_iter()
            .find(|t| t.task_key == task_key)
            .context("task run vanished after insert")
    }

    pub fn task_runs(&self, cell_id: Option<i64>) -> Result<Vec<TaskRun>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, cell_id, task, task_key, protocol_json, dataset_hash, n_shot, n_items FROM task_runs
             WHERE ?1 IS NULL OR cell_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([cell_id], |r| {
            Ok(TaskRun {
                id: r.get(0)?,
                cell_id: r.get(1)?,
                task: r.get(2)?,
                task_key: r.get(3)?,
                protocol: json_col(r.get::<_, String>(4)?),
                dataset_hash: r.get(5)?,
                n_shot: r.get::<_, i64>(6)? as usize,
                n_items: r.get::<_, i64>(7)? as usize,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Ids of the items already stored for a task run.
    pub fn done_items(&self, task_run_id: i64) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT item_id FROM items WHERE task_run_id = ?1")?;
        let ids = stmt.query_map([task_run_id], |r| r.get::<_, String>(0))?;
        Ok(ids.collect::<rusqlite::Result<HashSet<_>>>()?)
    }

    /// Stores one item (its own transaction). An item already stored is kept as it is.
    pub fn insert_item(&self, task_run_id: i64, item: &ItemRow) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO items (task_run_id, item_id, grp, prompt_sha256, output, extracted, gold,
                correct, format_failure, metrics_json, detail_json, prompt_tokens, output_tokens, time_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                task_run_id,
                item.item_id,
                item.group,
                item.prompt_sha256,
                item.output,
                item.extracted,
                item.gold,
                item.correct,
                item.format_failure,
                serde_json::to_string(&item.metrics)?,
                item.detail.to_string(),
                item.prompt_tokens as i64,
                item.output_tokens as i64,
                item.time_ms,
                now()
            ],
        )?;
        Ok(n == 1)
    }

    pub fn items(&self, task_run_id: i64) -> Result<Vec<ItemRow>> {
        self.query_items(
            "WHERE task_run_id = ?1 ORDER BY rowid",
            params![task_run_id],
        )
    }

    /// Items whose id matches exactly, across task runs, with their task run id.
    pub fn find_items(&self, item_id: &str) -> Result<Vec<(i64, ItemRow)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT task_run_id, {ITEM_COLS} FROM items WHERE item_id = ?1"
        ))?;
        let rows = stmt.query_map([item_id], |r| Ok((r.get(0)?, item_from_row(r, 1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn query_items(&self, clause: &str, p: impl rusqlite::Params) -> Result<Vec<ItemRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ITEM_COLS} FROM items {clause}"))?;
        let rows = stmt.query_map(p, |r| item_from_row(r, 0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn record_speed(&self, cell_id: i64, s: &SpeedRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO speed (cell_id, test, n_prompt, n_gen, avg_ts, stddev_ts, samples_json, ttft_ms, load_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(cell_id, test) DO UPDATE SET avg_ts = excluded.avg_ts, stddev_ts = excluded.stddev_ts,
                samples_json = excluded.samples_json, ttft_ms = excluded.ttft_ms, load_ms = excluded.load_ms,
                created_at = excluded.created_at",
            params![
                cell_id,
                s.test,
                s.n_prompt,
                s.n_gen,
                s.avg_ts,
                s.stddev_ts,
                serde_json::to_string(&s.samples_ts)?,
                s.ttft_ms,
                s.load_ms,
                now()
            ],
        )?;
        Ok(())
    }

    /// Stores what one worker of a cell did with memory (replacing that job's last record).
    pub fn record_memory(&self, cell_id: i64, m: &MemoryRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO memory (cell_id, job, limit_bytes, verdict, record_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(cell_id, job) DO UPDATE SET limit_bytes = excluded.limit_bytes,
                verdict = excluded.verdict, record_json = excluded.record_json,
                created_at = excluded.created_at",
            params![
                cell_id,
                m.job,
                m.limit.map(|l| l as i64),
                m.verdict.as_str(),
                serde_json::to_string(m)?,
                now()
            ],
        )?;
        Ok(())
    }

    /// A cell's memory records, by job.
    pub fn memory(&self, cell_id: i64) -> Result<Vec<MemoryRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT record_json FROM memory WHERE cell_id = ?1
                 ORDER BY CASE job WHEN 'speed_uncapped' THEN 0 WHEN 'speed' THEN 1 ELSE 2 END, job",
            )?;
        let rows = stmt.query_map([cell_id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?)?);
        }
        Ok(out)
    }

    /// Stores (or replaces) what a cell's fidelity run under `key` compares (JSON of the
    /// fidelity module's run record; the store does not read it).
    pub fn upsert_fidelity_run(&self, cell_id: i64, key: &str, run: &impl Serialize) -> Result<()> {
        self.conn.execute(
            "INSERT INTO fidelity_runs (cell_id, fidelity_key, run_json) VALUES (?1, ?2, ?3)
             ON CONFLICT(cell_id, fidelity_key) DO UPDATE SET run_json = excluded.run_json",
            params![cell_id, key, serde_json::to_string(run)?],
        )?;
        Ok(())
    }

    /// Stores one compared chunk of a fidelity run at once (a rerun skips it).
    pub fn insert_fidelity_chunk(
        &self,
        cell_id: i64,
        key: &str,
        chunk: u32,
        stats: &impl Serialize,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO fidelity_chunks (cell_id, fidelity_key, chunk, stats_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![cell_id, key, chunk, serde_json::to_string(stats)?, now()],
        )?;
        Ok(())
    }

    /// A cell's fidelity runs: key and run record.
    pub fn fidelity_runs<R: serde::de::DeserializeOwned>(
        &self,
        cell_id: i64,
    ) -> Result<Vec<(String, R)>> {
        let mut stmt = self.conn.prepare(
            "SELECT fidelity_key, run_json FROM fidelity_runs WHERE cell_id = ?1 ORDER BY fidelity_key",
        )?;
        let rows = stmt.query_map([cell_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, json) = row?;
            out.push((key, serde_json::from_str(&json)?));
        }
        Ok(out)
    }

    /// The stored chunks of a cell's fidelity run, in chunk order.
    pub fn fidelity_chunks<C: serde::de::DeserializeOwned>(
        &self,
        cell_id: i64,
        key: &str,
    ) -> Result<Vec<C>> {
        let mut stmt = self.conn.prepare(
            "SELECT stats_json FROM fidelity_chunks WHERE cell_id = ?1 AND fidelity_key = ?2 ORDER BY chunk",
        )?;
        let rows = stmt.query_map(params![cell_id, key], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?)?);
        }
        Ok(out)
    }

    pub fn speed(&self, cell_id: i64) -> Result<Vec<SpeedRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT test, n_prompt, n_gen, avg_ts, stddev_ts, samples_json, ttft_ms, load_ms FROM speed
             WHERE cell_id = ?1 ORDER BY n_gen, test",
        )?;
        let rows = stmt.query_map([cell_id], |r| {
            Ok(SpeedRecord {
                test: r.get(0)?,
                n_prompt: r.get(1)?,
                n_gen: r.get(2)?,
                avg_ts: r.get(3)?,
                stddev_ts: r.get(4)?,
                samples_ts: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                ttft_ms: r.get(6)?,
                load_ms: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The cell a task run belongs to.
    pub fn cell_of_task_run(&self, task_run_id: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT cell_id FROM task_runs WHERE id = ?1",
                [task_run_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

const ITEM_COLS: &str =
    "item_id, grp, prompt_sha256, output, extracted, gold, correct, format_failure,
    metrics_json, detail_json, prompt_tokens, output_tokens, time_ms";

fn item_from_row(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<ItemRow> {
    Ok(ItemRow {
        item_id: r.get(o)?,
        group: r.get(o + 1)?,
        prompt_sha256: r.get(o + 2)?,
        output: r.get(o + 3)?,
        extracted: r.get(o + 4)?,
        gold: r.get(o + 5)?,
        correct: r.get(o + 6)?,
        format_failure: r.get(o + 7)?,
        metrics: serde_json::from_str(&r.get::<_, String>(o + 8)?).unwrap_or_default(),
        detail: json_col(r.get::<_, String>(o + 9)?),
        prompt_tokens: r.get::<_, i64>(o + 10)? as u64,
        output_tokens: r.get::<_, i64>(o + 11)? as u64,
        time_ms: r.get(o + 12)?,
    })
}

fn json_col(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    frontier_core::units::utc_timestamp(secs)
}

#[cfg(test)]
mod tests;
