//! The store's tables, created (or upgraded) when a store is opened.

use rusqlite::Connection;

/// Bump when the schema changes; `migrate` brings older files up to date.
pub const VERSION: i64 = 3;

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= VERSION {
        return Ok(());
    }
    if version < 2 {
        first_tables(conn)?;
    }
    // 3: quantization fidelity, one run per cell and base × text, its chunks as they finish.
    conn.execute_batch(
        "BEGIN;
        CREATE TABLE IF NOT EXISTS fidelity_runs (
            cell_id INTEGER NOT NULL REFERENCES cells(id),
            fidelity_key TEXT NOT NULL,
            run_json TEXT NOT NULL,
            PRIMARY KEY (cell_id, fidelity_key)
        );
        CREATE TABLE IF NOT EXISTS fidelity_chunks (
            cell_id INTEGER NOT NULL REFERENCES cells(id),
            fidelity_key TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            stats_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (cell_id, fidelity_key, chunk)
        );
        PRAGMA user_version = 3;
        COMMIT;",
    )
}

/// The tables of versions 1 and 2.
fn first_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN;
        CREATE TABLE IF NOT EXISTS runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            command TEXT NOT NULL,
            details_json TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS cells (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            model TEXT NOT NULL,
            model_path TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            quant TEXT NOT NULL,
            derived_from TEXT,
            architecture TEXT NOT NULL,
            n_params INTEGER NOT NULL,
            file_size INTEGER NOT NULL,
            config_json TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            peak_rss_bytes INTEGER,
            load_ms REAL,
            run_id INTEGER REFERENCES runs(id),
            updated_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS task_runs (
            id INTEGER PRIMARY KEY,
            cell_id INTEGER NOT NULL REFERENCES cells(id),
            task TEXT NOT NULL,
            task_key TEXT NOT NULL,
            protocol_json TEXT NOT NULL,
            dataset_hash TEXT NOT NULL,
            n_shot INTEGER NOT NULL,
            n_items INTEGER NOT NULL,
            UNIQUE (cell_id, task_key)
        );
        CREATE TABLE IF NOT EXISTS items (
            task_run_id INTEGER NOT NULL REFERENCES task_runs(id),
            item_id TEXT NOT NULL,
            grp TEXT,
            prompt_sha256 TEXT NOT NULL,
            output TEXT NOT NULL,
            extracted TEXT,
            gold TEXT NOT NULL,
            correct INTEGER NOT NULL,
            format_failure INTEGER NOT NULL,
            metrics_json TEXT NOT NULL,
            detail_json TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            time_ms REAL NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (task_run_id, item_id)
        );
        CREATE INDEX IF NOT EXISTS items_by_id ON items(item_id);
        CREATE TABLE IF NOT EXISTS speed (
            cell_id INTEGER NOT NULL REFERENCES cells(id),
            test TEXT NOT NULL,
            n_prompt INTEGER NOT NULL,
            n_gen INTEGER NOT NULL,
            avg_ts REAL NOT NULL,
            stddev_ts REAL NOT NULL,
            samples_json TEXT NOT NULL,
            ttft_ms REAL NOT NULL,
            load_ms REAL NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (cell_id, test)
        );
        CREATE TABLE IF NOT EXISTS memory (
            cell_id INTEGER NOT NULL REFERENCES cells(id),
            job TEXT NOT NULL,
            limit_bytes INTEGER,
            verdict TEXT NOT NULL,
            record_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (cell_id, job)
        );
        PRAGMA user_version = 2;
        COMMIT;",
    )
}
