//! Reports: [`data::load`] reads a store's cells, [`analysis::Comparison::build`] computes
//! the comparison once, and pure functions render bytes (CSV, markdown, SVG); `write` puts a
//! store's reports into its folder.

pub mod analysis;
pub mod comparison;
pub mod data;
pub mod decision;
pub mod deltas;
pub mod drill;
pub mod fidelity;
pub mod formats;
pub mod html;
pub mod lm_eval;
pub mod memory;
pub mod plot;
pub mod results;
pub mod speed;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::store::Store;
pub use fidelity::fidelity_table;

/// What a report is asked for beyond the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The RAM tiers of the hardware table.
    pub ram_tiers: Vec<u64>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            ram_tiers: decision::DEFAULT_TIERS.to_vec(),
        }
    }
}

/// Writes results.csv, comparison.csv, comparison.md, decision.md, frontier.svg, format.md
/// (when cells ran several prompt formats) and memory.csv/.md for the store into `dir`;
/// returns the files written.
pub fn write(store: &Store, dir: &Path, options: &ReportOptions) -> Result<Vec<PathBuf>> {
    let cells = data::load(store)?;
    let comparison = analysis::Comparison::build(&cells);
    let decision = decision::Decision::build(&cells, &comparison, &options.ram_tiers);
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("results.csv", results::results_csv(&cells)?),
        ("comparison.csv", comparison::comparison_csv(&comparison)?),
        (
            "comparison.md",
            comparison::comparison_md(&comparison).into_bytes(),
        ),
        (
            "decision.md",
            decision::decision_md(&decision, &cells).into_bytes(),
        ),
    ];
    if comparison.has_fidelity {
        files.push(("fidelity.md", fidelity::fidelity_md(&cells).into_bytes()));
    }
    let formats = formats::format_sensitivity_md(&cells);
    if !formats.is_empty() {
        files.push(("format.md", formats.into_bytes()));
    }
    let items = drill::load(store, &cells)?;
    let page = html::report_html(&html::Page {
        cells: &cells,
        comparison: &comparison,
        decision: &decision,
        items: &items,
        generated: now_utc(),
    });
    files.push(("report.html", page.into_bytes()));
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

fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    frontier_core::units::utc_timestamp(secs)
}
