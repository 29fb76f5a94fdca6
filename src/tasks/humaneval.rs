//! HumanEval (and HumanEval+) as lm-evaluation-harness runs it: the prompt as given, greedy
//! completion until a stop, and pass@1 by executing prompt + completion + test +
//! `check(entry_point)` (in our sandbox).

use anyhow::Result;
use serde_json::json;

use super::{Item, Response, Scored, Work};
use crate::datasets::humaneval::{self, HumanEvalTask};
use crate::datasets::{DataFile, DatasetFiles};
use crate::sandbox::{Outcome, Verdict};

pub const STOPS: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];
pub const MAX_TOKENS: usize = 1024;

/// Items for the tasks; `gold` holds what is appended to the completion to test it.
pub fn build(
    files: &DatasetFiles,
    plus: bool,
    limit: Option<usize>,
    max_tokens: usize,
) -> Result<(Vec<Item>, Vec<DataFile>)> {
    let (tasks, file) = humaneval::load(files, plus)?;
    let n = limit.unwrap_or(usize::MAX).min(tasks.len());
    let items = tasks[..n].iter().map(|t| item(t, max_tokens)).collect();
    Ok((items, vec![file]))
}

fn item(t: &HumanEvalTask, max_tokens: usize) -> Item {
    Item {
        id: t.task_id.clone(),
        group: None,
        work: Work::Generate {
            prompt: t.prompt.clone(),
            stop: STOPS.iter().map(|s| s.to_string()).collect(),
            max_tokens,
        },
        gold: format!("{}\ncheck({})", t.test, t.entry_point),
    }
}

/// The program HF `code_eval` runs: `prompt + completion + "\n" + test + "\n" + check(entry_point)`.
pub fn program(item: &Item, completion: &str) -> String {
    format!("{}{}\n{}", item.work.prompt_text(), completion, item.gold)
}

/// The completion text of a response.
pub fn completion(response: &Response) -> &str {
    match response {
        Response::Generated { text, .. } => text,
        Response::Choices { .. } => "",
    }
}

/// pass@1 from the sandbox outcome. A program that does not even compile is a format
/// failure (the completion is not usable code), not a wrong answer.
pub fn score(response: &Response, outcome: &Outcome) -> Scored {
    let passed = outcome.verdict == Verdict::Pass;
    let syntax = !passed
        && (outcome.stderr_tail.contains("SyntaxError")
            || outcome.stderr_tail.contains("IndentationError"));
    Scored {
        output: completion(response).to_string(),
        extracted: None,
        correct: passed,
        format_failure: syntax,
        metrics: [("pass@1".to_string(), if passed { 1.0 } else { 0.0 })].into(),
        detail: json!({
            "verdict": outcome.verdict,
            "reason": outcome.reason,
            "exit_code": outcome.exit_code,
            "signal": outcome.signal,
            "stderr_tail": outcome.stderr_tail,
            "duration_ms": outcome.duration_ms,
        }),
    }
}
