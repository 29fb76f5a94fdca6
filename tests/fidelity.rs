//! Quantization fidelity on the real test models: quants ordered by KL divergence from the
//! base, the base distributions reused from the cache, a rerun that compares nothing
//! again, a SIGKILL mid-comparison resumed by the sweep, the top-k bucket against the
//! exact divergence, and a model of another vocabulary refused with exit code 2.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// comparison.csv as quant → column → value.
fn fidelity_rows(out: &Path) -> HashMap<String, HashMap<String, String>> {
    let mut r = csv::Reader::from_path(out.join("comparison.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let row: HashMap<String, String> = header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect();
            (row["quant"].clone(), row)
        })
        .collect()
}

fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", row[col]))
}

fn fidelity(cache: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = frontier();
    cmd.env("FRONTIER_CACHE_DIR", cache)
        .arg("fidelity")
        .arg(model(SMOLLM_Q4_K_M))
        .arg(model(SMOLLM_Q8_0))
        .arg(model(SMOLLM_F16))
        .args(["--ctx", "128", "--chunks", "3", "-t", "2", "--out"])
        .arg(out)
        .args(extra);
    cmd.output().unwrap()
}

#[test]
fn quants_are_ordered_by_divergence_and_a_rerun_compares_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("out"));
    let o = fidelity(&cache, &out, &[]);
    assert_success(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("base distributions computed"), "{stderr}");
    assert!(
        stderr.contains("3 chunks compared now, 0 already stored"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("# Fidelity") && stdout.contains("Same top %"),
        "{stdout}"
    );

    let rows = fidelity_rows(&out);
    let (q4, q8, f16) = (&rows["Q4_K_M"], &rows["Q8_0"], &rows["F16"]);
    assert_eq!(f16["fidelity_base"], "F16");
    assert_eq!(num(f16, "kld_mean"), 0.0, "the base against itself");
    assert_eq!(
        num(q8, "fidelity_tokens"),
        3.0 * 63.0,
        "second halves of 3 chunks of 128"
    );
    assert!(num(q8, "kld_mean") > 0.0);
    // The fewer bits, the further from the base (the derived Q4_K_M is mostly Q5_0).
    assert!(
        num(q8, "kld_ci95_high") < num(q4, "kld_ci95_low"),
        "Q8_0 {:?} vs Q4_K_M {:?}",
        q8,
        q4
    );
    assert!(num(q8, "same_top") > num(q4, "same_top") - 0.02);
    assert!(num(q4, "kld_p99") >= num(q4, "kld_median"));
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("KLD vs base [95% CI]"), "{md}");
    assert!(
        md.contains("Q4_K_M vs F16 by KL divergence")
            && md.contains("distinguishable from the base"),
        "{md}"
    );
    assert!(
        md.contains("was itself made from"),
        "the derived base is footnoted: {md}"
    );

    // The same command again: nothing is compared again, the base file is reused.
    let o = fidelity(&cache, &out, &[]);
    assert_success(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("base distributions reused"), "{stderr}");
    assert!(
        stderr.contains("0 chunks compared now, 3 already stored"),
        "{stderr}"
    );
    assert_eq!(fidelity_rows(&out)["Q4_K_M"]["kld_mean"], q4["kld_mean"]);

    // Another store, same cache: the base is not run again, the numbers are the same.
    let other = dir.path().join("other");
    let o = fidelity(&cache, &other, &[]);
    assert_success(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("base distributions reused"));
    assert_eq!(fidelity_rows(&other)["Q4_K_M"]["kld_mean"], q4["kld_mean"]);
}

#[test]
fn the_tail_bucket_is_a_lower_bound_close_to_the_exact_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = |k: &str, out: &str| -> f64 {
        let out = dir.path().join(out);
        let o = frontier()
            .env("FRONTIER_CACHE_DIR", &cache)
            .arg("fidelity")
            .arg(model(SMOLLM_Q4_K_M))
            .args(["--base"])
            .arg(model(SMOLLM_F16))
            .args(["--ctx", "128", "--chunks", "2", "--tail", k, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert_success(&o);
        num(&fidelity_rows(&out)["Q4_K_M"], "kld_mean")
    };
    let exact = run("0", "exact");
    let bucket = run("1e-3", "default");
    let coarse = run("0.2", "coarse");
    assert!(bucket <= exact * (1.0 + 1e-6), "{bucket} > {exact}");
    assert!(coarse <= bucket * (1.0 + 1e-6), "{coarse} > {bucket}");
    assert!(
        bucket >= 0.99 * exact,
        "tail 1e-3: {bucket} vs exact {exact}"
    );
}

#[test]
fn a_model_with_another_vocabulary_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let o = frontier()
        .env("FRONTIER_CACHE_DIR", dir.path())
        .arg("fidelity")
        .arg(model(GEMMA_Q4_K_M))
        .arg("--base")
        .arg(model(SMOLLM_F16))
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("different vocabularies"), "{stderr}");
    // A --base that is neither a quant of the model nor a file.
    let o = frontier()
        .arg("fidelity")
        .arg(model(SMOLLM_Q4_K_M))
        .args(["--base", "BF16", "--out"])
        .arg(dir.path().join("out2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--base BF16"));
}

fn stored_chunks(out: &Path) -> Vec<(i64, String)> {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        out.join("results.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT chunk, created_at FROM fidelity_chunks ORDER BY chunk")
    else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn killed_with_sigkill_mid_fidelity_the_sweep_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("out"));
    let sweep = || {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("frontier"));
        cmd.env("FRONTIER_CACHE_DIR", &cache)
            .args(["sweep", "--models"])
            .arg(format!(
                "{},{}",
                model(SMOLLM_Q4_K_M).display(),
                model(SMOLLM_F16).display()
            ))
            .args([
                "--tasks",
                "fidelity",
                "--fidelity-ctx",
                "256",
                "--chunks",
                "12",
                "-t",
                "2",
                "--out",
            ])
            .arg(&out);
        cmd
    };
    let mut child = sweep()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while stored_chunks(&out).len() < 2 && start.elapsed() < Duration::from_secs(300) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = stored_chunks(&out);
    assert!((2..12).contains(&before.len()), "{before:?}");

    let o = sweep().output().unwrap();
    assert_success(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("base distributions reused"), "{stderr}");
    let after = stored_chunks(&out);
    assert_eq!(after.len(), 12, "every chunk exactly once");
    assert!(
        stderr.contains(&format!(
            "{} chunks compared now, {} already stored",
            12 - before.len(),
            before.len()
        )),
        "{stderr}"
    );
    // The chunks stored before the kill were kept, not compared again.
    for (chunk, at) in &before {
        assert!(
            after.contains(&(*chunk, at.clone())),
            "chunk {chunk} was redone"
        );
    }
    let rows = fidelity_rows(&out);
    assert_eq!(num(&rows["Q4_K_M"], "fidelity_tokens"), 12.0 * 127.0);
}
