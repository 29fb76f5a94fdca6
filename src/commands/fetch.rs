//! `frontier fetch MODEL[:QUANT,...]`: download quantizations into the Hugging Face cache;
//! exit 2 when a cell's problem is the user's to fix (no such quant, a gate), 1 when the
//! work failed (a broken download, the Hub unreachable).

use anyhow::Result;

use crate::catalog::Catalog;
use crate::cli::FetchArgs;
use crate::hub::{Hub, HubConfig};
use crate::sweep::{resolve, ResolveOptions};

pub fn run(args: &FetchArgs, quiet: bool) -> Result<i32> {
    let catalog = Catalog::load(&args.models_from.catalog)?;
    let hub = Hub::new(HubConfig::from_env())?;
    let cells = resolve(
        &args.models,
        &catalog,
        Some(&hub),
        &ResolveOptions::from_args(&args.quants, &args.models_from, quiet),
    )?;
    let mut code = 0;
    for c in &cells {
        match (&c.path, &c.problem) {
            (Some(p), _) => {
                let note = c
                    .derived_from
                    .as_ref()
                    .map_or(String::new(), |d| format!(" (derived from {d})"));
                crate::output::print(format!("{} {}\t{}{note}\n", c.model, c.quant, p.display()))?;
            }
            (None, problem) => {
                eprintln!(
                    "error: {} {}: {}",
                    c.model,
                    c.quant,
                    problem.as_deref().unwrap_or("unavailable")
                );
                code = code.max(if c.bad_input { 2 } else { 1 });
            }
        }
    }
    Ok(code)
}
