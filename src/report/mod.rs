//! Reports: [`data::load`] reads a store's cells, [`analysis::Comparison::build`] computes
//! the comparison once, and pure functions render bytes (CSV, markdown, SVG); `write` puts a
//! store's reports into its folder.

pub mod analysis;
pub mod comparison;
pub mod data;
pub mod formats;
pub mod memory;
pub mod plot;
pub mod results;
pub mod speed;

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
    let comparison = analysis::Comparison::build(&cells);
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("results.csv", results::results_csv(&cells)?),
        ("comparison.csv", comparison::comparison_csv(&comparison)?),
        (
            "comparison.md",
            comparison::comparison_md(&comparison).into_bytes(),
        ),
    ];
    let formats = formats::format_sensitivity_md(&cells);
    if !formats.is_empty() {
        files.push(("format.md", formats.into_bytes()));
    }
    if let Some(svg) = plot::frontier_svg(&comparison)? {
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
