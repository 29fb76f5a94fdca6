//! The shards of a sweep folder (`DIR/shards/*.sqlite`, one per array task's cell) and
//! their merge into `DIR/results.sqlite`: refused when the shards come from different
//! frontier or llama.cpp builds or different copies of a task's data, unless allowed.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use crate::store::{MergeCounts, Provenance, Store};
use frontier_core::error::bad_input;

/// The shard files under `DIR/shards`, `cell-N` in N's order, then any others by name.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let folder = dir.join("shards");
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(&folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .collect();
    let order = |p: &PathBuf| {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        let n = stem
            .as_deref()
            .and_then(|s| s.strip_prefix("cell-"))
            .and_then(|n| n.parse::<usize>().ok());
        (n.unwrap_or(usize::MAX), stem)
    };
    out.sort_by_key(order);
    Ok(out)
}

/// What a merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    pub shards: usize,
    pub counts: MergeCounts,
}

/// Merges every shard of `dir` into `DIR/results.sqlite` (again and again: what is there
/// is kept once). `None` when the folder has no shards.
pub fn merge(dir: &Path, allow_mixed: bool) -> Result<Option<Merged>> {
    let shards = list(dir)?;
    if shards.is_empty() {
        return Ok(None);
    }
    let target = Store::open(&dir.join("results.sqlite"))?;
    let mut all = target.provenance()?;
    let mut each = Vec::new();
    for shard in &shards {
        let p = Store::open(shard)?.provenance()?;
        all.extend(&p);
        each.push((shard, p));
    }
    let mixed = all.mixed();
    if !mixed.is_empty() && !allow_mixed {
        return Err(bad_input(format!(
            "{}: the shards come from {} ({}); rerun those cells with one build, or merge anyway with --allow-mixed",
            dir.join("shards").display(),
            mixed.join("; "),
            describe(&each)
        )));
    }
    let names: Vec<String> = shards.iter().map(|s| s.display().to_string()).collect();
    let run_id = target.begin_run("merge", &json!({ "shards": names }))?;
    let mut merged = Merged::default();
    for shard in &shards {
        let c = target.merge_from(shard, run_id)?;
        merged.shards += 1;
        merged.counts.cells += c.cells;
        merged.counts.added += c.added;
        merged.counts.duplicates += c.duplicates;
    }
    Ok(Some(merged))
}

/// `cell-0: frontier A, llama.cpp B; cell-1: …`, one entry per shard.
fn describe(each: &[(&PathBuf, Provenance)]) -> String {
    each.iter()
        .map(|(path, p)| {
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            let join = |s: &std::collections::BTreeSet<String>| {
                s.iter().cloned().collect::<Vec<_>>().join("+")
            };
            format!(
                "{name}: frontier {}, llama.cpp {}",
                join(&p.frontier),
                join(&p.llama_cpp)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
