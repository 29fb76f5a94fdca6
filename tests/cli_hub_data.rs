//! Datasets from a Hub (a local mock on 127.0.0.1 serving parquet files), through the real
//! binary: downloaded into the HF cache, evaluated, and refused offline when not cached.

mod common;
use frontier_mock_hub as mock;

use common::{frontier, model, SMOLLM_Q4_K_M};
use frontier::datasets::parquet::{write_gsm8k, GsmRow};
use frontier::datasets::{gsm8k, DatasetFiles, Source};

fn serve_gsm8k(hub: &mock::MockHub) {
    let files = DatasetFiles::open("gsm8k", &Source::Embedded).unwrap();
    for split in ["train", "test"] {
        let rows: Vec<GsmRow> = gsm8k::load(&files, split)
            .unwrap()
            .0
            .into_iter()
            .map(|p| GsmRow {
                question: p.question,
                answer: p.answer,
            })
            .collect();
        hub.add_file(
            "dataset",
            "openai/gsm8k",
            &format!("main/{split}-00000-of-00001.parquet"),
            write_gsm8k(&rows).unwrap(),
        );
    }
}

#[test]
fn eval_reads_gsm8k_from_the_hub_and_refuses_offline_without_cache() {
    // Answers like the real Hub: relative 307, CDN on another host, listings in pages.
    let hub = mock::MockHub::start_like_hub();
    serve_gsm8k(&hub);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = |offline: bool| {
        let mut cmd = frontier();
        cmd.env("HF_ENDPOINT", hub.url())
            .env("HF_HOME", home.path())
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_CACHE")
            .args([
                "eval",
                "--tasks",
                "gsm8k",
                "--limit",
                "2",
                "--gsm8k-max-tokens",
                "8",
                "--data-source",
                "hub",
                "-t",
                "2",
                "--out",
            ])
            .arg(out.path())
            .arg(model(SMOLLM_Q4_K_M));
        if offline {
            cmd.env("HF_HUB_OFFLINE", "1");
        }
        cmd.output().unwrap()
    };
    let first = run(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(home
        .path()
        .join("hub/datasets--openai--gsm8k/snapshots")
        .is_dir());
    assert!(hub.requests().iter().any(|r| r.starts_with("GET /cdn/")));
    assert_eq!(hub.cdn_auth_attempts(), 0);
    // Offline with the cache: works; with an empty cache: a clear error, exit 2.
    let cached = run(true);
    assert!(
        cached.status.success(),
        "{}",
        String::from_utf8_lossy(&cached.stderr)
    );
    std::fs::remove_dir_all(home.path().join("hub")).unwrap();
    let refused = run(true);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HF_HUB_OFFLINE"), "{stderr}");
}
