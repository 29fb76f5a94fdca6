//! Sweeps on a Slurm cluster (`frontier sweep --executor slurm`): the grid as one job array,
//! one task per (model, quant) cell, each running that cell with this same binary into its
//! own store shard (`DIR/shards/cell-N.sqlite`); the submitting command watches, resubmits
//! a failed task once and merges the shards into `DIR/results.sqlite`. Cells already done
//! in their shards are not submitted again.

pub mod cluster;
pub mod jobs;
pub mod shards;
pub mod status;
pub mod submit;
pub mod watch;

use std::path::Path;

use anyhow::{bail, Result};

use frontier_core::error::bad_input;
pub use jobs::{shard_path, CellPlan, JobFile};
pub use submit::SlurmOptions;
pub use watch::WatchOutcome;

/// A sweep to run as an array.
pub struct ArrayRun<'a> {
    /// The output folder (absolute: the tasks run on other nodes).
    pub dir: &'a Path,
    pub cells: Vec<CellPlan>,
    pub options: SlurmOptions,
    /// Submit and return the job id without watching.
    pub detach: bool,
    pub quiet: bool,
}

/// How the array run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Submitted, not watched: the job id.
    Detached(String),
    /// Watched to the end (or until Ctrl-C).
    Watched(WatchOutcome),
}

/// Submits the cells not yet done in their shards as one array, then (unless detached)
/// watches them to the end.
pub fn run(r: &ArrayRun<'_>) -> Result<Ended> {
    cluster::require()?;
    let say = |msg: String| {
        if !r.quiet {
            eprintln!("{msg}");
        }
    };
    let mut jobs = match JobFile::load(r.dir)? {
        Some(mut previous) => {
            let grid = |c: &[CellPlan]| -> Vec<(String, String)> {
                c.iter()
                    .map(|c| (c.model.clone(), c.quant.clone()))
                    .collect()
            };
            if grid(&previous.cells) != grid(&r.cells) {
                return Err(bad_input(format!(
                    "{}: holds a Slurm sweep of another grid (slurm/jobs.json); give this one its own --out",
                    r.dir.display()
                )));
            }
            let ids: Vec<String> = previous.submissions.iter().map(|s| s.job.clone()).collect();
            let live: Vec<String> = cluster::states(&ids)?
                .into_values()
                .filter(|t| !t.finished())
                .map(|t| t.task)
                .collect();
            if !live.is_empty() {
                bail!(
                    "{}: tasks {} of an earlier submission are still queued or running; watch them with `frontier sweep --status {}` or scancel them",
                    r.dir.display(),
                    live.join(", "),
                    r.dir.display()
                );
            }
            // Same cells; the items may differ (another --limit).
            previous.cells = r.cells.clone();
            previous
        }
        None => JobFile {
            cells: r.cells.clone(),
            ..Default::default()
        },
    };
    std::fs::create_dir_all(r.dir.join("shards"))?;
    let todo: Vec<usize> = (0..r.cells.len())
        .filter(|&c| !done_in_shard(r.dir, c, r.cells[c].items))
        .collect();
    if todo.is_empty() {
        say(format!(
            "every cell is done in its shard under {}; nothing to submit",
            r.dir.join("shards").display()
        ));
        return Ok(Ended::Watched(WatchOutcome::default()));
    }
    let script = submit::write_script(r.dir)?;
    let submission = submit::submit(r.dir, &script, &todo, &r.options, 1)?;
    let job = submission.job.clone();
    jobs.submissions.push(submission);
    jobs.save(r.dir)?;
    say(format!(
        "submitted job {job}: {} array task{} (cells {}{}), logs in {}",
        todo.len(),
        if todo.len() == 1 { "" } else { "s" },
        submit::array_spec(&todo),
        if todo.len() < r.cells.len() {
            format!("; {} done before", r.cells.len() - todo.len())
        } else {
            String::new()
        },
        r.dir.join("slurm").join("logs").display()
    ));
    if r.detach {
        return Ok(Ended::Detached(job));
    }
    let outcome = watch::watch(r.dir, &script, &mut jobs, &todo, &r.options, r.quiet)?;
    jobs.save(r.dir)?;
    Ok(Ended::Watched(outcome))
}

/// Whether cell `cell`'s shard holds it finished, with every planned item.
fn done_in_shard(dir: &Path, cell: usize, items: usize) -> bool {
    let path = shard_path(dir, cell);
    path.is_file()
        && crate::store::summarize(&path)
            .is_ok_and(|s| s.status.as_deref() == Some("done") && s.items >= s.planned.max(items))
}
