//! The habits users bring from llama-bench, lm-eval and the shell, through the real binary:
//! a closed pipe ends quietly with 0, SIGTERM stops a run cleanly, llama-bench's flags and
//! grid and CSV header, lm-eval's results files read by lm-eval's own table printer, one
//! way to name a model with "did you mean", the small input checks, completions, man pages
//! and the config file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake::fake_model;
use common::{frontier, model, SMOLLM_Q4_K_M};

fn bin() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("frontier"));
    c.env(
        "FRONTIER_CACHE_DIR",
        std::env::temp_dir().join("frontier-test-cache"),
    );
    c
}

/// A small fake-engine eval store to list, show and report.
fn fake_store(dir: &Path) -> PathBuf {
    let m = fake_model(dir, "tiny", &[]);
    let out = dir.join("store");
    let o = bin()
        .args(["eval", "--backend", "fake"])
        .arg(&m)
        .args([
            "--tasks",
            "mmlu,gsm8k",
            "--subjects",
            "anatomy",
            "--limit",
            "mmlu=3,gsm8k=2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Runs with stdout a pipe whose reading end is already closed (`… | head` after its line):
/// every write fails with EPIPE.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = bin()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly_with_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = fake_store(dir.path());
    let s = store.to_str().unwrap();
    let m = model(SMOLLM_Q4_K_M);
    let file = m.to_str().unwrap();
    let fake = fake_model(dir.path(), "fast", &[]);
    let fake = fake.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["list"],
        vec!["list", "--json"],
        vec!["plan", "--ram", "4GiB", "--offline"],
        vec!["plan", "--ram", "4GiB", "--offline", "--json"],
        vec!["inspect", file, "--no-hash"],
        vec!["inspect", file, "--no-hash", "--json"],
        vec!["version"],
        vec!["version", "--json"],
        vec!["show", s],
        vec!["show", s, "--json"],
        vec!["show", s, "anatomy/0"],
        vec!["report", s],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["sandbox-check"],
        vec![
            "speed",
            "--backend",
            "fake",
            fake,
            "-p",
            "8",
            "-n",
            "4",
            "-r",
            "1",
            "-o",
            "csv",
        ],
    ];
    for args in cases {
        let o = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
    }
}

fn stored_items(out: &Path) -> usize {
    let Ok(store) = frontier::store::Store::open(&out.join("results.sqlite")) else {
        return 0;
    };
    let runs = store.task_runs(None).unwrap_or_default();
    runs.iter()
        .map(|t| store.items(t.id).map_or(0, |i| i.len()))
        .sum()
}

/// The children of a process (spawned from any of its threads), from /proc.
fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|state| state != "Z"))
}

#[test]
fn sigterm_mid_eval_keeps_every_finished_item_and_leaves_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let m = fake_model(dir.path(), "slow", &[("delay_ms", "150")]);
    let out = dir.path().join("out");
    let child = bin()
        .args(["eval", "--backend", "fake"])
        .arg(&m)
        .args([
            "--tasks",
            "mmlu",
            "--subjects",
            "anatomy",
            "--limit",
            "40",
            "--parallel",
            "1",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while stored_items(&out) < 3 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let workers = children(child.id());
    assert!(!workers.is_empty(), "a worker is running");
    // SIGTERM to the parent alone (as `kill`, a Slurm limit or a container stop send it).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("interrupted: rerun the same command to resume"),
        "{stderr}"
    );
    let stored = stored_items(&out);
    assert!((3..40).contains(&stored), "{stored}");
    std::thread::sleep(Duration::from_millis(300));
    for w in workers {
        assert!(!alive(w), "worker {w} is still running");
    }
    // The cell is incomplete, not failed, and the rerun finishes it without redoing any.
    let o = bin()
        .args(["eval", "--backend", "fake"])
        .arg(&m)
        .args([
            "--tasks",
            "mmlu",
            "--subjects",
            "anatomy",
            "--limit",
            "40",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} items scored now, {stored} already stored",
            40 - stored
        )),
        "{stderr}"
    );
}

/// llama-bench's CSV fields in its order (this llama.cpp's `llama-bench -o csv` header).
const LLAMA_BENCH_HEADER: &str = "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,cpu_mask,cpu_strict,poll,type_k,type_v,n_gpu_layers,n_cpu_moe,split_mode,main_gpu,no_kv_offload,flash_attn,devices,tensor_split,tensor_buft_overrides,load_mode,lazy_mode,embeddings,no_op_offload,no_host,repack,fit_target,fit_min_ctx,n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts";

#[test]
fn speed_takes_llama_bench_flags_and_runs_its_grid() {
    let m = model(SMOLLM_Q4_K_M);
    let o = bin()
        .args(["speed", "-m"])
        .arg(&m)
        .args([
            "-p", "32,64", "-n", "8", "-t", "1,2", "-r", "1", "-ngl", "0", "-fa", "0", "-ctk",
            "q8_0", "-o", "csv",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let csv = String::from_utf8(o.stdout).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..42].join(","),
        LLAMA_BENCH_HEADER,
        "llama-bench's fields first, in its order"
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // llama-bench's grid: per thread count, pp32, pp64, then tg8.
    let grid: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row[col("n_threads")].to_string(),
                row[col("n_prompt")].to_string(),
                row[col("n_gen")].to_string(),
            )
        })
        .collect();
    let want = [
        ("1", "32", "0"),
        ("1", "64", "0"),
        ("1", "0", "8"),
        ("2", "32", "0"),
        ("2", "64", "0"),
        ("2", "0", "8"),
    ];
    assert_eq!(
        grid,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    for row in &rows {
        assert_eq!(&row[col("type_k")], "q8_0");
        assert_eq!(&row[col("type_v")], "f16");
        assert_eq!(&row[col("flash_attn")], "0");
        assert_eq!(&row[col("n_gpu_layers")], "0");
        assert!(row[col("avg_ts")].parse::<f64>().unwrap() > 0.0);
        assert_eq!(row[col("samples_ns")].split(' ').count(), 1);
    }
}

/// A Python with lm-eval installed (scripts/lm-eval-venv makes one under ~/.cache).
fn lm_eval_python() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lm-eval-venv");
    let o = Command::new(&script).arg("--print-only").output().ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    (o.status.success() && path.is_file()).then_some(path)
}

#[test]
fn lm_evals_own_table_printer_reads_our_results() {
    let dir = tempfile::tempdir().unwrap();
    let m = fake_model(dir.path(), "tiny", &[]);
    let out = dir.path().join("out");
    let o = bin()
        .args(["eval", "--backend", "fake"])
        .arg(&m)
        .args([
            "--tasks",
            "mmlu,gsm8k,humaneval",
            "--subjects",
            "anatomy,astronomy,philosophy",
        ])
        .args([
            "--limit",
            "mmlu=4,gsm8k=3,humaneval=2",
            "--format",
            "raw",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let folder = out.join("lm-eval").join("tiny.gguf");
    let mut results: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    results.sort();
    let result = results
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("results_")
        })
        .unwrap();
    for task in [
        "mmlu_anatomy",
        "mmlu_astronomy",
        "mmlu_philosophy",
        "gsm8k",
        "humaneval",
    ] {
        assert!(
            results.iter().any(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with(&format!("samples_{task}_")) && n.ends_with(".jsonl")
            }),
            "samples of {task}: {results:?}"
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(result).unwrap()).unwrap();
    assert!(v["results"]["mmlu"]["acc,none"].is_f64());
    assert!(v["results"]["gsm8k"]["exact_match,strict-match"].is_f64());
    assert!(v["results"]["humaneval"]["pass@1,create_test"].is_f64());
    assert_eq!(v["n-samples"]["gsm8k"]["effective"], 3);
    let Some(python) = lm_eval_python() else {
        eprintln!(
            "skipping the make_table check: no lm-eval venv (scripts/lm-eval-venv makes one)"
        );
        return;
    };
    let o = Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom lm_eval.utils import make_table\nr = json.load(open(sys.argv[1]))\nprint(make_table(r))\nprint(make_table(r, 'groups'))",
        ])
        .arg(result)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for row in [
        "|mmlu ",
        "| - humanities",
        "|  - philosophy",
        "|gsm8k",
        "strict-match",
        "flexible-extract",
        "|humaneval",
        "pass@1",
    ] {
        assert!(table.contains(row), "{row} missing from:\n{table}");
    }
    println!("{table}");
}

#[test]
fn unknown_names_say_what_was_meant_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["eval", "smolm2-135m:Q4_K_M", "--tasks", "mmlu"],
        vec!["sweep", "--models", "smolm2-135m", "--tasks", "mmlu"],
        vec!["fetch", "smolm2-135m:Q4_K_M"],
        vec!["inspect", "smolm2-135m"],
        vec!["speed", "smolm2-135m"],
    ] {
        let o = frontier()
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("did you mean 'smollm2-135m'?"),
            "{args:?}: {stderr}"
        );
    }
    let o = frontier()
        .args([
            "eval",
            "x.gguf",
            "--tasks",
            "mmlu",
            "--subjects",
            "astronomyy",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr.contains("did you mean 'astronomy'?") || stderr.contains("x.gguf"),
        "{stderr}"
    );
}

#[test]
fn small_input_mistakes_are_refused_with_exit_2() {
    let cases: [(&[&str], &str); 9] = [
        (&["plan", "--ram", "0"], "--ram 0"),
        (
            &["plan", "--ram", "99999999999999999999999GiB"],
            "too large",
        ),
        (
            &["plan", "--ram", "4GiB", "--offline", "--quants", "Q9_X"],
            "Q9_X",
        ),
        (
            &["eval", "m.gguf", "--tasks", "mmlu", "--limit", "mmlu=abc"],
            "--limit mmlu=abc",
        ),
        (
            &[
                "eval",
                "m.gguf",
                "--tasks",
                "mmlu",
                "--limit",
                "mmlu=5,mmlu=6",
            ],
            "limited twice",
        ),
        (
            &["eval", "m.gguf", "--tasks", "mmlu", "--limit", "gsm8k=5"],
            "not among --tasks",
        ),
        (
            &["speed", "m.gguf", "-ctk", "q8-0"],
            "unknown KV cache type 'q8-0'",
        ),
        (
            &["speed", "m.gguf", "-p", "0", "-n", "0"],
            "nothing to measure",
        ),
        (&["completions", "tcsh"], "invalid value 'tcsh'"),
    ];
    for (args, words) in cases {
        let o = frontier().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // `show --json` lists task runs as JSON.
    let dir = tempfile::tempdir().unwrap();
    let store = fake_store(dir.path());
    let o = frontier()
        .arg("show")
        .arg(&store)
        .arg("--json")
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn completions_man_pages_and_the_config_file() {
    let o = frontier().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("_frontier()"));
    let o = frontier().args(["completions", "fish"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("complete -c frontier"));
    let dir = tempfile::tempdir().unwrap();
    let o = frontier()
        .arg("man")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let page = std::fs::read_to_string(dir.path().join("frontier.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH frontier"),
        "{page}"
    );
    assert!(dir.path().join("frontier-sweep.1").is_file());
    // The config file gives `plan` its --ram; the command line still wins.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[plan]\nram = \"1GiB\"\noffline = true\njson = true\n",
    )
    .unwrap();
    let o = frontier()
        .env("FRONTIER_CONFIG", &config)
        .args(["plan", "--models", "smollm2-135m"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let first = &rows[0];
    assert_eq!(
        first["headroom"].as_i64().unwrap() + first["estimate"]["total"].as_i64().unwrap(),
        1 << 30,
        "{rows}"
    );
    std::fs::write(&config, "[plan]\nrma = \"1GiB\"\n").unwrap();
    let o = frontier()
        .env("FRONTIER_CONFIG", &config)
        .args(["plan", "--ram", "4GiB"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no --rma"));
}
