//! The sweep through the real binary on the scripted engine (`--backend fake`): resume after
//! SIGKILL, a worker that aborts mid-cell, an OOM kill under a memory cap, a load failure,
//! items too long for the context, and the reports — in seconds, without a model.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake::fake_model;

const SUBJECTS: &str = "abstract_algebra,anatomy,astronomy";

fn sweep(models: &[&Path], out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("frontier"));
    let list: Vec<String> = models.iter().map(|m| m.display().to_string()).collect();
    cmd.env(
        "FRONTIER_CACHE_DIR",
        std::env::temp_dir().join("frontier-test-cache"),
    )
    .args(["sweep", "--backend", "fake", "--models"])
    .arg(list.join(","))
    .args([
        "--tasks",
        "mmlu,gsm8k,humaneval,speed",
        "--subjects",
        SUBJECTS,
    ])
    .args([
        "--limit",
        "mmlu=4,gsm8k=6,humaneval=2",
        "-p",
        "64",
        "-n",
        "16",
        "-r",
        "1",
    ])
    .args(extra)
    .arg("--out")
    .arg(out);
    cmd
}

fn stored_items(out: &Path) -> usize {
    let path = out.join("results.sqlite");
    let Ok(store) = frontier::store::Store::open(&path) else {
        return 0;
    };
    let runs = store.task_runs(None).unwrap_or_default();
    runs.iter()
        .map(|t| store.items(t.id).map_or(0, |i| i.len()))
        .sum()
}

fn comparison(out: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(out.join("comparison.csv")).unwrap();
    r.records().map(Result::unwrap).collect()
}

/// 3 subjects × 4 MMLU questions + 6 GSM8K problems + 2 HumanEval programs (run in the
/// sandbox: the fake's replies fail their tests).
const ITEMS_PER_CELL: usize = 20;

/// Runs a command to its end, failing the test if it takes more than `secs` (a hang, e.g. a
/// cell that never ends, must not stall the suite).
fn output_within(cmd: &mut Command, secs: u64) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            child.wait().unwrap();
            let err = stderr.join().unwrap();
            panic!(
                "still running after {secs} s: {}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

#[test]
fn a_crash_fails_one_cell_and_the_rerun_completes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let good = fake_model(dir.path(), "good", &[("pp_ts", "800"), ("tg_ts", "90")]);
    let crashing = fake_model(dir.path(), "crashing", &[("crash_after", "5")]);
    let refused = fake_model(
        dir.path(),
        "refused",
        &[("fail", "unsupported tensor type")],
    );
    let out = dir.path().join("out");
    // One item per decode, so the crash comes after exactly 5 answers.
    let one_at_a_time = ["--parallel", "1"];
    let o = output_within(
        &mut sweep(&[&good, &crashing, &refused], &out, &one_at_a_time),
        120,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "a failed cell exits 1: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The good cell is whole; the crashing one kept the 5 answers before its abort.
    assert_eq!(stored_items(&out), ITEMS_PER_CELL + 5, "{stderr}");
    let rows = comparison(&out);
    assert_eq!(rows.len(), 3);
    let by_model = |m: &str| rows.iter().find(|r| &r[0] == m).unwrap().clone();
    assert_eq!(&by_model("good")[3], "done");
    let crashed = by_model("crashing");
    assert_eq!(&crashed[3], "failed");
    let error = crashed.get(crashed.len() - 1).unwrap();
    assert!(
        error.contains("killed by signal 6 (SIGABRT)") && error.contains("scripted crash"),
        "the cell's error names the abort and its last words: {error}"
    );
    let unloaded = by_model("refused");
    assert!(
        unloaded[unloaded.len() - 1]
            .ends_with("the fake engine could not load it: unsupported tensor type"),
        "a model that does not load is its cell's failure: {unloaded:?}"
    );
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("## Failed cells"), "{md}");
    // Speed came from the fake's script.
    let header = csv::Reader::from_path(out.join("comparison.csv"))
        .unwrap()
        .headers()
        .unwrap()
        .clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&by_model("good")[col("pp_ts")], "800.00");
    assert_eq!(&by_model("good")[col("tg_ts")], "90.00");

    // A rerun resumes: the good cell's items are not recomputed, the crashing cell again
    // stores 5 more before its next abort (it counts per process).
    let before = stored_items(&out);
    let o = output_within(
        &mut sweep(&[&good, &crashing, &refused], &out, &one_at_a_time),
        120,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("5 items scored now, {before} already stored")),
        "{stderr}"
    );
    assert_eq!(stored_items(&out), before + 5);
}

#[test]
fn killed_with_sigkill_mid_sweep_the_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let a = fake_model(dir.path(), "slow-a", &[("delay_ms", "60")]);
    let b = fake_model(dir.path(), "slow-b", &[("delay_ms", "60")]);
    let out = dir.path().join("out");
    let mut child = sweep(&[&a, &b], &out, &["--parallel", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while stored_items(&out) < ITEMS_PER_CELL / 2 && start.elapsed() < Duration::from_secs(60) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = stored_items(&out);
    assert!((ITEMS_PER_CELL / 2..2 * ITEMS_PER_CELL).contains(&before));

    let o = sweep(&[&a, &b], &out, &["--parallel", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let now = 2 * ITEMS_PER_CELL - before;
    assert!(
        stderr.contains(&format!("{now} items scored now, {before} already stored")),
        "{stderr}"
    );
    assert_eq!(
        stored_items(&out),
        2 * ITEMS_PER_CELL,
        "each item exactly once"
    );
    // The same store read twice gives the same reports.
    let first = std::fs::read(out.join("comparison.csv")).unwrap();
    let o = Command::new(assert_cmd::cargo::cargo_bin("frontier"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(std::fs::read(out.join("comparison.csv")).unwrap(), first);
}

#[test]
fn a_worker_over_its_memory_cap_is_oom_killed_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let hog = fake_model(dir.path(), "hog", &[("alloc_mib", "400")]);
    let light = fake_model(dir.path(), "light", &[]);
    let out = dir.path().join("out");
    let o = output_within(
        &mut sweep(
            &[&hog, &light],
            &out,
            &["--mem-limit", "128MiB", "--mem-cap", "cgroup"],
        ),
        120,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("no memory cgroup can be created here") {
        eprintln!("skipped: this machine cannot make a memory cgroup: {stderr}");
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let rows = comparison(&out);
    let header = csv::Reader::from_path(out.join("comparison.csv"))
        .unwrap()
        .headers()
        .unwrap()
        .clone();
    let fits = header.iter().position(|h| h == "fits_128MiB").unwrap();
    let row = |m: &str| rows.iter().find(|r| &r[0] == m).unwrap().clone();
    assert_eq!(&row("hog")[fits], "OOM-killed", "{:?}", row("hog"));
    assert_eq!(&row("light")[fits], "fits", "{:?}", row("light"));
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("Best under 128 MiB: **light"), "{md}");
    let memory = std::fs::read_to_string(out.join("memory.md")).unwrap();
    assert!(memory.contains("OOM-killed"), "{memory}");
}

#[test]
fn prompts_too_long_for_the_context_are_recorded_per_item() {
    let dir = tempfile::tempdir().unwrap();
    // The fake's tokens are bytes: European history's 5-shot prompts (long passages) pass the
    // model's 4,096-token context; anatomy's first three take 1,366, 1,330 and 1,147 cells,
    // so a context of 1,300 keeps the third.
    let model = fake_model(dir.path(), "small-context", &[]);
    let out = dir.path().join("out");
    let o = Command::new(assert_cmd::cargo::cargo_bin("frontier"))
        .args([
            "eval",
            "--backend",
            "fake",
            "--tasks",
            "mmlu",
            "--limit",
            "3",
        ])
        .args(["--subjects", "high_school_european_history,anatomy"])
        .args(["--ctx", "1300"])
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let store = frontier::store::Store::open(&out.join("results.sqlite")).unwrap();
    let tr = store.task_runs(None).unwrap()[0].id;
    let errors: Vec<(String, String)> = store
        .items(tr)
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                i.item_id,
                i.detail["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let error_of = |id: &str| &errors.iter().find(|(i, _)| i == id).unwrap().1;
    for k in 0..3 {
        let e = error_of(&format!("high_school_european_history/{k}"));
        assert!(e.contains("the model's context is 4096"), "{e}");
    }
    assert!(error_of("anatomy/0")
        .contains("needs 1366 tokens of context; each of the 1 sequences' context is 1300"));
    assert!(error_of("anatomy/1").contains("context is 1300"));
    assert_eq!(error_of("anatomy/2"), "", "the one that fits is scored");
}
