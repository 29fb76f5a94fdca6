//! Talking to Slurm through its own commands: `sbatch` submits, `squeue` lists live tasks,
//! `sacct` finished ones (`scontrol show job` where accounting is off). Parsing their
//! output is pure and tested here.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context, Result};
use frontier_core::error::bad_input;

/// One array task as Slurm sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// `JOB_INDEX`, e.g. `41_2`.
    pub task: String,
    /// Slurm's state, first word (`CANCELLED by 0` → `CANCELLED`).
    pub state: String,
    /// `code:signal`, where known.
    pub exit_code: String,
    /// Slurm's reason (empty for `None`).
    pub reason: String,
}

impl TaskState {
    /// Whether the task has ended (for good or not).
    pub fn finished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "OUT_OF_MEMORY"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "REVOKED"
        )
    }

    pub fn succeeded(&self) -> bool {
        self.state == "COMPLETED"
    }

    /// The state with its reason and exit code, for people: `OUT_OF_MEMORY (exit 0:125)`.
    /// A finished task's reason is left out where it only says why it once waited.
    pub fn describe(&self) -> String {
        if self.succeeded() {
            return self.state.clone();
        }
        let waited = [
            "NonZeroExitCode",
            "JobArrayTaskLimit",
            "Resources",
            "Priority",
            "BeginTime",
            "Dependency",
        ];
        let mut extra = Vec::new();
        if !self.reason.is_empty() && !waited.contains(&self.reason.as_str()) && self.finished() {
            extra.push(self.reason.clone());
        }
        if !self.exit_code.is_empty() && self.exit_code != "0:0" {
            extra.push(format!("exit {}", self.exit_code));
        }
        if extra.is_empty() || !self.finished() {
            if !self.finished() && !self.reason.is_empty() {
                return format!("{} ({})", self.state, self.reason);
            }
            return self.state.clone();
        }
        format!("{} ({})", self.state, extra.join(", "))
    }
}

/// Fails with a clear message when Slurm's commands are not on PATH.
pub fn require() -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("sbatch").is_file()))
        .unwrap_or(false);
    if !found {
        return Err(bad_input(
            "--executor slurm: Slurm is not installed here (no sbatch on PATH; scripts/slurm-up sets up a single-node Slurm)",
        ));
    }
    Ok(())
}

/// Runs a Slurm command and returns its stdout, or its stderr as the error.
fn run(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits a batch script with these options; returns the job id.
pub fn sbatch(options: &[String], script: &std::path::Path) -> Result<String> {
    let mut args = vec!["--parsable".to_string()];
    args.extend(options.iter().cloned());
    args.push(script.display().to_string());
    let out = run("sbatch", &args)?;
    parse_job_id(&out).with_context(|| format!("sbatch printed no job id: {out:?}"))
}

/// The job id `sbatch --parsable` printed (`41` or `41;cluster`).
pub fn parse_job_id(out: &str) -> Option<String> {
    let id = out.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// The state of every task of these array jobs, by `JOB_INDEX`: live ones from `squeue`,
/// finished ones from `sacct`, or from `scontrol` when there is no accounting.
pub fn states(jobs: &[String]) -> Result<BTreeMap<String, TaskState>> {
    let mut out = BTreeMap::new();
    if jobs.is_empty() {
        return Ok(out);
    }
    let list = jobs.join(",");
    let finished = match run(
        "sacct",
        &[
            "-j".into(),
            list.clone(),
            "-X".into(),
            "-P".into(),
            "-n".into(),
            "--format=JobID,State,ExitCode,Reason".into(),
        ],
    ) {
        Ok(text) => parse_sacct(&text),
        Err(_) => {
            let mut all = Vec::new();
            for job in jobs {
                if let Ok(text) = run(
                    "scontrol",
                    &["-o".into(), "show".into(), "job".into(), job.clone()],
                ) {
                    all.extend(parse_scontrol(&text));
                }
            }
            all
        }
    };
    for t in finished {
        out.insert(t.task.clone(), t);
    }
    // squeue knows the live tasks best (sacct lists pending ones as ranges).
    let live = run(
        "squeue",
        &[
            "-h".into(),
            "-r".into(),
            "--me".into(),
            "-o".into(),
            "%i|%T|%r".into(),
        ],
    )?;
    for t in parse_squeue(&live) {
        let job = t.task.split('_').next().unwrap_or_default();
        if jobs.iter().any(|j| j == job) {
            out.insert(t.task.clone(), t);
        }
    }
    Ok(out)
}

/// `squeue -h -r -o '%i|%T|%r'` lines.
pub fn parse_squeue(text: &str) -> Vec<TaskState> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            let (task, state, reason) = (f.next()?.trim(), f.next()?.trim(), f.next()?.trim());
            array_task(task).then(|| TaskState {
                task: task.to_string(),
                state: state.to_string(),
                exit_code: String::new(),
                reason: none_empty(reason),
            })
        })
        .collect()
}

/// `sacct -X -P -n --format=JobID,State,ExitCode,Reason` lines (ranges of pending tasks,
/// `41_[2-3]`, are left to squeue).
pub fn parse_sacct(text: &str) -> Vec<TaskState> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            let (task, state) = (f.next()?.trim(), f.next()?.trim());
            let (exit_code, reason) = (f.next().unwrap_or("").trim(), f.next().unwrap_or(""));
            array_task(task).then(|| TaskState {
                task: task.to_string(),
                state: state.split_whitespace().next().unwrap_or("").to_string(),
                exit_code: exit_code.to_string(),
                reason: none_empty(reason.trim()),
            })
        })
        .collect()
}

/// `scontrol -o show job JOB` lines: one per array task, `key=value` fields.
pub fn parse_scontrol(text: &str) -> Vec<TaskState> {
    text.lines()
        .filter_map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .map(str::to_string)
            };
            let (job, index) = (field("ArrayJobId")?, field("ArrayTaskId")?);
            let task = format!("{job}_{index}");
            array_task(&task).then(|| TaskState {
                task,
                state: field("JobState").unwrap_or_default(),
                exit_code: field("ExitCode").unwrap_or_default(),
                reason: none_empty(&field("Reason").unwrap_or_default()),
            })
        })
        .collect()
}

/// `41_2`: one array task (not `41`, `41_[2-3]` or `41_2.batch`).
fn array_task(id: &str) -> bool {
    id.split_once('_').is_some_and(|(j, i)| {
        !j.is_empty()
            && !i.is_empty()
            && j.chars().all(|c| c.is_ascii_digit())
            && i.chars().all(|c| c.is_ascii_digit())
    })
}

fn none_empty(s: &str) -> String {
    if s == "None" || s == "(null)" {
        String::new()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sacct_lines_become_tasks_and_ranges_are_left_out() {
        let text = "5_0|COMPLETED|0:0|None\n5_2|CANCELLED by 0|0:15|None\n\
                    5_[3-4%2]|PENDING|0:0|JobArrayTaskLimit\n5_1|OUT_OF_MEMORY|0:125|OutOfMemory\n";
        let t = parse_sacct(text);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].state, "CANCELLED");
        assert_eq!(t[1].reason, "");
        assert!(t[1].finished() && !t[1].succeeded());
        assert_eq!(t[2].describe(), "OUT_OF_MEMORY (OutOfMemory, exit 0:125)");
        assert_eq!(t[0].describe(), "COMPLETED");
        let waited =
            parse_sacct("6_3|COMPLETED|0:0|JobArrayTaskLimit\n6_4|FAILED|2:0|JobArrayTaskLimit\n");
        assert_eq!(waited[0].describe(), "COMPLETED");
        assert_eq!(waited[1].describe(), "FAILED (exit 2:0)");
    }

    #[test]
    fn squeue_and_scontrol_lines() {
        let q = parse_squeue("7_1|RUNNING|None\n7_2|PENDING|JobArrayTaskLimit\n8|RUNNING|None\n");
        assert_eq!(q.len(), 2);
        assert!(!q[1].finished());
        assert_eq!(q[1].describe(), "PENDING (JobArrayTaskLimit)");
        let s = parse_scontrol(
            "JobId=9 ArrayJobId=7 ArrayTaskId=3 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:0 X=y\n\
             JobId=7 ArrayJobId=7 ArrayTaskId=4-5 JobState=PENDING Reason=None ExitCode=0:0\n",
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].task, "7_3");
        assert_eq!(s[0].describe(), "TIMEOUT (TimeLimit)");
    }

    #[test]
    fn job_ids_from_sbatch() {
        assert_eq!(parse_job_id("41\n").as_deref(), Some("41"));
        assert_eq!(parse_job_id("41;frontier\n").as_deref(), Some("41"));
        assert_eq!(parse_job_id("Submitted batch job 41"), None);
    }
}
