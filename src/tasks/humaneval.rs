//! HumanEval (and HumanEval+) as lm-evaluation-harness runs it: the prompt as given, greedy
//! completion until a stop, and pass@1 by executing prompt + completion + test +
//! `check(entry_point)` (in our sandbox). The chat and tuned formats ask for the function
//! in a code block and rebuild the program around the extracted code.

use anyhow::Result;
use serde_json::json;

use super::{Item, Response, Scored, Scoring, Work};
use crate::datasets::humaneval::{self, HumanEvalTask};
use crate::datasets::{DataFile, DatasetFiles};
use crate::extract::{assemble_program, extract_code, CodeRule};
use crate::prompts::{Format, Message, PromptStyle};
use crate::sandbox::{Outcome, SandboxPolicy, Verdict};

pub const STOPS: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];
pub const MAX_TOKENS: usize = 1024;
/// The wall clock a program gets by default, seconds: lm-eval's `code_eval` (`timeout=3.0`).
pub const TIMEOUT_S: f64 = 3.0;

/// The sandbox's limits on one program: a verdict depends on them as much as on the program,
/// so they are part of HumanEval's protocol (a store made with other limits does not resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramLimits {
    /// Wall clock, milliseconds ([`TIMEOUT_S`] by default); the CPU limit is as many seconds,
    /// rounded up.
    pub wall_ms: u64,
    /// Address space, bytes.
    pub memory_bytes: u64,
}

impl Default for ProgramLimits {
    fn default() -> Self {
        ProgramLimits {
            wall_ms: (TIMEOUT_S * 1000.0) as u64,
            memory_bytes: SandboxPolicy::default().memory_bytes,
        }
    }
}

/// Items for the tasks; `gold` holds what is appended to the completion to test it.
pub fn build(
    files: &DatasetFiles,
    plus: bool,
    limit: Option<usize>,
    max_tokens: usize,
    style: &PromptStyle,
) -> Result<(Vec<Item>, Vec<DataFile>)> {
    let (tasks, file) = humaneval::load(files, plus)?;
    let n = limit.unwrap_or(usize::MAX).min(tasks.len());
    let mut items = Vec::with_capacity(n);
    for t in &tasks[..n] {
        items.push(item(t, max_tokens, style)?);
    }
    Ok((items, vec![file]))
}

fn item(t: &HumanEvalTask, max_tokens: usize, style: &PromptStyle) -> Result<Item> {
    let spec = &style.family.tasks.humaneval;
    let completion_style = style.format == Format::Raw
        || (style.format == Format::Tuned && spec.extract == CodeRule::Completion);
    let (prompt, stop, max_tokens, rule) = if completion_style {
        let limit = if style.format == Format::Tuned {
            spec.max_tokens
        } else {
            max_tokens
        };
        (
            t.prompt.clone(),
            STOPS.iter().map(|s| s.to_string()).collect(),
            limit,
            CodeRule::Completion,
        )
    } else {
        let (instruction, limit, rule) = match style.format {
            Format::Tuned => (
                spec.instruction.trim().to_string(),
                spec.max_tokens,
                spec.extract,
            ),
            _ => (
                "Complete the following Python function:".to_string(),
                max_tokens,
                CodeRule::CodeBlock,
            ),
        };
        let mut messages = Vec::new();
        if let Some(system) = style.system_prompt() {
            messages.push(Message::new("system", system));
        }
        messages.push(Message::new(
            "user",
            format!("{instruction}\n\n```python\n{}```", t.prompt),
        ));
        (style.render(&messages)?, style.stop.clone(), limit, rule)
    };
    Ok(Item {
        id: t.task_id.clone(),
        group: None,
        work: Work::Generate {
            prompt,
            stop,
            max_tokens,
        },
        gold: format!("{}\ncheck({})", t.test, t.entry_point),
        scoring: Scoring::Code {
            rule,
            entry_point: t.entry_point.clone(),
            function: t.prompt.clone(),
        },
        shared_prefix: None,
    })
}

/// The code taken from a response (the completion itself in lm-eval's raw format).
pub fn extracted_code(item: &Item, response: &Response) -> Option<String> {
    let Scoring::Code { rule, .. } = &item.scoring else {
        return None;
    };
    extract_code(completion(response), *rule)
}

/// The program run in the sandbox: lm-eval's `prompt + completion + "\n" + test + "\n" +
/// check(entry_point)`, or for extracted code the function rebuilt around it.
pub fn program(item: &Item, response: &Response) -> String {
    match &item.scoring {
        Scoring::Code {
            rule: CodeRule::CodeBlock,
            entry_point,
            function,
        } => {
            let code = extracted_code(item, response).unwrap_or_default();
            assemble_program(function, entry_point, &code, &item.gold)
        }
        _ => format!(
            "{}{}\n{}",
            item.work.prompt_text(),
            completion(response),
            item.gold
        ),
    }
}

/// The completion text of a response.
pub fn completion(response: &Response) -> &str {
    match response {
        Response::Generated { text, .. } => text,
        Response::Choices { .. } => "",
    }
}

/// pass@1 from the sandbox outcome. A reply with no code, or code that does not even
/// compile, is a format failure (no usable answer), not a wrong answer.
pub fn score(item: &Item, response: &Response, outcome: &Outcome) -> Scored {
    let passed = outcome.verdict == Verdict::Pass;
    let code = extracted_code(item, response);
    let syntax = !passed
        && (outcome.stderr_tail.contains("SyntaxError")
            || outcome.stderr_tail.contains("IndentationError"));
    let no_code = code.as_deref().is_none_or(|c| c.trim().is_empty());
    let coded = matches!(
        item.scoring,
        Scoring::Code {
            rule: CodeRule::CodeBlock,
            ..
        }
    );
    Scored {
        output: completion(response).to_string(),
        extracted: code.filter(|_| coded),
        correct: passed,
        format_failure: !passed && (syntax || no_code),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::Source;
    use crate::prompts::family_named;

    fn first_item(format: Format, family: &str) -> (Item, String) {
        let files = DatasetFiles::open("humaneval", &Source::Embedded).unwrap();
        let style =
            PromptStyle::for_model(format, family_named(family).unwrap(), None, "", "").unwrap();
        let (items, _) = build(&files, false, Some(1), MAX_TOKENS, &style).unwrap();
        let (tasks, _) = humaneval::load(&files, false).unwrap();
        (items.into_iter().next().unwrap(), tasks[0].prompt.clone())
    }

    /// A family whose code rule is `completion` prompts with the function alone and lm-eval's
    /// stops, even in the tuned format; a turn-based family wraps it in a user turn.
    #[test]
    fn completion_families_prompt_code_as_a_completion() {
        let (item, function) = first_item(Format::Tuned, "gemma-base");
        let Work::Generate { prompt, stop, .. } = &item.work else {
            panic!("generation expected")
        };
        assert_eq!(prompt, &function);
        assert_eq!(stop, &STOPS.map(String::from).to_vec());

        let (item, function) = first_item(Format::Tuned, "gemma-3");
        let Work::Generate { prompt, stop, .. } = &item.work else {
            panic!("generation expected")
        };
        assert!(prompt.starts_with("<start_of_turn>user\n"), "{prompt}");
        assert!(prompt.contains(&function) && prompt.ends_with("<start_of_turn>model\n"));
        assert!(stop.contains(&"<end_of_turn>".to_string()), "{stop:?}");
    }
}
