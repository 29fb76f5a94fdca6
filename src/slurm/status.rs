//! `frontier sweep --status DIR`: each array task of the sweep in DIR with Slurm's state and
//! reason, its attempt, and what its shard holds (items stored / planned, the cell's status),
//! then every failure recorded, with what was done about it.

use std::path::Path;

use anyhow::Result;

use super::cluster;
use super::jobs::{shard_path, JobFile};
use crate::output::table::{markdown, Align};
use frontier_core::error::bad_input;

/// The status table (markdown) of the sweep in `dir`.
pub fn render(dir: &Path) -> Result<String> {
    let Some(jobs) = JobFile::load(dir)? else {
        return Err(bad_input(format!(
            "{}: no Slurm sweep here (no slurm/jobs.json; `frontier sweep --executor slurm --out DIR` makes one)",
            dir.display()
        )));
    };
    let mut ids: Vec<String> = jobs.submissions.iter().map(|s| s.job.clone()).collect();
    ids.dedup();
    let (states, note) = match cluster::require().and_then(|_| cluster::states(&ids)) {
        Ok(s) => (s, None),
        Err(e) => (Default::default(), Some(format!("{e:#}"))),
    };
    let mut rows = Vec::new();
    for (cell, plan) in jobs.cells.iter().enumerate() {
        let task = jobs.latest_task(cell);
        let state = match &task {
            Some((t, _)) => match (states.get(t), jobs.failure_of(t)) {
                (Some(s), _) => s.describe(),
                (None, Some(f)) => format!("{} ({})", f.state, f.reason),
                (None, None) => "unknown to Slurm".into(),
            },
            None => "not submitted (done before)".into(),
        };
        let path = shard_path(dir, cell);
        let shard = if path.is_file() {
            crate::store::summarize(&path)?
        } else {
            Default::default()
        };
        rows.push(vec![
            cell.to_string(),
            plan.model.clone(),
            plan.quant.clone(),
            task.as_ref().map_or("-".into(), |(t, _)| t.clone()),
            task.as_ref().map_or("-".into(), |(_, a)| a.to_string()),
            state,
            format!("{}/{}", shard.items, shard.planned.max(plan.items)),
            shard.status.unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut out = markdown(
        &[
            "Cell", "Model", "Quant", "Task", "Attempt", "Slurm", "Items", "Shard",
        ],
        &[
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Left,
            Align::Right,
            Align::Left,
        ],
        &rows,
    );
    if !jobs.failures.is_empty() {
        out.push_str("\nFailures:\n");
        for f in &jobs.failures {
            let reason = if f.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.reason)
            };
            let exit = if f.exit_code.is_empty() {
                String::new()
            } else {
                format!(", exit {}", f.exit_code)
            };
            out.push_str(&format!(
                "- {} cell {} task {}: {}{reason}{exit}; {}\n",
                f.at, f.cell, f.task, f.state, f.action
            ));
        }
    }
    if let Some(n) = note {
        out.push_str(&format!("\n(Slurm not asked: {n})\n"));
    }
    Ok(out)
}
