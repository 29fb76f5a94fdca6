//! The manifests of the vendored datasets (`datasets/*.toml`): source, revision, license,
//! and every file's sha256 and row count. Embedded in the binary with the data.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use serde::Deserialize;

const MANIFESTS: &[(&str, &str)] = &[
    ("mmlu", include_str!("../../datasets/mmlu.toml")),
    ("gsm8k", include_str!("../../datasets/gsm8k.toml")),
    ("humaneval", include_str!("../../datasets/humaneval.toml")),
];

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub title: String,
    pub license: String,
    pub source: String,
    pub revision: String,
    pub hub: String,
    pub archive: String,
    pub archive_sha256: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: Option<u64>,
}

impl Manifest {
    pub fn file(&self, path: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Total rows of the files under `dir` (e.g. `mmlu/test`).
    pub fn rows_under(&self, dir: &str) -> u64 {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files
            .iter()
            .filter(|f| f.path.starts_with(&prefix))
            .filter_map(|f| f.rows)
            .sum()
    }
}

/// The manifest of a dataset (`mmlu`, `gsm8k`, `humaneval`).
pub fn get(name: &str) -> Result<&'static Manifest> {
    static PARSED: OnceLock<Vec<Manifest>> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        MANIFESTS
            .iter()
            .map(|(n, text)| {
                toml::from_str(text).unwrap_or_else(|e| panic!("embedded manifest {n}: {e}"))
            })
            .collect()
    });
    all.iter()
        .find(|m| m.name == name)
        .ok_or_else(|| anyhow!("no dataset named {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_and_count_the_splits() {
        let mmlu = get("mmlu").unwrap();
        assert_eq!(mmlu.rows_under("mmlu/test"), 14_042);
        assert_eq!(mmlu.rows_under("mmlu/dev"), 285);
        assert_eq!(mmlu.rows_under("mmlu/val"), 1_531);
        assert_eq!(get("gsm8k").unwrap().rows_under("gsm8k"), 1_319 + 7_473);
        assert_eq!(
            get("humaneval")
                .unwrap()
                .file("humaneval/HumanEval.jsonl")
                .unwrap()
                .rows,
            Some(164)
        );
    }

    #[test]
    fn embedded_archives_match_their_manifests() {
        for (name, bytes) in [
            ("mmlu", &include_bytes!("../../datasets/mmlu.tar.gz")[..]),
            ("gsm8k", &include_bytes!("../../datasets/gsm8k.tar.gz")[..]),
            (
                "humaneval",
                &include_bytes!("../../datasets/humaneval.tar.gz")[..],
            ),
        ] {
            assert_eq!(
                crate::hashing::sha256_hex(bytes),
                get(name).unwrap().archive_sha256,
                "{name}"
            );
        }
    }
}
