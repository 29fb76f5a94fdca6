//! Scoring a response by its item's rules (the sandboxed HumanEval run aside).

use super::{gsm8k, mmlu, Item, Response, Scored, Scoring};

/// Scores a response whose item needs no sandbox; `None` for code items.
pub fn score(item: &Item, response: &Response) -> Option<Scored> {
    match item.scoring {
        Scoring::Choice => Some(mmlu::score(item, response)),
        Scoring::Gsm8kLmEval { .. } | Scoring::Number { .. } => Some(gsm8k::score(item, response)),
        Scoring::Code { .. } => None,
    }
}

/// Whether an item is scored by running code.
pub fn needs_sandbox(item: &Item) -> bool {
    matches!(item.scoring, Scoring::Code { .. })
}
