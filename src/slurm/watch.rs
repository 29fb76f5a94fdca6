//! Watching a submitted array until every cell has ended: each task's state as it changes,
//! the items its shard holds, a failed task recorded with Slurm's state and reason and
//! resubmitted once. Ctrl-C stops the watching only: the array keeps running.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::cluster::{self, TaskState};
use super::jobs::{now, shard_path, Failure, JobFile};
use super::submit::{submit, SlurmOptions};

/// How the watched cells ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOutcome {
    pub done: usize,
    pub failed: usize,
    pub resubmitted: usize,
    pub interrupted: bool,
}

/// Seconds between polls: `FRONTIER_SLURM_POLL` (default 5).
fn poll_interval() -> Duration {
    let secs = std::env::var("FRONTIER_SLURM_POLL")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(5.0);
    Duration::from_secs_f64(secs)
}

/// A task Slurm no longer knows (e.g. cancelled before it started) is taken as cancelled
/// after this long.
const VANISHED_AFTER: Duration = Duration::from_secs(60);

/// Watches `cells` (their latest submissions in `jobs`) to the end, resubmitting each
/// failed one once; keeps `DIR/slurm/jobs.json` up to date.
pub fn watch(
    dir: &Path,
    script: &Path,
    jobs: &mut JobFile,
    cells: &[usize],
    options: &SlurmOptions,
    quiet: bool,
) -> Result<WatchOutcome> {
    let say = |msg: String| {
        if !quiet {
            eprintln!("{msg}");
        }
    };
    let mut outcome = WatchOutcome::default();
    let mut active: BTreeSet<usize> = cells.iter().copied().collect();
    let mut resubmitted = BTreeSet::new();
    let mut shown: BTreeMap<usize, String> = BTreeMap::new();
    let mut unknown_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut last_progress = String::new();
    let mut errors = 0;
    while !active.is_empty() {
        if crate::interrupt::interrupted() {
            outcome.interrupted = true;
            say(format!(
                "stopped watching; the array keeps running: `frontier sweep --status {}`, then `frontier report {}`",
                dir.display(),
                dir.display()
            ));
            return Ok(outcome);
        }
        let tasks: BTreeMap<usize, (String, u32)> = active
            .iter()
            .filter_map(|&c| jobs.latest_task(c).map(|t| (c, t)))
            .collect();
        // Every watched cell's latest job, finished ones too (for the progress line).
        let ids: BTreeSet<String> = cells
            .iter()
            .filter_map(|&c| jobs.latest_task(c))
            .filter_map(|(t, _)| t.split('_').next().map(str::to_string))
            .collect();
        let states = match cluster::states(&ids.into_iter().collect::<Vec<_>>()) {
            Ok(s) => {
                errors = 0;
                s
            }
            Err(e) if errors < 5 => {
                errors += 1;
                say(format!("slurm: {e:#} (trying again)"));
                sleep(poll_interval());
                continue;
            }
            Err(e) => bail!("asking Slurm about the array: {e:#}"),
        };
        for (&cell, (task, attempt)) in &tasks {
            let state = match states.get(task) {
                Some(s) => s.clone(),
                None => {
                    let since = *unknown_since
                        .entry(task.clone())
                        .or_insert_with(Instant::now);
                    if since.elapsed() < VANISHED_AFTER {
                        continue;
                    }
                    TaskState {
                        task: task.clone(),
                        state: "CANCELLED".into(),
                        exit_code: String::new(),
                        reason: "no longer known to Slurm".into(),
                    }
                }
            };
            let label = format!("{} {}", jobs.cells[cell].model, jobs.cells[cell].quant);
            let described = state.describe();
            if shown.get(&cell) != Some(&described) {
                say(format!("cell {cell} ({label}) task {task}: {described}"));
                shown.insert(cell, described.clone());
            }
            if !state.finished() {
                continue;
            }
            active.remove(&cell);
            if state.succeeded() {
                outcome.done += 1;
                continue;
            }
            let action = if resubmitted.insert(cell) {
                let again = submit(dir, script, &[cell], options, attempt + 1)?;
                let action = format!("resubmitted as {}_{cell}", again.job);
                jobs.submissions.push(again);
                active.insert(cell);
                outcome.resubmitted += 1;
                action
            } else {
                outcome.failed += 1;
                "given up after a resubmission".to_string()
            };
            say(format!(
                "cell {cell} ({label}) task {task} ended {described}: {action}"
            ));
            jobs.failures.push(Failure {
                cell,
                task: task.clone(),
                state: state.state.clone(),
                reason: state.reason.clone(),
                exit_code: state.exit_code.clone(),
                action,
                at: now(),
            });
            jobs.save(dir)?;
        }
        let progress = progress_line(dir, jobs, cells, &states);
        if progress != last_progress {
            say(progress.clone());
            last_progress = progress;
        }
        if !active.is_empty() {
            sleep(poll_interval());
        }
    }
    Ok(outcome)
}

/// `items 37/80 stored; tasks: 2 running, 1 pending, 1 done`.
fn progress_line(
    dir: &Path,
    jobs: &JobFile,
    cells: &[usize],
    states: &BTreeMap<String, TaskState>,
) -> String {
    let (mut stored, mut planned) = (0, 0);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for &cell in cells {
        let path = shard_path(dir, cell);
        let summary = if path.is_file() {
            crate::store::summarize(&path).unwrap_or_default()
        } else {
            Default::default()
        };
        stored += summary.items;
        planned += summary.planned.max(jobs.cells[cell].items);
        let state = jobs
            .latest_task(cell)
            .and_then(|(t, _)| states.get(&t).map(|s| s.state.to_lowercase()))
            .unwrap_or_else(|| "submitted".into());
        *counts.entry(state).or_default() += 1;
    }
    let tasks: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!(
        "items {stored}/{planned} stored; tasks: {}",
        tasks.join(", ")
    )
}

/// Sleeps, waking early on Ctrl-C.
fn sleep(total: Duration) {
    let end = Instant::now() + total;
    while Instant::now() < end && !crate::interrupt::interrupted() {
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
}
