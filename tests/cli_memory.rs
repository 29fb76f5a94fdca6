//! Memory through the real binary: a cap below the weights refused up front, each capping
//! mechanism this machine offers holding a real model (OOM-killed below its needs, passing
//! above), a sweep that records a refused cell and goes on, and `plan` reading only GGUF
//! headers from a local Hub.

mod common;
use frontier_mock_hub as mock;

use common::{frontier, model, SMOLLM_F16, SMOLLM_Q4_K_M, SMOLLM_Q8_0};
use serde_json::Value;

/// `frontier speed` under a cap, its JSON rows, and its stderr.
fn capped_speed(file: &str, limit: &str, method: &str, force: bool) -> (bool, Vec<Value>, String) {
    capped_speed_with(file, limit, method, force, &[])
}

fn capped_speed_with(
    file: &str,
    limit: &str,
    method: &str,
    force: bool,
    extra: &[&str],
) -> (bool, Vec<Value>, String) {
    let mut cmd = frontier();
    cmd.args([
        "speed", "-p", "32", "-n", "8", "-r", "1", "-t", "2", "--output", "json",
    ])
    .args(["--mem-limit", limit, "--mem-cap", method])
    .args(extra)
    .arg(model(file));
    if force {
        cmd.arg("--force");
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("speed printed no JSON ({e}): {stderr}"));
    (out.status.success(), rows, stderr)
}

/// Whether this machine lets us make memory cgroups; prints why not when it does not.
fn cgroup_available() -> bool {
    let out = frontier()
        .args([
            "speed",
            "--mem-cap",
            "cgroup",
            "--mem-limit",
            "1GiB",
            "/nonexistent.gguf",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("no memory cgroup") {
        eprintln!(
            "skipping: no writable memory cgroup here ({})",
            stderr.trim()
        );
        return false;
    }
    true
}

fn verdict(rows: &[Value]) -> &str {
    rows[0]["mem_verdict"].as_str().unwrap_or("-")
}

#[test]
fn a_cap_below_the_weights_is_refused_before_loading() {
    let (ok, rows, stderr) = capped_speed(SMOLLM_F16, "200MiB", "watchdog", false);
    assert!(!ok, "a refused model is a failed measurement");
    assert_eq!(verdict(&rows), "refused", "{stderr}");
    assert!(stderr.contains("below the model's weights"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    // Nothing was loaded: no worker, no peak.
    assert_eq!(rows[0]["peak_rss_bytes"], 0);
    assert!(rows[0]["est_peak_bytes"].as_u64().unwrap() > 200 << 20);
}

#[test]
fn cgroup_cap_kills_f16_at_200_mib_and_passes_it_at_1_gib() {
    if !cgroup_available() {
        return;
    }
    // The weights read into memory (258 MiB of anonymous pages) cannot shrink under the
    // cap. Mapped, they can: on a CPU without AMX (whose weight copies are anonymous) the
    // kernel evicts and rereads their pages instead, and the verdict is thrashing.
    let (ok, rows, stderr) =
        capped_speed_with(SMOLLM_F16, "200MiB", "cgroup", true, &["--no-mmap"]);
    assert!(!ok);
    assert_eq!(verdict(&rows), "OOM-killed", "{stderr}");
    assert!(rows[0]["mem_mechanism"]
        .as_str()
        .unwrap()
        .starts_with("cgroup"));

    let (ok, rows, stderr) = capped_speed(SMOLLM_F16, "1GiB", "cgroup", false);
    assert!(ok, "{stderr}");
    for r in &rows {
        assert_eq!(r["mem_verdict"], "fits", "{stderr}");
        assert_eq!(r["use_mmap"], true);
        assert!(r["avg_ts"].as_f64().unwrap() > 0.0);
        // With mmap the weights are file-backed pages and the AMX/KV buffers anonymous.
        let (anon, file) = (
            r["peak_anon_bytes"].as_u64().unwrap(),
            r["peak_file_bytes"].as_u64().unwrap(),
        );
        assert!(file > 200 << 20, "file-backed {file}");
        assert!(anon > 0 && anon + file <= r["peak_rss_bytes"].as_u64().unwrap() + (8 << 20));
        // The uncapped rerun compares generation rates: the generation test has one.
        if r["n_gen"].as_u64().unwrap() > 0 {
            assert!(r["uncapped_tg_ts"].as_f64().unwrap() > 0.0);
        }
    }
}

#[test]
fn rlimit_cap_reads_the_weights_and_fails_allocations_above_it() {
    let (ok, rows, stderr) = capped_speed(SMOLLM_F16, "1GiB", "rlimit", false);
    assert!(ok, "{stderr}");
    assert_eq!(verdict(&rows), "fits", "{stderr}");
    assert_eq!(rows[0]["mem_mechanism"], "RLIMIT_AS (mmap off)");
    assert_eq!(
        rows[0]["use_mmap"], false,
        "RLIMIT_AS needs the weights read, not mapped"
    );
    assert!(stderr.contains("mmap off"), "{stderr}");

    let (ok, rows, stderr) = capped_speed(SMOLLM_F16, "300MiB", "rlimit", true);
    assert!(!ok);
    assert_eq!(verdict(&rows), "OOM-killed", "{stderr}");
}

#[test]
fn watchdog_stops_a_worker_above_the_cap() {
    let (ok, rows, stderr) = capped_speed(SMOLLM_Q8_0, "1GiB", "watchdog", false);
    assert!(ok, "{stderr}");
    assert_eq!(verdict(&rows), "fits", "{stderr}");

    // Below the 258 MiB of weights (forced past the refusal): resident memory passes the
    // cap on any CPU (with AMX, the weight copies add more).
    let (ok, rows, stderr) = capped_speed(SMOLLM_F16, "240MiB", "watchdog", true);
    assert!(!ok);
    assert_eq!(verdict(&rows), "OOM-killed", "{stderr}");
    assert!(stderr.contains("watchdog"), "{stderr}");
}

fn sweep_under(limit: &str, out: &std::path::Path) -> std::process::Output {
    let models = format!(
        "{},{}",
        model(SMOLLM_F16).display(),
        model(SMOLLM_Q4_K_M).display()
    );
    frontier()
        .args(["sweep", "--models", &models, "--tasks", "mmlu,speed"])
        .args([
            "--subjects",
            "anatomy",
            "--limit",
            "2",
            "-p",
            "32",
            "-n",
            "8",
            "-r",
            "1",
        ])
        .args(["--mem-limit", limit, "--mem-cap", "watchdog", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_sweep_records_a_refused_cell_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep_under("200MiB", &dir.path().join("small"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("Fits 200 MiB"), "{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(dir.path().join("small/comparison.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let fits = header
        .iter()
        .position(|h| *h == "fits_200MiB")
        .expect("fits column");
    let quant = header.iter().position(|h| *h == "quant").unwrap();
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .unwrap()
                .unwrap()
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    let f16 = rows.iter().find(|r| r[quant] == "F16").expect("F16 row");
    assert_eq!(f16[fits], "refused");
    // The other model still ran under the cap and has a verdict of its own.
    let q4 = rows
        .iter()
        .find(|r| r[quant] == "Q4_K_M")
        .expect("Q4_K_M row");
    assert!(
        ["fits", "thrashing", "OOM-killed"].contains(&q4[fits].as_str()),
        "{q4:?}"
    );
    let memory = std::fs::read_to_string(dir.path().join("small/memory.md")).unwrap();
    assert!(memory.contains("refused"), "{memory}");

    let out = sweep_under("1GiB", &dir.path().join("big"));
    common::assert_success(&out);
    let csv = std::fs::read_to_string(dir.path().join("big/comparison.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("fits_1GiB"), "{csv}");
    assert_eq!(
        csv.lines().skip(1).filter(|l| l.contains(",fits,")).count(),
        2,
        "{csv}"
    );
}

#[test]
fn llama_cpp_projects_the_same_kv_cache() {
    let out = frontier()
        .args([
            "inspect",
            "--no-hash",
            "--json",
            "--ctx",
            "2048",
            "--llama-projection",
        ])
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    common::assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["memory"][0];
    let ours = m["estimate"]["kv_cache"].as_u64().unwrap();
    let theirs = m["llama"]["context"].as_u64().unwrap();
    // llama.cpp reports whole MiB; its context row also holds the small output buffer.
    assert!(
        ours.abs_diff(theirs) <= 2 << 20,
        "KV {ours} vs llama.cpp {theirs}"
    );
    assert!(m["llama"]["total"].as_u64().unwrap() > 0);
}

#[test]
fn plan_verdicts_follow_its_arithmetic() {
    let out = frontier()
        .args([
            "plan",
            "--ram",
            "4GiB",
            "--offline",
            "--explain",
            "--ctx",
            "2048,8192",
        ])
        .args(["--models", "phi-2,gemma-2b,smollm2-1.7b,smollm3-3b"])
        .env("HF_HOME", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let table_rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('|') && l.contains("catalog shape"))
        .collect();
    assert_eq!(table_rows.len(), 4 * 3 * 2, "{text}");
    let verdicts: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("verdict:"))
        .collect();
    assert_eq!(verdicts.len(), table_rows.len());
    for (row, verdict) in table_rows.iter().zip(&verdicts) {
        let fits = !row.contains("does not fit");
        assert_eq!(
            verdict.contains("≤") && verdict.ends_with("→ fits"),
            fits,
            "{row}\n{verdict}"
        );
        // The expected peak in the table is the total of the arithmetic.
        let total = verdict
            .trim_start()
            .trim_start_matches("verdict: ")
            .split(['≤', '>'])
            .next()
            .unwrap()
            .trim();
        assert!(row.contains(total), "{row} vs {total}");
    }
}

const PLAN_CATALOG: &str = r#"
[[model]]
id = "smol-test"
name = "SmolLM2-135M-Instruct"
repos = ["test/SmolLM2-135M-Instruct-GGUF"]
"#;

#[test]
fn plan_reads_only_the_headers_from_the_hub() {
    // Through the real Hub's redirects: relative 307, then a 302 to the CDN host.
    let hub = mock::MockHub::start_like_hub();
    let repo = "test/SmolLM2-135M-Instruct-GGUF";
    for f in [SMOLLM_Q4_K_M, SMOLLM_Q8_0, SMOLLM_F16] {
        hub.add_file_from_disk("model", repo, f, &model(f));
    }
    let home = tempfile::tempdir().unwrap();
    let catalog = home.path().join("catalog.toml");
    std::fs::write(&catalog, PLAN_CATALOG).unwrap();
    let out = frontier()
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .args([
            "plan",
            "--ram",
            "1GiB",
            "--models",
            "smol-test",
            "--ctx",
            "2048",
            "--json",
            "--catalog",
        ])
        .arg(&catalog)
        .output()
        .unwrap();
    common::assert_success(&out);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    for f in [SMOLLM_Q4_K_M, SMOLLM_Q8_0, SMOLLM_F16] {
        let served = hub.bytes_served(repo, f);
        let size = std::fs::metadata(model(f)).unwrap().len();
        assert!(
            served > 0 && served <= 8 << 20,
            "{f}: {served} of {size} bytes served"
        );
        assert!(served * 10 < size, "{f}: {served} of {size} bytes served");
    }
    assert!(hub
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /cdn/") && r.contains(" bytes=0-")));
    // The estimate from the remote header is the one from the local file.
    let local = frontier()
        .args(["inspect", "--no-hash", "--json", "--ctx", "2048"])
        .arg(model(SMOLLM_F16))
        .output()
        .unwrap();
    let local: Value = serde_json::from_slice(&local.stdout).unwrap();
    let remote = rows.iter().find(|r| r["quant"] == "F16").unwrap();
    assert_eq!(
        remote["estimate"]["total"],
        local["memory"][0]["estimate"]["total"]
    );
    assert!(remote["source"].as_str().unwrap().starts_with("hub header"));
}
