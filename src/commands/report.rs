//! `frontier report RESULTS`: the comparison tables and the frontier plot from a store.

use anyhow::Result;

use super::show::store_path;
use crate::cli::ReportArgs;
use crate::store::Store;

pub fn run(args: &ReportArgs, quiet: bool) -> Result<i32> {
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
