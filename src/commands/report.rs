//! `frontier report RESULTS`: the comparison tables and the frontier plot from a store.

use anyhow::Result;

use super::show::store_path;
use crate::cli::ReportArgs;
use crate::store::Store;

pub fn run(args: &ReportArgs, quiet: bool) -> Result<i32> {
    // A Slurm sweep's folder: its shards are merged into its store first.
    if args.results.is_dir() {
        if let Some(m) = crate::slurm::shards::merge(&args.results, args.allow_mixed)? {
            if !quiet {
                eprintln!(
                    "merged {} shards: {} cells, {} items added, {} already there (kept once)",
                    m.shards, m.counts.cells, m.counts.added, m.counts.duplicates
                );
            }
        }
    }
    let path = store_path(&args.results);
    let store = Store::open_existing(&path)?;
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => path.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
    };
    let options = crate::report::ReportOptions {
        ram_tiers: if args.ram_tiers.is_empty() {
            crate::report::decision::DEFAULT_TIERS.to_vec()
        } else {
            args.ram_tiers.iter().map(|t| t.0).collect()
        },
    };
    let written = crate::report::write(&store, &dir, &options)?;
    if !quiet {
        for f in &written {
            eprintln!("wrote {}", f.display());
        }
    }
    crate::output::print(std::fs::read_to_string(dir.join("comparison.md"))?)?;
    Ok(0)
}
