//! The Hub's failures as a user meets them, through the real binary: an unreachable Hub
//! (nothing listening on `HF_ENDPOINT`'s port) fails `fetch` and `sweep` of an uncached
//! model at once with one line and exit 1, and `plan` and a cached `fetch` go on offline
//! after saying so once; "cannot reach", "not found" and "gated" read differently; a rate
//! limit is waited out with a message saying so.

mod common;
use frontier_mock_hub as mock;

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::frontier;

/// Issue 19: with the Hub unreachable, a command ends (or goes on offline) within this.
const FAST: Duration = Duration::from_secs(5);

const CATALOG: &str = r#"
[[model]]
id = "tiny"
name = "Tiny"
repos = ["org/Tiny-GGUF"]

[[model]]
id = "gated"
name = "Gated"
repos = ["org/gated-GGUF"]
"#;

/// `http://127.0.0.1:PORT` where nothing listens (a port that was free a moment ago).
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Runs frontier with everything it reads from the environment under `home`, and times it.
fn run(home: &Path, endpoint: &str, token: Option<&str>, args: &[&str]) -> (Output, Duration) {
    let catalog = home.join("catalog.toml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let mut cmd = frontier();
    cmd.env("HOME", home)
        .env("HF_HOME", home.join("hf"))
        .env("FRONTIER_CACHE_DIR", home.join("frontier"))
        .env("HF_ENDPOINT", endpoint)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .env_remove("NO_COLOR");
    if let Some(token) = token {
        cmd.env("HF_TOKEN", token);
    }
    // `plan` runs on the built-in catalog only: the test models have no shapes.
    let uses_catalog = matches!(args.first(), Some(&"fetch") | Some(&"sweep"));
    cmd.args(args);
    if uses_catalog {
        cmd.arg("--catalog").arg(&catalog);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    (out, started.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn fetch_of_an_uncached_model_fails_fast_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let endpoint = closed_endpoint();
    let (out, took) = run(
        home.path(),
        &endpoint,
        None,
        &["fetch", "smollm2-135m:Q4_K_M"],
    );
    let err = stderr(&out);
    eprintln!(
        "fetch with the Hub unreachable: exit {:?} in {took:?}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with(&format!(
            "error: SmolLM2-135M-Instruct Q4_K_M: cannot reach the Hub at {endpoint} ("
        )),
        "{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("; the cache has no Q4_K_M file of bartowski/SmolLM2-135M-Instruct-GGUF"),
        "{err}"
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn sweep_of_an_uncached_model_fails_fast_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let endpoint = closed_endpoint();
    let out_dir = home.path().join("out");
    let (out, took) = run(
        home.path(),
        &endpoint,
        None,
        &[
            "sweep",
            "--models",
            "smollm2-135m",
            "--quants",
            "Q4_K_M",
            "--tasks",
            "speed",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    eprintln!(
        "sweep with the Hub unreachable: exit {:?} in {took:?}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(&format!("cannot reach the Hub at {endpoint}")),
        "{err}"
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn plan_says_once_that_the_hub_cannot_be_reached_and_goes_on_offline() {
    let home = tempfile::tempdir().unwrap();
    let endpoint = closed_endpoint();
    let (out, took) = run(home.path(), &endpoint, None, &["plan", "--ram", "4GiB"]);
    let err = stderr(&out);
    eprintln!(
        "plan with the Hub unreachable: exit {:?} in {took:?}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(lines_with(&err, "cannot reach the Hub").len(), 1, "{err}");
    assert!(err.contains("went on offline"), "{err}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("SmolLM2-135M-Instruct") && l.contains("catalog shape")),
        "{table}"
    );
    assert!(took < FAST, "{took:?}");
}

/// Fetched once, the file is still had with the Hub gone: from the HF cache, after one
/// line saying the Hub could not be reached.
#[test]
fn fetch_of_a_cached_model_goes_on_offline() {
    let hub = mock::MockHub::start();
    hub.add_file(
        "model",
        "org/Tiny-GGUF",
        "tiny.Q4_K_M.gguf",
        b"GGUF q4".to_vec(),
    );
    let endpoint = hub.url();
    let home = tempfile::tempdir().unwrap();
    let (first, _) = run(home.path(), &endpoint, None, &["fetch", "tiny:Q4_K_M"]);
    assert!(first.status.success(), "{}", stderr(&first));
    drop(hub);

    let (again, took) = run(home.path(), &endpoint, None, &["fetch", "tiny:Q4_K_M"]);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert_eq!(again.stdout, first.stdout);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("cannot reach the Hub at {endpoint}"))
            && err.contains("went on offline"),
        "{err}"
    );
    assert!(took < FAST, "{took:?}");
}

/// "cannot reach the Hub" (exit 1), "not found, or private/gated: set HF_TOKEN" and "gated:
/// accept its license, set HF_TOKEN" (exit 2) are three different messages.
#[test]
fn cannot_reach_not_found_and_gated_read_differently() {
    let hub = mock::MockHub::start_like_hub();
    hub.add_file(
        "model",
        "org/gated-GGUF",
        "g.Q4_K_M.gguf",
        b"GGUF g".to_vec(),
    );
    hub.set_gated("org/gated-GGUF", "hf_right");
    let home = tempfile::tempdir().unwrap();
    let url = hub.url();

    let (gated, _) = run(home.path(), &url, None, &["fetch", "gated:Q4_K_M"]);
    let gated_err = stderr(&gated);
    assert_eq!(gated.status.code(), Some(2), "{gated_err}");
    assert_eq!(
        gated_err.trim_end(),
        format!("error: Gated Q4_K_M: org/gated-GGUF is gated: accept its license at {url}/org/gated-GGUF while logged in, then set HF_TOKEN to a token with read access")
    );

    let (absent, _) = run(
        home.path(),
        &url,
        None,
        &["fetch", "hf:org/absent-GGUF:Q4_K_M"],
    );
    let absent_err = stderr(&absent);
    assert_eq!(absent.status.code(), Some(2), "{absent_err}");
    assert_eq!(
        absent_err.trim_end(),
        format!("error: absent Q4_K_M: no Q4_K_M file in org/absent-GGUF (model repo org/absent-GGUF not found on {url}, or private/gated: set HF_TOKEN)")
    );

    let closed = closed_endpoint();
    let (away, _) = run(
        home.path(),
        &closed,
        None,
        &["fetch", "hf:org/absent-GGUF:Q4_K_M"],
    );
    let away_err = stderr(&away);
    assert_eq!(away.status.code(), Some(1), "{away_err}");
    assert!(away_err.contains("cannot reach the Hub"), "{away_err}");
    for (err, not) in [
        (&gated_err, ["not found", "cannot reach"]),
        (&absent_err, ["is gated", "cannot reach"]),
        (&away_err, ["is gated", "not found"]),
    ] {
        assert!(not.iter().all(|n| !err.contains(n)), "{err}");
    }
}

/// A 429 with `Retry-After: 1` on a download: fetch waits, says why, and succeeds.
#[test]
fn a_rate_limited_fetch_says_it_waits_and_succeeds() {
    let hub = mock::MockHub::start_like_hub();
    hub.add_file(
        "model",
        "org/Tiny-GGUF",
        "tiny.Q4_K_M.gguf",
        b"GGUF q4".to_vec(),
    );
    hub.rate_limit_next("/resolve/", 1, 1);
    let home = tempfile::tempdir().unwrap();
    let (out, took) = run(home.path(), &hub.url(), None, &["fetch", "tiny:Q4_K_M"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let waits = lines_with(&err, "rate limited (HTTP 429): waiting 1 s as the Hub asks");
    assert_eq!(waits.len(), 1, "{err}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
}
