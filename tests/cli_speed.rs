//! `frontier speed` through the real binary on real models: output formats, per-model peak
//! RSS from the worker, and a crashing model that does not stop the others.

mod common;

use common::{frontier, model, GEMMA_Q4_K_M, SMOLLM_Q4_K_M, SMOLLM_Q8_0};
use serde_json::Value;

fn rows(stdout: &[u8]) -> Vec<Value> {
    serde_json::from_slice::<Vec<Value>>(stdout).expect("speed --output json prints a JSON array")
}

#[test]
fn json_rows_carry_speed_memory_and_provenance() {
    let out = frontier()
        .args([
            "speed", "-p", "64", "-n", "16", "-r", "2", "-t", "2", "--output", "json",
        ])
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    common::assert_success(&out);
    let rows = rows(&out.stdout);
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp64", "tg16"]);
    let file_size = std::fs::metadata(model(SMOLLM_Q4_K_M)).unwrap().len();
    for r in &rows {
        assert!(r["avg_ts"].as_f64().unwrap() > 0.0);
        assert_eq!(r["reps"], 2);
        assert_eq!(r["n_threads"], 2);
        assert_eq!(r["model_size"].as_u64().unwrap(), file_size);
        // The worker touched every weight page, so its peak RSS holds the weights.
        let peak = r["peak_rss_bytes"].as_u64().unwrap();
        assert!(
            peak > file_size / 2 && peak < file_size * 4,
            "peak {peak} vs file {file_size}"
        );
        assert!(r["load_ms"].as_f64().unwrap() > 0.0);
        // Time to first token belongs to the prompt test.
        if r["test"] == "pp64" {
            assert!(r["ttft_ms"].as_f64().unwrap() > 0.0);
        } else {
            assert!(r["ttft_ms"].is_null());
        }
        assert!(r["kv_cache_bytes"].as_u64().unwrap() > 0);
        assert!(r["llama_cpp"].as_str().unwrap().contains("llama-cpp-sys-2"));
        assert!(r["error"].is_null());
    }
}

#[test]
fn peak_rss_is_per_model() {
    // The bigger file must show the bigger peak: each model has its own process.
    let out = frontier()
        .args([
            "speed", "-p", "32", "-n", "0", "-r", "1", "--output", "json",
        ])
        .arg(model(SMOLLM_Q4_K_M))
        .arg(model(GEMMA_Q4_K_M))
        .output()
        .unwrap();
    common::assert_success(&out);
    let rows = rows(&out.stdout);
    let small = rows[0]["peak_rss_bytes"].as_u64().unwrap();
    let big = rows[1]["peak_rss_bytes"].as_u64().unwrap();
    assert!(
        big > small + (100 << 20),
        "gemma {big} should exceed smollm {small} by its larger weights"
    );
}

#[test]
fn a_crashing_model_is_reported_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("speed.csv");
    let out = frontier()
        .env("FRONTIER_WORKER_FAULT", "abort:Q8_0")
        .args(["speed", "-p", "16", "-n", "4", "-r", "1", "--out"])
        .arg(&out_csv)
        .arg(model(SMOLLM_Q8_0))
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed model makes the run fail: {stderr}"
    );
    assert!(stderr.contains("killed by signal 6 (SIGABRT)"), "{stderr}");
    let mut reader = csv::Reader::from_path(&out_csv).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let headers = reader.headers().unwrap().clone();
    let col = |r: &csv::StringRecord, name: &str| {
        r[headers.iter().position(|h| h == name).unwrap()].to_string()
    };
    assert_eq!(records.len(), 3, "one failed row, two measured rows");
    assert!(col(&records[0], "error").contains("SIGABRT"));
    assert!(
        col(&records[0], "error").contains("GGML_ASSERT"),
        "stderr tail kept"
    );
    assert_eq!(col(&records[1], "test"), "pp16");
    assert!(col(&records[1], "error").is_empty());
}

/// The worker's peak RSS (wait4 ru_maxrss) is what GNU time reports for the same run.
#[test]
fn peak_rss_agrees_with_gnu_time() {
    if !std::path::Path::new("/usr/bin/time").exists() {
        eprintln!("skipping: /usr/bin/time (GNU time) is not installed");
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin("frontier");
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(bin)
        .args([
            "speed", "-q", "-p", "64", "-n", "8", "-r", "1", "--output", "json",
        ])
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    common::assert_success(&out);
    let ours = rows(&out.stdout)[0]["peak_rss_bytes"].as_u64().unwrap() as f64;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib: f64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .expect("GNU time output")
        .trim()
        .parse()
        .unwrap();
    let ratio = ours / (kib * 1024.0);
    assert!(
        (0.95..=1.05).contains(&ratio),
        "ours {ours} vs time -v {} KiB: {ratio}",
        kib
    );
}
