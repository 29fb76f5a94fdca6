//! Reporters: pure functions from results to bytes (CSV, JSON, markdown, SVG), and `write`,
//! which puts a store's reports into its folder.

pub mod data;
pub mod memory;
pub mod plot;
pub mod speed;
pub mod tables;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::store::Store;

/// Writes results.csv, comparison.csv, comparison.md, frontier.svg, format.md (when cells
/// ran several prompt formats) and memory.csv/.md for the store into `dir`; returns the
/// files written.
pub fn write(store: &Store, dir: &Path) -> Result<Vec<PathBuf>> {
    let cells = data::load(store)?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("results.csv", tables::results_csv(&cells)?),
        ("comparison.csv", tables::comparison_csv(&cells)?),
        ("comparison.md", tables::comparison_md(&cells).into_bytes()),
    ];
    let formats = tables::format_sensitivity_md(&cells);
    if !formats.is_empty() {
        files.push(("format.md", formats.into_bytes()));
    }
    if let Some(svg) = plot::frontier_svg(&cells)? {
        files.push(("frontier.svg", svg.into_bytes()));
    }
    let memory_rows: Vec<(String, &crate::memory::verdict::MemoryRecord)> = cells
        .iter()
        .flat_map(|c| c.memory.iter().map(move |m| (c.label(), m)))
        .collect();
    if !memory_rows.is_empty() {
        files.push(("memory.csv", memory::memory_csv(&memory_rows)?));
        let md = format!("# Memory\n\n{}", memory::memory_markdown(&memory_rows));
        files.push(("memory.md", md.into_bytes()));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
