//! HumanEval (`HumanEval.jsonl` or `.jsonl.gz`) and HumanEval+ in the same schema
//! (`HumanEvalPlus-OriginFmt.jsonl.gz`, whose `test` holds the extra tests).

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::source::{text_of, DataFile, DatasetFiles};
use frontier_core::error::bad_input;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanEvalTask {
    pub task_id: String,
    pub prompt: String,
    pub canonical_solution: String,
    pub test: String,
    pub entry_point: String,
}

pub const HUMANEVAL: &str = "humaneval/HumanEval.jsonl";
pub const HUMANEVAL_PLUS: &str = "humaneval/HumanEvalPlus-OriginFmt.jsonl.gz";

/// The 164 tasks; with `plus`, the HumanEval+ tests.
pub fn load(files: &DatasetFiles, plus: bool) -> Result<(Vec<HumanEvalTask>, DataFile)> {
    let path = if plus { HUMANEVAL_PLUS } else { HUMANEVAL };
    let mut file = files.read(path);
    if file.is_err() && !plus {
        // A folder may hold the release's compressed name instead.
        file = files.read(&format!("{HUMANEVAL}.gz"));
    }
    let file = file?;
    let tasks = parse_jsonl(&file)?;
    files.check_rows(&file, tasks.len())?;
    Ok((tasks, file))
}

pub fn parse_jsonl(file: &DataFile) -> Result<Vec<HumanEvalTask>> {
    let text = text_of(file)?;
    let mut out: Vec<HumanEvalTask> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let task: HumanEvalTask = serde_json::from_str(line)
            .map_err(|e| bad_input(format!("{}: line {}: {e}", file.shown, n + 1)))?;
        if out.iter().any(|t| t.task_id == task.task_id) {
            return Err(bad_input(format!(
                "{}: line {}: duplicate task {}",
                file.shown,
                n + 1,
                task.task_id
            )));
        }
        out.push(task);
    }
    Ok(out)
}
