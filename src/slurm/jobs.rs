//! What a sweep folder records about its Slurm runs (`DIR/slurm/jobs.json`): the grid's
//! cells in array order, every submission (job id, cells, attempt) and every failed task
//! with Slurm's state and reason. The watcher, `--status` and a rerun read it back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One cell of the grid: array index = position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellPlan {
    pub model: String,
    pub quant: String,
    /// Items the cell's tasks cover (all formats).
    pub items: usize,
}

/// One `sbatch` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub job: String,
    pub cells: Vec<usize>,
    /// 1 for the first submission of these cells in a sweep, 2 for a resubmission.
    pub attempt: u32,
    pub at: String,
}

/// A task that ended without success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub cell: usize,
    pub task: String,
    pub state: String,
    pub reason: String,
    pub exit_code: String,
    /// What was done about it: `resubmitted as JOB_I` or `given up`.
    pub action: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    pub cells: Vec<CellPlan>,
    pub submissions: Vec<Submission>,
    pub failures: Vec<Failure>,
}

impl JobFile {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("slurm").join("jobs.json")
    }

    /// The folder's job file, if it has one.
    pub fn load(dir: &Path) -> Result<Option<JobFile>> {
        let path = JobFile::path(dir);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?,
        ))
    }

    /// Writes it (a temporary file renamed over the old one).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = JobFile::path(dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The latest array task of a cell (`JOB_INDEX`) and its attempt.
    pub fn latest_task(&self, cell: usize) -> Option<(String, u32)> {
        self.submissions
            .iter()
            .rev()
            .find(|s| s.cells.contains(&cell))
            .map(|s| (format!("{}_{cell}", s.job), s.attempt))
    }

    /// The failures recorded for a cell's task.
    pub fn failure_of(&self, task: &str) -> Option<&Failure> {
        self.failures.iter().find(|f| f.task == task)
    }
}

/// `DIR/shards/cell-N.sqlite`: the store an array task writes.
pub fn shard_path(dir: &Path, cell: usize) -> PathBuf {
    dir.join("shards").join(format!("cell-{cell}.sqlite"))
}

/// The time now, for the records.
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    frontier_core::units::utc_timestamp(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_task_follows_resubmissions_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("slurm")).unwrap();
        let mut f = JobFile::default();
        f.submissions.push(Submission {
            job: "5".into(),
            cells: vec![0, 1, 2],
            attempt: 1,
            at: now(),
        });
        f.submissions.push(Submission {
            job: "9".into(),
            cells: vec![1],
            attempt: 2,
            at: now(),
        });
        assert_eq!(f.latest_task(1), Some(("9_1".into(), 2)));
        assert_eq!(f.latest_task(2), Some(("5_2".into(), 1)));
        assert_eq!(f.latest_task(3), None);
        f.save(dir.path()).unwrap();
        assert_eq!(JobFile::load(dir.path()).unwrap(), Some(f));
    }
}
