//! `frontier chat` driven through scripted stdin (two turns, /stats, /reset, end of input)
//! and `frontier demo` on the real small model.

mod common;

use common::{frontier, model, SMOLLM_Q4_K_M};

#[test]
fn chat_two_turns_reset_and_eof() {
    let out = frontier()
        .args(["chat", "--max-tokens", "12", "-t", "2"])
        .arg(model(SMOLLM_Q4_K_M))
        .write_stdin("What is 2 + 2?\n/stats\nAnd 3 + 3? \\\nAnswer briefly.\n/reset\n/bogus\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "two replies: {stdout}"
    );
    assert!(
        stderr.contains("last reply: ") && stderr.contains("tokens/s"),
        "{stderr}"
    );
    assert!(stderr.contains("(conversation cleared)"), "{stderr}");
    assert!(stderr.contains("unknown command /bogus"), "{stderr}");
    assert!(
        stderr.contains("template chat: embedded chatml"),
        "{stderr}"
    );
}

#[test]
fn demo_runs_each_model_and_reports_speed() {
    let out = frontier()
        .args(["demo", "chat", "--max-tokens", "8", "-t", "2", "--models"])
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    common::assert_success(&out);
    assert!(
        stdout.starts_with("=== SmolLM2-135M-Instruct.Q4_K_M.gguf"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("tokens/s").count(),
        2,
        "two turns of the chat demo: {stdout}"
    );
}
