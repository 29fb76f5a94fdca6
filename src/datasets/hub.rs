//! The benchmark data from the Hugging Face Hub: `cais/mmlu` (config `all`), `openai/gsm8k`
//! (`main`) and `openai/openai_humaneval`, as parquet files downloaded into the standard HF
//! cache. Their rows are laid out as the original releases' files (MMLU CSV per subject and
//! split, GSM8K and HumanEval JSONL), so the same loaders, row-count checks and prompts apply
//! whatever the source.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::parquet::{read_gsm8k, read_humaneval, read_mmlu};
use crate::hub::{Hub, HubConfig, RepoFile, RepoKind};
use frontier_core::error::bad_input;

/// Where each dataset lives on the Hub and which parquet files make which split.
struct HubDataset {
    repo: &'static str,
    /// (file name prefix in the repo, split name in the original layout)
    splits: &'static [(&'static str, &'static str)],
}

fn hub_dataset(name: &str) -> Option<HubDataset> {
    Some(match name {
        "mmlu" => HubDataset {
            repo: "cais/mmlu",
            splits: &[
                ("all/dev-", "dev"),
                ("all/validation-", "val"),
                ("all/test-", "test"),
            ],
        },
        "gsm8k" => HubDataset {
            repo: "openai/gsm8k",
            splits: &[("main/train-", "train"), ("main/test-", "test")],
        },
        "humaneval" => HubDataset {
            repo: "openai/openai_humaneval",
            splits: &[("openai_humaneval/test-", "test")],
        },
        _ => return None,
    })
}

/// The Hub repo a dataset comes from.
pub fn repo_of(dataset: &str) -> Option<&'static str> {
    hub_dataset(dataset).map(|d| d.repo)
}

/// Downloads (or finds in the cache) a dataset's parquet files and lays their rows out as
/// the original release's files, keyed by path.
pub fn fetch(dataset: &str, revision: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    fetch_with(&Hub::new(HubConfig::from_env())?, dataset, revision)
}

/// [`fetch`] through a given Hub client.
pub fn fetch_with(hub: &Hub, dataset: &str, revision: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let spec = hub_dataset(dataset).with_context(|| format!("no Hub source for {dataset}"))?;
    let listing = hub.list(RepoKind::Dataset, spec.repo, revision)?;
    let mut out = BTreeMap::new();
    for (prefix, split) in spec.splits {
        let mut files: Vec<&RepoFile> = listing
            .files
            .iter()
            .filter(|f| f.path.starts_with(prefix) && f.path.ends_with(".parquet"))
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if files.is_empty() {
            return Err(bad_input(format!(
                "{}: no {prefix}*.parquet files at revision '{revision}'",
                spec.repo
            )));
        }
        let mut parts = Vec::new();
        for f in files {
            let path = hub.download(&listing, f, &mut |_, _| {})?;
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            parts.push((format!("{}/{}", spec.repo, f.path), bytes));
        }
        match dataset {
            "mmlu" => lay_out_mmlu(&parts, split, &mut out)?,
            "gsm8k" => lay_out_gsm8k(&parts, split, &mut out)?,
            _ => lay_out_humaneval(&parts, &mut out)?,
        }
    }
    Ok(out)
}

/// MMLU rows → `mmlu/{split}/{subject}_{split}.csv`, headerless, answer as a letter.
fn lay_out_mmlu(
    parts: &[(String, Vec<u8>)],
    split: &str,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let mut by_subject: BTreeMap<String, csv::Writer<Vec<u8>>> = BTreeMap::new();
    for (label, bytes) in parts {
        for (i, row) in read_mmlu(label, bytes)?.into_iter().enumerate() {
            if row.choices.len() != 4 || !(0..4).contains(&row.answer) {
                return Err(bad_input(format!(
                    "{label}: row {i}: expected 4 choices and an answer 0-3, found {} choices and {}",
                    row.choices.len(),
                    row.answer
                )));
            }
            let w = by_subject.entry(row.subject.clone()).or_insert_with(|| {
                csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new())
            });
            let letter = ["A", "B", "C", "D"][row.answer as usize];
            w.write_record([
                row.question.as_str(),
                &row.choices[0],
                &row.choices[1],
                &row.choices[2],
                &row.choices[3],
                letter,
            ])?;
        }
    }
    for (subject, w) in by_subject {
        let bytes = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing MMLU {subject}: {e}"))?;
        out.insert(format!("mmlu/{split}/{subject}_{split}.csv"), bytes);
    }
    Ok(())
}

fn lay_out_gsm8k(
    parts: &[(String, Vec<u8>)],
    split: &str,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let mut text = String::new();
    for (label, bytes) in parts {
        for row in read_gsm8k(label, bytes)? {
            text.push_str(
                &serde_json::json!({ "question": row.question, "answer": row.answer }).to_string(),
            );
            text.push('\n');
        }
    }
    out.insert(format!("gsm8k/{split}.jsonl"), text.into_bytes());
    Ok(())
}

fn lay_out_humaneval(
    parts: &[(String, Vec<u8>)],
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let mut text = String::new();
    for (label, bytes) in parts {
        for row in read_humaneval(label, bytes)? {
            let v = serde_json::json!({
                "task_id": row.task_id, "prompt": row.prompt, "canonical_solution": row.canonical_solution,
                "test": row.test, "entry_point": row.entry_point,
            });
            text.push_str(&v.to_string());
            text.push('\n');
        }
    }
    out.insert("humaneval/HumanEval.jsonl".into(), text.into_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::datasets::parquet::{
        write_gsm8k, write_humaneval, write_mmlu, GsmRow, HumanEvalRow, MmluRow,
    };
    use crate::datasets::{gsm8k, humaneval, mmlu, DatasetFiles, Source};
    use crate::tasks::{build_plan, TaskName, TaskOptions};
    use frontier_mock_hub::MockHub;

    /// Serves the embedded data as the Hub's parquet files (cais/mmlu is sorted by subject,
    /// rows in file order, as the `all` config).
    fn serve_embedded(mock: &MockHub) {
        let emb = |d| DatasetFiles::open(d, &Source::Embedded).unwrap();
        let m = emb("mmlu");
        for (split, name) in [
            (mmlu::Split::Dev, "dev"),
            (mmlu::Split::Val, "validation"),
            (mmlu::Split::Test, "test"),
        ] {
            let mut rows = Vec::new();
            for subject in mmlu::subjects(&m).unwrap() {
                for q in mmlu::load(&m, &subject, split).unwrap().0 {
                    rows.push(MmluRow {
                        question: q.question,
                        subject: subject.clone(),
                        choices: q.choices.to_vec(),
                        answer: i64::from(q.answer),
                    });
                }
            }
            mock.add_file(
                "dataset",
                "cais/mmlu",
                &format!("all/{name}-00000-of-00001.parquet"),
                write_mmlu(&rows).unwrap(),
            );
        }
        let g = emb("gsm8k");
        for split in ["train", "test"] {
            let rows: Vec<GsmRow> = gsm8k::load(&g, split)
                .unwrap()
                .0
                .into_iter()
                .map(|p| GsmRow {
                    question: p.question,
                    answer: p.answer,
                })
                .collect();
            mock.add_file(
                "dataset",
                "openai/gsm8k",
                &format!("main/{split}-00000-of-00001.parquet"),
                write_gsm8k(&rows).unwrap(),
            );
        }
        let h = emb("humaneval");
        let rows: Vec<HumanEvalRow> = humaneval::load(&h, false)
            .unwrap()
            .0
            .into_iter()
            .map(|t| HumanEvalRow {
                task_id: t.task_id,
                prompt: t.prompt,
                canonical_solution: t.canonical_solution,
                test: t.test,
                entry_point: t.entry_point,
            })
            .collect();
        mock.add_file(
            "dataset",
            "openai/openai_humaneval",
            "openai_humaneval/test-00000-of-00001.parquet",
            write_humaneval(&rows).unwrap(),
        );
    }

    /// The Hub's parquet files give exactly the prompts of the embedded copy, and the
    /// row counts the manifests expect — through a mock that answers like the real Hub
    /// (relative 307, CDN on another host, weak ETags, listings in pages of 2).
    #[test]
    fn hub_data_builds_the_same_prompts_as_the_embedded_copy() {
        let mock = MockHub::start_like_hub();
        serve_embedded(&mock);
        let cache = tempfile::tempdir().unwrap();
        let hub = Hub::new(HubConfig {
            endpoint: mock.url(),
            token: None,
            cache_dir: cache.path().to_path_buf(),
            offline: false,
            listings_dir: None,
        })
        .unwrap();
        let source = Source::Hub {
            revision: "main".into(),
        };
        let opts = TaskOptions {
            limit: Some(3),
            ..TaskOptions::default()
        };
        for (dataset, task) in [
            ("mmlu", TaskName::Mmlu),
            ("gsm8k", TaskName::Gsm8k),
            ("humaneval", TaskName::Humaneval),
        ] {
            let files = Arc::new(fetch_with(&hub, dataset, "main").unwrap());
            let from_hub = DatasetFiles::from_files(dataset, &source, files).unwrap();
            let plan_hub = crate::tasks::plan::build_from(
                task,
                &opts,
                &from_hub,
                &crate::prompts::PromptStyle::raw(),
            )
            .unwrap();
            let plan_emb = build_plan(task, &opts, &Source::Embedded).unwrap();
            assert_eq!(plan_hub.items, plan_emb.items, "{dataset}");
        }
        // Every parquet file came from the CDN, and the listings took several pages.
        let requests = mock.requests();
        let cdn_gets = |r: &Vec<String>| r.iter().filter(|r| r.starts_with("GET /cdn/")).count();
        assert_eq!(cdn_gets(&requests), 6, "{requests:?}");
        assert!(
            requests.iter().any(|r| r.contains("cursor=")),
            "{requests:?}"
        );
        assert_eq!(mock.cdn_auth_attempts(), 0);
        // A second fetch is served from the HF cache: no new downloads.
        fetch_with(&hub, "gsm8k", "main").unwrap();
        assert_eq!(cdn_gets(&mock.requests()), 6);
    }

    #[test]
    fn humaneval_plus_is_not_on_the_hub() {
        let mock = MockHub::start();
        serve_embedded(&mock);
        let cache = tempfile::tempdir().unwrap();
        let hub = Hub::new(HubConfig {
            endpoint: mock.url(),
            token: None,
            cache_dir: cache.path().to_path_buf(),
            offline: false,
            listings_dir: None,
        })
        .unwrap();
        let files = Arc::new(fetch_with(&hub, "humaneval", "main").unwrap());
        let d = DatasetFiles::from_files(
            "humaneval",
            &Source::Hub {
                revision: "main".into(),
            },
            files,
        )
        .unwrap();
        let e = humaneval::load(&d, true).unwrap_err();
        assert!(e.to_string().contains("not available from the Hub"), "{e}");
    }
}
