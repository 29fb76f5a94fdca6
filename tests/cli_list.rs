//! `frontier list` through the real binary against a mock Hub holding copies of the built-in
//! catalog repos' listings (file names as seen on the Hub, `/work/shared/MODEL-CATALOG.md`):
//! every catalog entry resolves — each model offers Q4_K_M and Q8_0 from its repos — and a
//! repo whose GGUF names no quant (`google/gemma-2b-it`) is shown as such.

mod common;
use frontier_mock_hub as mock;

use std::collections::BTreeMap;
use std::path::Path;

use common::frontier;
use serde_json::Value;

/// The built-in catalog's repos and the GGUF files each holds on the Hub.
const LISTINGS: &[(&str, &[&str])] = &[
    (
        "TheBloke/phi-2-GGUF",
        &[
            "phi-2.Q2_K.gguf",
            "phi-2.Q3_K_M.gguf",
            "phi-2.Q4_K_M.gguf",
            "phi-2.Q5_K_M.gguf",
            "phi-2.Q6_K.gguf",
            "phi-2.Q8_0.gguf",
        ],
    ),
    ("Mungert/phi-2-GGUF", &["phi-2-f16.gguf", "phi-2-bf16.gguf"]),
    (
        "lmstudio-ai/gemma-2b-it-GGUF",
        &["gemma-2b-it-q4_k_m.gguf", "gemma-2b-it-q8_0.gguf"],
    ),
    (
        "second-state/Gemma-2b-it-GGUF",
        &[
            "gemma-2b-it-Q4_K_M.gguf",
            "gemma-2b-it-Q8_0.gguf",
            "gemma-2b-it-f16.gguf",
        ],
    ),
    (
        "bartowski/gemma-2-2b-it-GGUF",
        &[
            "gemma-2-2b-it-Q4_K_M.gguf",
            "gemma-2-2b-it-Q8_0.gguf",
            "gemma-2-2b-it-f32.gguf",
        ],
    ),
    (
        "bartowski/SmolLM2-1.7B-Instruct-GGUF",
        &[
            "SmolLM2-1.7B-Instruct-Q4_K_M.gguf",
            "SmolLM2-1.7B-Instruct-Q8_0.gguf",
            "SmolLM2-1.7B-Instruct-f16.gguf",
        ],
    ),
    (
        "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
        &["smollm2-1.7b-instruct-q4_k_m.gguf"],
    ),
    (
        "ggml-org/SmolLM3-3B-GGUF",
        &[
            "SmolLM3-Q4_K_M.gguf",
            "SmolLM3-Q8_0.gguf",
            "SmolLM3-f16.gguf",
        ],
    ),
    (
        "bartowski/SmolLM2-360M-Instruct-GGUF",
        &[
            "SmolLM2-360M-Instruct-Q4_K_M.gguf",
            "SmolLM2-360M-Instruct-Q8_0.gguf",
            "SmolLM2-360M-Instruct-f16.gguf",
        ],
    ),
    (
        "bartowski/SmolLM2-135M-Instruct-GGUF",
        &[
            "SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "SmolLM2-135M-Instruct-Q8_0.gguf",
            "SmolLM2-135M-Instruct-f16.gguf",
        ],
    ),
    (
        "unsloth/gemma-3-270m-it-GGUF",
        &[
            "gemma-3-270m-it-Q4_K_M.gguf",
            "gemma-3-270m-it-Q8_0.gguf",
            "gemma-3-270m-it-F16.gguf",
        ],
    ),
    (
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        &[
            "qwen2.5-0.5b-instruct-q4_k_m.gguf",
            "qwen2.5-0.5b-instruct-q8_0.gguf",
            "qwen2.5-0.5b-instruct-fp16.gguf",
        ],
    ),
    (
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        &[
            "qwen2.5-1.5b-instruct-q4_k_m.gguf",
            "qwen2.5-1.5b-instruct-q8_0.gguf",
            "qwen2.5-1.5b-instruct-fp16.gguf",
        ],
    ),
    (
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        &[
            "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
            "Llama-3.2-1B-Instruct-Q8_0.gguf",
            "Llama-3.2-1B-Instruct-f16.gguf",
        ],
    ),
    // Not in the catalog (any more): its only GGUF names no quant.
    ("google/gemma-2b-it", &["gemma-2b-it.gguf"]),
];

/// A mock Hub with every repo above (and a README each), shaped like the real one.
fn serve() -> mock::MockHub {
    let hub = mock::MockHub::start_like_hub();
    for (repo, files) in LISTINGS {
        hub.add_small_file("model", repo, "README.md", b"# GGUF\n".to_vec());
        for file in *files {
            hub.add_file("model", repo, file, format!("GGUF {file}").into_bytes());
        }
    }
    hub
}

fn list(hub: &mock::MockHub, home: &Path, extra: &[&str]) -> std::process::Output {
    frontier()
        .env("HOME", home)
        .env("HF_HOME", home.join("hf"))
        .env("FRONTIER_CACHE_DIR", home.join("frontier"))
        .env("HF_ENDPOINT", hub.url())
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .arg("list")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn every_catalog_model_offers_q4_k_m_and_q8_0_from_its_listed_repos() {
    let hub = serve();
    let home = tempfile::tempdir().unwrap();
    let out = list(&hub, home.path(), &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let known: BTreeMap<&str, &[&str]> = LISTINGS.iter().copied().collect();
    assert!(!models.is_empty());
    for model in &models {
        let id = model["model"]["id"].as_str().unwrap();
        let mut offered: Vec<String> = Vec::new();
        for repo in model["repos"].as_array().unwrap() {
            let name = repo["repo"].as_str().unwrap();
            assert!(
                known.contains_key(name),
                "{id}: {name} has no copy of its listing here; add it to LISTINGS"
            );
            assert_eq!(repo["listed_from"], "hub", "{id}: {repo}");
            let offers: Vec<String> = serde_json::from_value(repo["offers"].clone()).unwrap();
            assert!(!offers.is_empty(), "{id}: {name} offers nothing: {repo}");
            assert_eq!(repo["untagged"], Value::Array(vec![]), "{id}: {repo}");
            offered.extend(offers);
        }
        for quant in ["Q4_K_M", "Q8_0"] {
            assert!(
                offered.iter().any(|q| q == quant),
                "{id}: no {quant} in {offered:?}"
            );
        }
    }
    let gemma = models
        .iter()
        .find(|m| m["model"]["id"] == "gemma-2b")
        .unwrap();
    let repos: Vec<&str> = gemma["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repo"].as_str().unwrap())
        .collect();
    assert_eq!(
        repos,
        [
            "lmstudio-ai/gemma-2b-it-GGUF",
            "second-state/Gemma-2b-it-GGUF"
        ]
    );
    assert_eq!(
        gemma["repos"][1]["offers"],
        serde_json::json!(["F16", "Q8_0", "Q4_K_M"])
    );
}

/// The table names each repo's quants; a GGUF whose name carries none is shown as such.
#[test]
fn the_table_shows_each_repos_quants_and_untagged_files() {
    let hub = serve();
    let home = tempfile::tempdir().unwrap();
    let catalog = home.path().join("c.toml");
    std::fs::write(
        &catalog,
        "[[model]]\nid = \"gemma-2b-google\"\nname = \"Gemma-2B-it (google)\"\nrepos = [\"google/gemma-2b-it\"]\n",
    )
    .unwrap();
    let out = list(&hub, home.path(), &["--catalog", catalog.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let offers = |repo: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("| {repo} ")))
            .unwrap_or_else(|| panic!("no row for {repo}: {text}"));
        line.split('|').map(str::trim).nth(6).unwrap().to_string()
    };
    assert_eq!(
        offers("TheBloke/phi-2-GGUF"),
        "Q8_0, Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K"
    );
    assert_eq!(offers("Mungert/phi-2-GGUF"), "F16, BF16");
    assert_eq!(
        offers("Qwen/Qwen2.5-0.5B-Instruct-GGUF"),
        "F16, Q8_0, Q4_K_M"
    );
    assert_eq!(
        offers("google/gemma-2b-it"),
        "no quant named: gemma-2b-it.gguf"
    );
    println!("{text}");
}
