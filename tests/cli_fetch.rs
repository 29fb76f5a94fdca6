//! `frontier fetch` and `frontier list` through the real binary against the mock Hub:
//! downloads into the HF cache, names a missing quant's alternatives, explains a gated repo,
//! and lists what each repo offers and what is cached.

mod common;
use frontier_mock_hub as mock;

use common::frontier;

const CATALOG: &str = r#"
[[model]]
id = "tiny"
name = "Tiny"
repos = ["org/Tiny-GGUF"]

[[model]]
id = "gated"
name = "Gated"
repos = ["google/gated-model"]
"#;

#[test]
fn fetch_downloads_explains_gated_and_missing_and_list_shows_the_cache() {
    let hub = mock::MockHub::start();
    hub.add_file(
        "model",
        "org/Tiny-GGUF",
        "tiny.Q4_K_M.gguf",
        b"GGUF fake q4".to_vec(),
    );
    hub.add_file(
        "model",
        "org/Tiny-GGUF",
        "tiny.Q8_0.gguf",
        b"GGUF fake q8".to_vec(),
    );
    hub.add_file(
        "model",
        "google/gated-model",
        "gated.f16.gguf",
        b"GGUF fake f16".to_vec(),
    );
    hub.set_gated("google/gated-model", "secret");
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("c.toml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let run = |args: &[&str], token: Option<&str>| {
        let mut cmd = frontier();
        cmd.env("HF_ENDPOINT", hub.url())
            .env("HF_HOME", tmp.path())
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_TOKEN");
        if let Some(t) = token {
            cmd.env("HF_TOKEN", t);
        }
        cmd.args(args)
            .arg("--catalog")
            .arg(&catalog)
            .output()
            .unwrap()
    };

    let ok = run(&["fetch", "tiny:q4_k_m"], None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let path = String::from_utf8_lossy(&ok.stdout)
        .split('\t')
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(std::fs::read(&path).unwrap(), b"GGUF fake q4");
    assert!(path.contains("models--org--Tiny-GGUF/snapshots/"), "{path}");

    let missing = run(&["fetch", "tiny:F16"], None);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        err.contains("no F16 file in org/Tiny-GGUF (has Q8_0, Q4_K_M)"),
        "{err}"
    );

    let gated = run(&["fetch", "gated:F16"], None);
    let err = String::from_utf8_lossy(&gated.stderr);
    assert_eq!(gated.status.code(), Some(2));
    assert!(err.contains("gated") && err.contains("HF_TOKEN"), "{err}");
    let with_token = run(&["fetch", "gated:F16"], Some("secret"));
    assert!(
        with_token.status.success(),
        "{}",
        String::from_utf8_lossy(&with_token.stderr)
    );

    // The repo offers both quants; only the fetched one is cached.
    let list = run(&["list"], None);
    let text = String::from_utf8_lossy(&list.stdout);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("| tiny "))
        .unwrap_or_else(|| panic!("{text}"))
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(
        row[5..8],
        ["org/Tiny-GGUF", "Q8_0, Q4_K_M", "Q4_K_M"],
        "{text}"
    );
}
