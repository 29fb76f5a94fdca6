//! Bad input through the real binary: every kind of broken model file and bad name gives a
//! one-line error naming the file and the problem, exit code 2, and no panic or abort; and
//! what `frontier quantize` records about a source that was itself made from a lossy file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{frontier, model, SMOLLM_F16, SMOLLM_Q4_1};

struct BadFiles {
    _dir: tempfile::TempDir,
    cases: Vec<(&'static str, PathBuf, &'static str)>,
}

/// Every broken file, with the words its error must contain.
fn bad_files() -> BadFiles {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = fs::read(model(SMOLLM_Q4_1)).unwrap();

    let missing = d.join("missing.gguf");
    let directory = d.join("a-directory.gguf");
    fs::create_dir(&directory).unwrap();
    let empty = d.join("empty.gguf");
    fs::write(&empty, b"").unwrap();
    let text = d.join("notes.gguf");
    fs::write(&text, "these are my notes, not a model\n").unwrap();
    let header_cut = d.join("header-cut.gguf");
    fs::write(&header_cut, &real[..100_000]).unwrap();
    let data_cut = d.join("data-cut.gguf");
    fs::write(&data_cut, &real[..real.len() - 4096]).unwrap();

    BadFiles {
        cases: vec![
            ("missing file", missing, "no such file"),
            ("directory", directory, "is a directory"),
            ("zero-byte file", empty, "empty file"),
            ("text renamed .gguf", text, "not a GGUF file"),
            ("truncated header", header_cut, "truncated GGUF header"),
            ("truncated tensor data", data_cut, "truncated tensor data"),
        ],
        _dir: dir,
    }
}

fn assert_one_line_error(out: &std::process::Output, file: &Path, words: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{case}: exit code, stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{case}: expected one line, got: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("error: "), "{case}: {line}");
    assert!(
        line.contains(&file.display().to_string()),
        "{case}: file not named: {line}"
    );
    assert!(
        line.contains(words),
        "{case}: expected '{words}' in: {line}"
    );
    assert!(!stderr.contains("panicked"), "{case}: panic: {stderr}");
}

#[test]
fn inspect_rejects_every_bad_file() {
    let bad = bad_files();
    for (case, file, words) in &bad.cases {
        let out = frontier().arg("inspect").arg(file).output().unwrap();
        assert_one_line_error(&out, file, words, case);
        assert!(out.stdout.is_empty(), "{case}: nothing on stdout");
    }
}

#[test]
fn speed_rejects_every_bad_file_before_loading_anything() {
    let bad = bad_files();
    for (case, file, words) in &bad.cases {
        let out = frontier()
            .args(["speed", "-p", "8", "-n", "4", "-r", "1"])
            .arg(model(SMOLLM_Q4_1))
            .arg(file)
            .output()
            .unwrap();
        assert_one_line_error(&out, file, words, case);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("measuring"),
            "{case}: measured before validating: {stderr}"
        );
    }
}

#[test]
fn quantize_rejects_every_bad_file() {
    let bad = bad_files();
    let out_dir = tempfile::tempdir().unwrap();
    for (case, file, words) in &bad.cases {
        let dst = out_dir.path().join("out.gguf");
        let out = frontier()
            .arg("quantize")
            .arg(file)
            .arg(&dst)
            .arg("Q8_0")
            .output()
            .unwrap();
        assert_one_line_error(&out, file, words, case);
        assert!(!dst.exists(), "{case}: no output file may be left");
    }
}

#[test]
fn unknown_quant_type_is_bad_input() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = frontier()
        .arg("quantize")
        .arg(model(SMOLLM_Q4_1))
        .arg(out_dir.path().join("x.gguf"))
        .arg("Q9_X")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("unknown quantization type 'Q9_X'"),
        "{stderr}"
    );
    assert!(stderr.contains("Q4_K_M"), "lists the known types: {stderr}");
}

#[test]
fn quantize_refuses_to_overwrite_or_silently_requantize() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("exists.gguf");
    fs::write(&dst, b"keep me").unwrap();
    let out = frontier()
        .args(["quantize", "--allow-requantize"])
        .arg(model(SMOLLM_Q4_1))
        .arg(&dst)
        .arg("Q8_0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists (use --force"));
    assert_eq!(fs::read(&dst).unwrap(), b"keep me");

    let fresh = dir.path().join("fresh.gguf");
    let out = frontier()
        .arg("quantize")
        .arg(model(SMOLLM_Q4_1))
        .arg(&fresh)
        .arg("Q8_0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-requantize"));
    assert!(!fresh.exists());
}

/// The test F16 is Q4_1 dequantized; a quant made from it names the Q4_1 file as its source,
/// which is what bounds its quality (the reports' "quality is at most that of Q4_1").
#[test]
fn a_quant_of_a_derived_file_names_the_lossy_file_it_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("from-f16.Q4_0.gguf");
    let out = frontier()
        .args(["quantize", "-q"])
        .arg(model(SMOLLM_F16))
        .arg(&dst)
        .arg("Q4_0")
        .output()
        .unwrap();
    common::assert_success(&out);
    let inspect = |path: &Path| {
        let o = frontier()
            .args(["inspect", "--json"])
            .arg(path)
            .output()
            .unwrap();
        common::assert_success(&o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["quantized_from"].as_str().map(str::to_string)
    };
    let f16_from = inspect(&model(SMOLLM_F16)).expect("the test F16 records its Q4_1 source");
    assert!(f16_from.starts_with("Q4_1 "), "{f16_from}");
    assert_eq!(inspect(&dst).as_deref(), Some(f16_from.as_str()));
}

#[test]
fn bad_numbers_are_bad_input() {
    let out = frontier()
        .args(["speed", "-r", "0"])
        .arg(model(SMOLLM_Q4_1))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("repetitions must be at least 1"));
    let out = frontier()
        .args(["speed", "-p", "64", "--ctx", "16"])
        .arg(model(SMOLLM_Q4_1))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
