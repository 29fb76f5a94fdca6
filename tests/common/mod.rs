//! Shared helpers for the integration tests: where the real test models are, temp files.
#![allow(dead_code)]

use std::path::PathBuf;

/// The folder `scripts/test-models` fills (`$FRONTIER_TEST_MODELS`, default
/// `~/.cache/frontier/test-models`).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FRONTIER_TEST_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    PathBuf::from(home).join(".cache/frontier/test-models")
}

/// A test model by file name; fails with the command that fetches it when missing.
pub fn model(name: &str) -> PathBuf {
    let p = models_dir().join(name);
    assert!(
        p.is_file(),
        "test model {} is missing: run scripts/test-models (scripts/test does)",
        p.display()
    );
    p
}

pub const SMOLLM_Q4_K_M: &str = "SmolLM2-135M-Instruct.Q4_K_M.gguf";
pub const SMOLLM_Q8_0: &str = "SmolLM2-135M-Instruct.Q8_0.gguf";
pub const SMOLLM_F16: &str = "SmolLM2-135M-Instruct.F16.gguf";
pub const SMOLLM_Q4_1: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA_Q4_K_M: &str = "gemma-3-270m-q4_k_m.gguf";

pub fn frontier() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("frontier").expect("frontier binary");
    cmd.env(
        "FRONTIER_CACHE_DIR",
        std::env::temp_dir().join("frontier-test-cache"),
    );
    cmd
}

/// Fails the test with the command's stderr unless it exited 0.
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub mod browser;
pub mod fake;
