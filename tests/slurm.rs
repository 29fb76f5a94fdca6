//! Sweeps as Slurm job arrays on a real single-node Slurm (brought up by scripts/slurm-up;
//! each test that needs it is skipped, saying why, where it cannot start): a 4-cell grid runs
//! as an array and its merged report equals a local run's, a task killed by `scancel` is
//! resubmitted and completes without duplicating items, the real models give the same items
//! through Slurm as locally. The merge's rules (duplicates kept once, mixed builds refused)
//! and a missing Slurm need no cluster.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::fake::fake_model;
use frontier::store::Store;

const SUBJECTS: &str = "abstract_algebra,anatomy";
/// 2 subjects × 3 MMLU questions + 4 GSM8K problems + 2 HumanEval programs.
const ITEMS_PER_CELL: usize = 12;

/// Brings Slurm up once per test binary; `false` (and why, on stderr) when it cannot.
fn slurm_up() -> bool {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let up = UP.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-up");
        match Command::new(&script).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(format!("{}: {e}", script.display())),
        }
    });
    if let Err(why) = up {
        eprintln!("skipped: no Slurm here: {why}");
    }
    up.is_ok()
}

fn frontier() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("frontier"));
    cmd.env(
        "FRONTIER_CACHE_DIR",
        std::env::temp_dir().join("frontier-test-cache"),
    )
    .env("FRONTIER_SLURM_POLL", "0.5");
    cmd
}

/// The fake-engine sweep of these models into `out`, with `extra` flags.
fn sweep(models: &[&Path], out: &Path, extra: &[&str]) -> Command {
    let mut cmd = frontier();
    let list: Vec<String> = models.iter().map(|m| m.display().to_string()).collect();
    cmd.args(["sweep", "--backend", "fake", "--threads", "1", "--models"])
        .arg(list.join(","))
        .args(["--tasks", "mmlu,gsm8k,humaneval,speed"])
        .args([
            "--subjects",
            SUBJECTS,
            "--limit",
            "mmlu=3,gsm8k=4,humaneval=2",
        ])
        .args(["-p", "32", "-n", "8", "-r", "1", "--parallel", "1"])
        .args(extra)
        .arg("--out")
        .arg(out);
    cmd
}

/// Runs a command to its end (failing the test after `secs`), output captured.
fn output_within(cmd: &mut Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "exit {:?}: {stderr}", o.status.code());
    stderr
}

/// Four fake models answering differently (salts), one of them slow when `slow` is set.
fn four_models(dir: &Path, slow: Option<&str>) -> Vec<PathBuf> {
    (0..4)
        .map(|i| {
            let salt = i.to_string();
            let mut script = vec![("salt", salt.as_str()), ("pp_ts", "900"), ("tg_ts", "80")];
            if i == 2 {
                if let Some(ms) = slow {
                    script.push(("delay_ms", ms));
                }
            }
            fake_model(dir, &format!("fake-{i}"), &script)
        })
        .collect()
}

/// Every stored item by (cell key, task key, item id): what the model said and how it was
/// scored (MMLU's log-probabilities included), not when or how fast.
type Items = BTreeMap<(String, String, String), String>;

fn items(store: &Path) -> Items {
    let store = Store::open(store).unwrap();
    let cells: BTreeMap<i64, String> = store
        .cells()
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.info.key))
        .collect();
    let mut out = Items::new();
    for run in store.task_runs(None).unwrap() {
        for item in store.items(run.id).unwrap() {
            let key = (
                cells[&run.cell_id].clone(),
                run.task_key.clone(),
                item.item_id.clone(),
            );
            // Everything but how long HumanEval's sandbox run took.
            let mut detail = item.detail.clone();
            if let Some(o) = detail.as_object_mut() {
                o.remove("duration_ms");
            }
            let value = serde_json::json!([
                item.prompt_sha256,
                item.output,
                item.extracted,
                item.correct,
                item.format_failure,
                item.metrics,
                detail,
                item.gold
            ]);
            assert!(out.insert(key, value.to_string()).is_none());
        }
    }
    out
}

/// comparison.csv's score columns (everything but speed, memory and time), by row.
fn scores(dir: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(dir.join("comparison.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    let keep: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            let h = h.to_ascii_lowercase();
            ![
                "_ts", "rss", "mem", "load", "ttft", "time", "fits", "serv", "peak", "frontier",
            ]
            .iter()
            .any(|x| h.contains(x))
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        header
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("mmlu")),
        "{header:?}"
    );
    let mut rows = vec![keep.iter().map(|&i| header[i].to_string()).collect()];
    for rec in r.records() {
        let rec = rec.unwrap();
        rows.push(keep.iter().map(|&i| rec[i].to_string()).collect());
    }
    rows
}

fn job_file(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("slurm/jobs.json")).unwrap()).unwrap()
}

#[test]
fn four_cells_run_as_an_array_and_merge_to_what_a_local_run_stores() {
    if !slurm_up() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let models = four_models(dir.path(), None);
    let refs: Vec<&Path> = models.iter().map(PathBuf::as_path).collect();
    let local = dir.path().join("local");
    ok(&output_within(&mut sweep(&refs, &local, &[]), 300));
    let array = dir.path().join("array");
    let o = output_within(
        &mut sweep(
            &refs,
            &array,
            &["--executor", "slurm", "--array-limit", "2"],
        ),
        300,
    );
    let stderr = ok(&o);
    assert!(stderr.contains("4 array tasks (cells 0-3)"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(array.join("shards")).unwrap().count(),
        4,
        "one shard per task"
    );
    let jobs = job_file(&array);
    assert_eq!(jobs["submissions"].as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(
        jobs["submissions"][0]["cells"],
        serde_json::json!([0, 1, 2, 3])
    );

    let (l, a) = (
        items(&local.join("results.sqlite")),
        items(&array.join("results.sqlite")),
    );
    assert_eq!(l.len(), 4 * ITEMS_PER_CELL);
    assert_eq!(l, a, "the merged store holds the local run's items");
    assert_eq!(scores(&local), scores(&array));

    // --status: every task completed, every item stored.
    let o = output_within(frontier().args(["sweep", "--status"]).arg(&array), 30);
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.matches("COMPLETED").count(), 4, "{table}");
    assert_eq!(
        table
            .matches(&format!("{ITEMS_PER_CELL}/{ITEMS_PER_CELL}"))
            .count(),
        4,
        "{table}"
    );

    // A rerun finds every cell done in its shard and submits nothing.
    let o = output_within(&mut sweep(&refs, &array, &["--executor", "slurm"]), 120);
    let stderr = ok(&o);
    assert!(stderr.contains("nothing to submit"), "{stderr}");
    assert_eq!(items(&array.join("results.sqlite")), l);
}

#[test]
fn a_task_killed_by_scancel_is_resubmitted_and_completes_without_duplicates() {
    if !slurm_up() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let models = four_models(dir.path(), Some("500"));
    let refs: Vec<&Path> = models.iter().map(PathBuf::as_path).collect();
    let out = dir.path().join("array");
    let mut child = sweep(&refs, &out, &["--executor", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow cell (2) has stored a few items, then cancel its task.
    let shard = out.join("shards/cell-2.sqlite");
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "cell 2 stored nothing"
        );
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        let stored = if shard.is_file() {
            frontier::store::summarize(&shard).map_or(0, |s| s.items)
        } else {
            0
        };
        if stored >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let job = job_file(&out)["submissions"][0]["job"]
        .as_str()
        .unwrap()
        .to_string();
    let task = format!("{job}_2");
    let s = Command::new("scancel").arg(&task).status().unwrap();
    assert!(s.success());
    let before = frontier::store::summarize(&shard).unwrap().items;
    assert!(before < ITEMS_PER_CELL, "cancelled mid-run: {before}");

    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("the watcher did not finish");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    let stderr = ok(&o);
    assert!(
        stderr.contains(&format!("task {task} ended CANCELLED")),
        "{stderr}"
    );
    let jobs = job_file(&out);
    let failures = jobs["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{jobs}");
    assert_eq!(failures[0]["state"], "CANCELLED");
    assert_eq!(failures[0]["cell"], 2);
    let again = &jobs["submissions"][1];
    assert_eq!(again["cells"], serde_json::json!([2]), "{jobs}");
    assert_eq!(again["attempt"], 2);
    assert!(failures[0]["action"]
        .as_str()
        .unwrap()
        .starts_with("resubmitted as"));
    // The resubmitted task resumed: its shard holds each item once, the merge all of them.
    let shard_now = frontier::store::summarize(&shard).unwrap();
    assert_eq!(shard_now.items, ITEMS_PER_CELL);
    assert_eq!(shard_now.status.as_deref(), Some("done"));
    let merged = items(&out.join("results.sqlite"));
    assert_eq!(merged.len(), 4 * ITEMS_PER_CELL);
    let log = std::fs::read_dir(out.join("slurm/logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("cell-2.job-{}", again["job"].as_str().unwrap()))
        })
        .expect("the resubmitted task's log");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("already stored"), "{log}");

    // --status shows the resubmission and the cancelled task's state.
    let o = output_within(frontier().args(["sweep", "--status"]).arg(&out), 30);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains(&format!("cell 2 task {task}: CANCELLED")),
        "{table}"
    );
}

/// Runs cell `n` of the grid as an array task would (no Slurm needed).
fn run_cell(refs: &[&Path], out: &Path, n: usize) {
    ok(&output_within(
        &mut sweep(refs, out, &["--cell", &n.to_string()]),
        120,
    ));
}

#[test]
fn the_merge_keeps_duplicates_once_and_refuses_mixed_builds() {
    let dir = tempfile::tempdir().unwrap();
    let models = four_models(dir.path(), None);
    let refs: Vec<&Path> = models[..2].iter().map(PathBuf::as_path).collect();
    let out = dir.path().join("out");
    run_cell(&refs, &out, 0);
    run_cell(&refs, &out, 1);
    // The same cell twice (as a resubmitted task copied elsewhere would leave it).
    std::fs::copy(
        out.join("shards/cell-0.sqlite"),
        out.join("shards/cell-0-again.sqlite"),
    )
    .unwrap();
    let o = output_within(frontier().arg("report").arg(&out), 60);
    let stderr = ok(&o);
    assert!(
        stderr.contains(&format!(
            "merged 3 shards: 3 cells, {} items added, {ITEMS_PER_CELL} already there",
            2 * ITEMS_PER_CELL
        )),
        "{stderr}"
    );
    let merged = items(&out.join("results.sqlite"));
    assert_eq!(merged.len(), 2 * ITEMS_PER_CELL);
    // Merging again adds nothing.
    let o = output_within(frontier().arg("report").arg(&out), 60);
    assert!(ok(&o).contains("0 items added"));
    assert_eq!(items(&out.join("results.sqlite")), merged);

    // A shard from another frontier build is refused (exit 2) unless --allow-mixed.
    let conn = rusqlite::Connection::open(out.join("shards/cell-1.sqlite")).unwrap();
    conn.execute(
        "UPDATE cells SET config_json = json_set(config_json, '$.frontier', 'frontier 0.0.1 (other)')",
        [],
    )
    .unwrap();
    drop(conn);
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(fresh.join("shards")).unwrap();
    for f in ["cell-0.sqlite", "cell-1.sqlite"] {
        std::fs::copy(out.join("shards").join(f), fresh.join("shards").join(f)).unwrap();
    }
    let o = output_within(frontier().arg("report").arg(&fresh), 60);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("frontier builds") && stderr.contains("--allow-mixed"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let o = output_within(
        frontier().arg("report").arg(&fresh).arg("--allow-mixed"),
        60,
    );
    ok(&o);
    assert_eq!(items(&fresh.join("results.sqlite")), merged);
}

#[test]
fn without_slurm_the_executor_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let models = four_models(dir.path(), None);
    let o = output_within(
        sweep(
            &[&models[0]],
            &dir.path().join("out"),
            &["--executor", "slurm"],
        )
        .env("PATH", "/nonexistent"),
        30,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Slurm is not installed here"), "{stderr}");
    let o = output_within(
        &mut sweep(
            &[&models[0]],
            &dir.path().join("out"),
            &["--partition", "gpu"],
        ),
        30,
    );
    assert_eq!(o.status.code(), Some(2));
    let o = output_within(frontier().args(["sweep", "--status"]).arg(dir.path()), 30);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no Slurm sweep here"));
}

/// The real test models, one cell each, through Slurm and locally: the same items, MMLU's
/// log-probabilities to the last bit (GSM8K's generations are left to the fake tests: on two
/// cores they would take minutes here).
#[test]
fn real_models_give_the_same_items_through_slurm() {
    let names = [
        common::SMOLLM_Q4_K_M,
        common::SMOLLM_Q8_0,
        common::SMOLLM_F16,
        common::GEMMA_Q4_K_M,
    ];
    let models: Vec<PathBuf> = names.iter().map(|n| common::models_dir().join(n)).collect();
    if let Some(m) = models.iter().find(|m| !m.is_file()) {
        eprintln!(
            "skipped: test model {} is missing (scripts/test-models)",
            m.display()
        );
        return;
    }
    if !slurm_up() {
        return;
    }
    let list: Vec<String> = models.iter().map(|m| m.display().to_string()).collect();
    let real = |out: &Path, extra: &[&str]| {
        let mut cmd = frontier();
        cmd.args(["sweep", "--threads", "1", "--models"])
            .arg(list.join(","))
            .args(["--tasks", "mmlu", "--subjects", "anatomy,astronomy"])
            .args(["--limit", "mmlu=2", "--serve-ctx", "256"])
            .args(extra)
            .arg("--out")
            .arg(out);
        cmd
    };
    let dir = tempfile::tempdir().unwrap();
    let (local, array) = (dir.path().join("local"), dir.path().join("array"));
    ok(&output_within(&mut real(&local, &[]), 900));
    ok(&output_within(
        &mut real(&array, &["--executor", "slurm"]),
        900,
    ));
    let (l, a) = (
        items(&local.join("results.sqlite")),
        items(&array.join("results.sqlite")),
    );
    assert_eq!(l.len(), 4 * 4);
    assert_eq!(l, a);
    assert_eq!(scores(&local), scores(&array));
}
