//! `frontier eval` and `frontier show` through the real binary on the real small model:
//! items stored, a rerun recomputes nothing, any item can be shown with its prompt rebuilt
//! and verified.

mod common;

use common::{frontier, model, SMOLLM_Q4_K_M};

fn eval(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    frontier()
        .args([
            "eval",
            "--tasks",
            "mmlu,gsm8k",
            "--subjects",
            "anatomy,astronomy",
            "--limit",
            "3",
        ])
        .args(["--gsm8k-max-tokens", "48", "-t", "2", "--out"])
        .arg(out)
        .args(extra)
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap()
}

#[test]
fn eval_stores_items_resumes_and_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = eval(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("| mmlu "), "{stdout}");
    assert!(
        stdout.contains("strict_match") && stdout.contains("flexible_extract"),
        "{stdout}"
    );
    assert!(
        stderr.contains("9 items scored now, 0 already stored"),
        "{stderr}"
    );

    let again = eval(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("0 items scored now, 9 already stored"),
        "{stderr}"
    );

    // Generation steps of another shape give other outputs: GSM8K starts afresh (MMLU,
    // which scores without generating, resumes); the same shape asked another way resumes.
    for (extra, words) in [
        (
            &["--no-padding"][..],
            "3 items scored now, 6 already stored",
        ),
        (
            &["--batch-rows", "2"][..],
            "3 items scored now, 6 already stored",
        ),
        (
            &["--parallel", "4"][..],
            "0 items scored now, 9 already stored",
        ),
    ] {
        let other = eval(dir.path(), extra);
        let stderr = String::from_utf8_lossy(&other.stderr);
        assert!(other.status.success(), "{extra:?}: {stderr}");
        assert!(stderr.contains(words), "{extra:?}: {stderr}");
    }

    let show = frontier()
        .arg("show")
        .arg(dir.path())
        .args(["anatomy/0", "--prompt"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert!(text.contains("rebuilt and verified"), "{text}");
    assert!(
        text.contains("The following are multiple choice questions (with answers) about anatomy."),
        "{text}"
    );
    assert!(text.contains("gold:"), "{text}");

    let list = frontier().arg("show").arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("mmlu") && text.contains("6 items stored of 6"),
        "{text}"
    );
    // One GSM8K task run for each of the three shapes.
    assert_eq!(
        text.lines().filter(|l| l.contains(" gsm8k ")).count(),
        3,
        "{text}"
    );

    let missing = frontier()
        .arg("show")
        .arg(dir.path())
        .arg("nope/1")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn bad_eval_input_is_rejected_before_running() {
    let dir = tempfile::tempdir().unwrap();
    for (args, words) in [
        (
            vec!["--tasks", "mmlu,trivia"],
            "invalid value 'trivia' for '--tasks",
        ),
        (
            vec!["--subjects", "astrology"],
            "unknown MMLU subject 'astrology'",
        ),
        (vec!["--shots", "9"], "--shots 9"),
        (
            vec!["--limit", "0"],
            "is not a number of items (at least 1)",
        ),
        (vec!["--limit", "trivia=3"], "unknown task 'trivia'"),
        (
            vec!["--data-dir", "/nonexistent/data"],
            "no such data directory",
        ),
    ] {
        let out = frontier()
            .args(["eval", "--out"])
            .arg(dir.path())
            .args(&args)
            .arg(model(SMOLLM_Q4_K_M))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

#[test]
fn generation_refuses_fewer_slots_than_its_steps_have_rows() {
    // Half of what is left under a 400 MiB budget holds GSM8K's KV cache for one or two
    // sequences, not the 4 that steps of 4 rows need: the worker does not generate (other
    // outputs under the same key) but says what to do, and MMLU, after GSM8K in this order,
    // is still scored and stored.
    let dir = tempfile::tempdir().unwrap();
    let out = frontier()
        .args([
            "eval",
            "--tasks",
            "gsm8k,mmlu",
            "--subjects",
            "anatomy,astronomy",
        ])
        .args(["--limit", "3", "--gsm8k-max-tokens", "48", "-t", "2"])
        .args(["--mem-limit", "400MiB", "--mem-cap", "watchdog", "--out"])
        .arg(dir.path())
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("steps of 4 rows need 4 sequence slots")
            && stderr.contains("pass --parallel 4 to use them anyway"),
        "{stderr}"
    );
    assert!(stderr.contains("6 items scored now"), "{stderr}");
}
