//! Submitting a sweep's cells as one Slurm job array: the batch script (this same frontier
//! binary, the same command line, from the same folder, plus `--cell $SLURM_ARRAY_TASK_ID`)
//! and `sbatch --array=…%K` with the user's partition, time, memory and GPUs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::cluster;
use super::jobs::{now, Submission};

/// What each array task asks Slurm for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub gpus: Option<String>,
    /// Most tasks running at once.
    pub array_limit: Option<u32>,
    /// CPUs per task (the engine's threads).
    pub cpus: u32,
}

/// Writes `DIR/slurm/task.sh`: the command line that started this sweep, run from the same
/// folder by the same binary, for the cell the array index names.
pub fn write_script(dir: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the frontier binary")?;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        args.push(
            a.into_string()
                .map_err(|a| anyhow::anyhow!("{a:?}: not UTF-8, cannot pass it to Slurm"))?,
        );
    }
    let mut script = String::from(
        "#!/bin/sh\n# One cell of a frontier sweep per array task (written by `frontier sweep --executor slurm`).\n",
    );
    script.push_str(&format!(
        "cd {} || exit 1\n",
        quote(&cwd.display().to_string())
    ));
    script.push_str(&format!("exec {}", quote(&exe.display().to_string())));
    for a in &args {
        script.push(' ');
        script.push_str(&quote(a));
    }
    script.push_str(" --cell \"$SLURM_ARRAY_TASK_ID\"\n");
    let path = dir.join("slurm").join("task.sh");
    std::fs::create_dir_all(dir.join("slurm").join("logs"))?;
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Submits these cells (array indices) as one array job.
pub fn submit(
    dir: &Path,
    script: &Path,
    cells: &[usize],
    options: &SlurmOptions,
    attempt: u32,
) -> Result<Submission> {
    let job = cluster::sbatch(&sbatch_options(dir, cells, options), script)?;
    Ok(Submission {
        job,
        cells: cells.to_vec(),
        attempt,
        at: now(),
    })
}

/// sbatch's options for these cells.
pub fn sbatch_options(dir: &Path, cells: &[usize], o: &SlurmOptions) -> Vec<String> {
    let mut spec = array_spec(cells);
    if let Some(k) = o.array_limit {
        spec.push_str(&format!("%{k}"));
    }
    let logs = dir.join("slurm").join("logs").join("cell-%a.job-%A.log");
    let mut out = vec![
        format!("--array={spec}"),
        "--job-name=frontier-sweep".to_string(),
        format!("--output={}", logs.display()),
        format!("--cpus-per-task={}", o.cpus.max(1)),
    ];
    for (flag, value) in [
        ("--partition", &o.partition),
        ("--time", &o.time),
        ("--mem", &o.mem),
        ("--gpus", &o.gpus),
    ] {
        if let Some(v) = value {
            out.push(format!("{flag}={v}"));
        }
    }
    out
}

/// `0-3`, `1,3`, `0-2,5`: the indices as sbatch's array ranges.
pub fn array_spec(cells: &[usize]) -> String {
    let mut sorted = cells.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// A word for `sh`, in single quotes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_spec(&[3, 1]), "1,3");
        assert_eq!(array_spec(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn options_carry_the_limit_and_what_the_user_asked_for() {
        let o = SlurmOptions {
            partition: Some("gpu".into()),
            mem: Some("8G".into()),
            array_limit: Some(2),
            cpus: 4,
            ..Default::default()
        };
        let args = sbatch_options(Path::new("/data/out"), &[0, 1, 2, 3], &o);
        assert_eq!(args[0], "--array=0-3%2");
        assert!(args.contains(&"--partition=gpu".to_string()));
        assert!(args.contains(&"--mem=8G".to_string()));
        assert!(args.contains(&"--cpus-per-task=4".to_string()));
        assert!(args.contains(&"--output=/data/out/slurm/logs/cell-%a.job-%A.log".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--time")));
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
