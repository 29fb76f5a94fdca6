//! Merging stores: the shards a Slurm job array's tasks wrote (one per cell) into one
//! store, through SQLite's ATTACH. Cells are matched by their key, task runs by (cell, task
//! key), items by (task run, item id): an item two shards hold (a resubmitted task, a copied
//! shard) is kept once. Also what a store's results come from (builds, data), so shards
//! from another build can be refused before anything is copied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::Store;

/// The builds and data a store's results come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// frontier builds (`version (commit)`) of the cells.
    pub frontier: BTreeSet<String>,
    /// llama.cpp builds of the cells.
    pub llama_cpp: BTreeSet<String>,
    /// Per task, the hashes of the data its items came from.
    pub datasets: BTreeMap<String, BTreeSet<String>>,
}

impl Provenance {
    /// Adds another store's provenance to this one.
    pub fn extend(&mut self, other: &Provenance) {
        self.frontier.extend(other.frontier.iter().cloned());
        self.llama_cpp.extend(other.llama_cpp.iter().cloned());
        for (task, hashes) in &other.datasets {
            self.datasets
                .entry(task.clone())
                .or_default()
                .extend(hashes.iter().cloned());
        }
    }

    /// What differs within it, one phrase per difference (empty when it is all one build
    /// and one copy of each task's data).
    pub fn mixed(&self) -> Vec<String> {
        let mut out = Vec::new();
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" vs ");
        if self.frontier.len() > 1 {
            out.push(format!("frontier builds {}", list(&self.frontier)));
        }
        if self.llama_cpp.len() > 1 {
            out.push(format!("llama.cpp builds {}", list(&self.llama_cpp)));
        }
        for (task, hashes) in &self.datasets {
            if hashes.len() > 1 {
                out.push(format!("{task} data {}", list(hashes)));
            }
        }
        out
    }
}

/// What one store (a shard) holds, read without writing to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSummary {
    /// Items stored.
    pub items: usize,
    /// Items its task runs cover.
    pub planned: usize,
    /// The status of its cells (`done`, `failed`, `running`), and the first error.
    pub status: Option<String>,
    pub error: Option<String>,
}

/// Reads a store's counts without opening it for writing (a task may be writing it).
pub fn summarize(path: &Path) -> Result<ShardSummary> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let has_items: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'items'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .with_context(|| format!("reading {}", path.display()))?
        > 0;
    if !has_items {
        return Ok(ShardSummary::default());
    }
    let count = |sql: &str| -> Result<usize> {
        Ok(conn
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0) as usize)
    };
    let (status, error) = conn
        .query_row(
            "SELECT status, error FROM cells ORDER BY status = 'done', id LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()?
        .map_or((None, None), |(s, e)| (Some(s), e));
    Ok(ShardSummary {
        items: count("SELECT COUNT(*) FROM items")?,
        planned: count("SELECT SUM(n_items) FROM task_runs")?,
        status,
        error,
    })
}

/// What a merge of one shard did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    pub cells: usize,
    /// Items copied.
    pub added: usize,
    /// Items the store already held (kept as they were).
    pub duplicates: usize,
}

impl Store {
    /// The builds and data this store's results come from.
    pub fn provenance(&self) -> Result<Provenance> {
        let mut p = Provenance::default();
        for cell in self.cells()? {
            let get = |k: &str| cell.info.config.get(k).and_then(|v| v.as_str());
            if let Some(f) = get("frontier") {
                p.frontier.insert(f.to_string());
            }
            if let Some(l) = get("llama_cpp") {
                p.llama_cpp.insert(l.to_string());
            }
        }
        for run in self.task_runs(None)? {
            p.datasets
                .entry(run.task)
                .or_default()
                .insert(run.dataset_hash);
        }
        Ok(p)
    }

    /// Copies every cell, task run, item, speed test, memory record and fidelity result of
    /// the store at `shard` into this one, under `run_id`. Items this store already holds
    /// are kept once; a cell done in either stays done; the shard's measurements (speed,
    /// memory, fidelity runs) replace older ones of the same cell.
    pub fn merge_from(&self, shard: &Path, run_id: i64) -> Result<MergeCounts> {
        let conn = &self.conn;
        conn.execute(
            "ATTACH DATABASE ?1 AS shard",
            [shard.to_string_lossy().as_ref()],
        )
        .with_context(|| format!("opening shard {}", shard.display()))?;
        let result = copy_attached(conn, run_id);
        conn.execute("DETACH DATABASE shard", [])?;
        result.with_context(|| format!("merging {}", shard.display()))
    }
}

/// The merge itself, with the shard attached as `shard`, in one transaction.
fn copy_attached(conn: &Connection, run_id: i64) -> Result<MergeCounts> {
    let tx = conn.unchecked_transaction()?;
    let mut counts = MergeCounts::default();
    let mut cells = BTreeMap::new();
    {
        let mut stmt = tx.prepare("SELECT id, key FROM shard.cells ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (shard_id, key) = row?;
            tx.execute(
                "INSERT INTO main.cells (key, model, model_path, model_sha256, quant, derived_from,
                    architecture, n_params, file_size, config_json, status, error, peak_rss_bytes,
                    load_ms, run_id, updated_at)
                 SELECT key, model, model_path, model_sha256, quant, derived_from, architecture,
                    n_params, file_size, config_json, status, error, peak_rss_bytes, load_ms, ?2,
                    updated_at FROM shard.cells WHERE id = ?1
                 ON CONFLICT(key) DO UPDATE SET
                    status = CASE WHEN cells.status = 'done' THEN 'done' ELSE excluded.status END,
                    error = CASE WHEN cells.status = 'done' THEN cells.error ELSE excluded.error END,
                    peak_rss_bytes = MAX(COALESCE(cells.peak_rss_bytes, 0),
                                         COALESCE(excluded.peak_rss_bytes, 0)),
                    load_ms = COALESCE(excluded.load_ms, cells.load_ms),
                    config_json = excluded.config_json, updated_at = excluded.updated_at",
                params![shard_id, run_id],
            )?;
            let id: i64 =
                tx.query_row("SELECT id FROM main.cells WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })?;
            cells.insert(shard_id, id);
            counts.cells += 1;
        }
    }
    for (&from, &to) in &cells {
        for table in [
            "speed (cell_id, test, n_prompt, n_gen, avg_ts, stddev_ts, samples_json, ttft_ms, load_ms, created_at)",
            "memory (cell_id, job, limit_bytes, verdict, record_json, created_at)",
            "fidelity_runs (cell_id, fidelity_key, run_json)",
        ] {
            copy_rows(&tx, "INSERT OR REPLACE", table, from, to)?;
        }
        copy_rows(
            &tx,
            "INSERT OR IGNORE",
            "fidelity_chunks (cell_id, fidelity_key, chunk, stats_json, created_at)",
            from,
            to,
        )?;
        let runs: Vec<(i64, String)> = {
            let mut stmt =
                tx.prepare("SELECT id, task_key FROM shard.task_runs WHERE cell_id = ?1")?;
            let rows = stmt.query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (shard_run, task_key) in runs {
            tx.execute(
                "INSERT INTO main.task_runs (cell_id, task, task_key, protocol_json, dataset_hash,
                    n_shot, n_items)
                 SELECT ?2, task, task_key, protocol_json, dataset_hash, n_shot, n_items
                 FROM shard.task_runs WHERE id = ?1
                 ON CONFLICT(cell_id, task_key) DO UPDATE SET n_items = MAX(n_items, excluded.n_items)",
                params![shard_run, to],
            )?;
            let run: i64 = tx.query_row(
                "SELECT id FROM main.task_runs WHERE cell_id = ?1 AND task_key = ?2",
                params![to, task_key],
                |r| r.get(0),
            )?;
            let total: i64 = tx.query_row(
                "SELECT COUNT(*) FROM shard.items WHERE task_run_id = ?1",
                [shard_run],
                |r| r.get(0),
            )?;
            let added = tx.execute(
                "INSERT OR IGNORE INTO main.items (task_run_id, item_id, grp, prompt_sha256, output,
                    extracted, gold, correct, format_failure, metrics_json, detail_json,
                    prompt_tokens, output_tokens, time_ms, created_at)
                 SELECT ?2, item_id, grp, prompt_sha256, output, extracted, gold, correct,
                    format_failure, metrics_json, detail_json, prompt_tokens, output_tokens,
                    time_ms, created_at
                 FROM shard.items WHERE task_run_id = ?1 ORDER BY rowid",
                params![shard_run, run],
            )?;
            counts.added += added;
            counts.duplicates += total as usize - added;
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// Copies one cell's rows of a per-cell table (`table (cell_id, cols…)`) from the shard.
fn copy_rows(conn: &Connection, verb: &str, table: &str, from: i64, to: i64) -> Result<()> {
    let (name, cols) = table.split_once(' ').context("table spec")?;
    let rest = cols
        .trim_matches(|c| c == '(' || c == ')')
        .split_once(',')
        .map_or("", |(_, r)| r);
    conn.execute(
        &format!(
            "{verb} INTO main.{name} {cols} SELECT ?2,{rest} FROM shard.{name} WHERE cell_id = ?1"
        ),
        params![from, to],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_names_what_differs() {
        let mut a = Provenance::default();
        a.frontier.insert("0.1.0 (abc)".into());
        a.llama_cpp.insert("b6000".into());
        a.datasets
            .entry("mmlu".into())
            .or_default()
            .insert("h1".into());
        let same = a.clone();
        let mut all = a.clone();
        all.extend(&same);
        assert!(all.mixed().is_empty());
        let mut b = a.clone();
        b.frontier = ["0.1.0 (def)".to_string()].into();
        b.datasets.get_mut("mmlu").unwrap().clear();
        b.datasets.get_mut("mmlu").unwrap().insert("h2".into());
        all.extend(&b);
        assert_eq!(
            all.mixed(),
            vec![
                "frontier builds 0.1.0 (abc) vs 0.1.0 (def)".to_string(),
                "mmlu data h1 vs h2".to_string()
            ]
        );
    }
}
