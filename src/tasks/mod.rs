//! Benchmark tasks as lm-evaluation-harness defines them: each turns dataset rows into
//! work for the engine (score continuations, or generate) and scores what comes back.
//! Everything here is pure (no engine, no I/O beyond the dataset files); the sandbox run of
//! generated code is passed in.

pub mod gsm8k;
pub mod humaneval;
pub mod mmlu;
pub mod plan;
pub mod rebuild;
pub mod score;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use plan::{build_plan, TaskFormats, TaskOptions, TaskPlan};

use crate::extract::{CodeRule, NumberRule};

/// The tasks frontier runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskName {
    Mmlu,
    Gsm8k,
    Gsm8kCot,
    Humaneval,
}

impl TaskName {
    pub const ALL: [TaskName; 4] = [
        TaskName::Mmlu,
        TaskName::Gsm8k,
        TaskName::Gsm8kCot,
        TaskName::Humaneval,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskName::Mmlu => "mmlu",
            TaskName::Gsm8k => "gsm8k",
            TaskName::Gsm8kCot => "gsm8k_cot",
            TaskName::Humaneval => "humaneval",
        }
    }

    pub fn parse(s: &str) -> Option<TaskName> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        TaskName::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The metric a comparison table shows for this task.
    pub fn primary_metric(self) -> &'static str {
        match self {
            TaskName::Mmlu => "acc",
            TaskName::Gsm8k | TaskName::Gsm8kCot => "strict_match",
            TaskName::Humaneval => "pass@1",
        }
    }
}

/// What the engine is asked to do for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Log-probability of each continuation after the context (multiple choice).
    Choices {
        context: String,
        continuations: Vec<String>,
    },
    /// Greedy generation until a stop string, end of generation, or `max_tokens`.
    Generate {
        prompt: String,
        stop: Vec<String>,
        max_tokens: usize,
    },
}

impl Work {
    /// The text the model sees (the context, or the prompt).
    pub fn prompt_text(&self) -> &str {
        match self {
            Work::Choices { context, .. } => context,
            Work::Generate { prompt, .. } => prompt,
        }
    }
}

/// How an item's response is scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scoring {
    /// The continuation with the highest log-probability against the gold letter.
    Choice,
    /// lm-eval's GSM8K filters: strict `#### N` (or `The answer is N.` for CoT) and flexible.
    Gsm8kLmEval { cot: bool },
    /// Number rules tried in order (a family's tuned extraction), and flexible.
    Number { rules: Vec<NumberRule> },
    /// HumanEval: how code is taken from the reply; the program is built around it and the
    /// task's function prompt (signature and docstring).
    Code {
        rule: CodeRule,
        entry_point: String,
        function: String,
    },
}

/// One item of a task, ready for the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id: `abstract_algebra/12`, `test/5`, `HumanEval/0`.
    pub id: String,
    /// MMLU subject, for per-subject scores.
    pub group: Option<String>,
    pub work: Work,
    pub gold: String,
    pub scoring: Scoring,
    /// The few-shot head of the prompt, when the protocol gives every item of its group the
    /// same one (MMLU's subject, GSM8K `fixed`, `gsm8k_cot`): evaluated once for all of them.
    /// Cut where the prompt builder knows the head ends ([`few_shot_head`]), never where the
    /// prompts of the run happen to agree, so an item's result does not depend on the others.
    #[serde(default)]
    pub shared_prefix: Option<String>,
}

/// The head of a few-shot prompt: everything before the line on which the item's own text
/// (`item_text`, e.g. its question block) begins, its last occurrence in the prompt. `None`
/// when the text is not in the prompt or nothing precedes it. The same rule for every item
/// and format: raw prompts, and chat turns rendered by any template (the head then ends
/// with the last user turn's header).
pub fn few_shot_head(prompt: &str, item_text: &str) -> Option<String> {
    let at = prompt.rfind(item_text)?;
    let line = prompt[..at].rfind('\n').map_or(0, |n| n + 1);
    (line > 0).then(|| prompt[..line].to_string())
}

/// What the engine returned for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Choices {
        /// Summed log-probability of each continuation.
        logprobs: Vec<f64>,
        /// Whether each continuation was the greedy one.
        greedy: Vec<bool>,
    },
    Generated {
        text: String,
        stop_reason: frontier_engine::StopReason,
    },
}

/// The scored result of one item: what is stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The raw output: generated text, or the continuations' log-probabilities.
    pub output: String,
    /// The answer extracted from the output (`None` when nothing could be extracted).
    pub extracted: Option<String>,
    pub correct: bool,
    /// No extractable answer (a format failure, as opposed to a wrong answer).
    pub format_failure: bool,
    /// Every metric of the item, 0 or 1 (e.g. `strict_match`, `flexible_extract`).
    pub metrics: BTreeMap<String, f64>,
    /// Task-specific detail (sandbox verdict and reason, both GSM8K extractions).
    pub detail: serde_json::Value,
}
