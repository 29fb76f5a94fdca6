//! Getting an answer out of a model's reply: lm-evaluation-harness's GSM8K filters and exact
//! match ([`lm_eval`]), and the rules a family file chooses for numbers and code ([`rules`]).
//! Used by the tasks (scoring) and the prompt templates (which name their rules).

pub mod lm_eval;
pub mod rules;

pub use rules::{assemble_program, extract_code, extract_number, CodeRule, NumberRule};
