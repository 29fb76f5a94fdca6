//! `frontier list`: the catalog, and which of its quantizations are in the local HF cache.

use anyhow::Result;
use serde_json::json;

use crate::catalog::quant::available;
use crate::catalog::Catalog;
use crate::cli::ListArgs;
use crate::hub::{Hub, HubConfig, RepoKind};
use crate::output::table::{markdown, Align};

pub fn run(args: &ListArgs) -> Result<i32> {
    let catalog = Catalog::load(&args.catalog)?;
    let mut config = HubConfig::from_env();
    config.offline = true;
    let hub = Hub::new(config)?;
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for m in &catalog.models {
        let mut cached = Vec::new();
        for repo in &m.repos {
            if let Ok(files) = hub.list_files(RepoKind::Model, repo, "main") {
                let names: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
                cached.extend(available(&names));
            }
        }
        cached.sort();
        cached.dedup();
        json_rows.push(json!({ "model": m, "cached_quants": cached }));
        rows.push(vec![
            m.id.clone(),
            m.name.clone(),
            m.params.clone(),
            m.license.clone(),
            m.repos.join(", "),
            if cached.is_empty() {
                "-".into()
            } else {
                cached.join(", ")
            },
        ]);
    }
    if args.json {
        crate::output::print(serde_json::to_string_pretty(&json_rows)? + "\n")?;
    } else {
        crate::output::print(format!(
            "{}cache: {}\n",
            markdown(
                &["id", "model", "params", "license", "repos", "cached"],
                &[Align::Left; 6],
                &rows
            ),
            hub.config().cache_dir.display()
        ))?;
    }
    Ok(0)
}
