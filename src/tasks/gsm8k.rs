//! GSM8K as lm-evaluation-harness defines it: `gsm8k` (5-shot from train, drawn per test
//! item by `random.Random(1234)` exactly as lm-eval draws them, `Question: …\nAnswer:`) and
//! `gsm8k_cot` (the 8 fixed chain-of-thought exemplars, `Q: …\nA:`); greedy generation;
//! `strict-match` and `flexible-extract` scoring.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{few_shot_head, Item, Response, Scored, Scoring, Work};
use crate::datasets::gsm8k::{self, GsmProblem};
use crate::datasets::{DataFile, DatasetFiles};
use crate::extract::extract_number;
use crate::extract::lm_eval::{gsm8k_cot_strict, gsm8k_exact_match, gsm8k_flexible, gsm8k_strict};
use crate::prompts::{AnswerStyle, Fewshot, Format, Message, PromptStyle};
use crate::pyrandom::PyRandom;
use frontier_core::error::bad_input;

/// lm-eval's few-shot seed.
pub const FEWSHOT_SEED: u64 = 1234;
pub const STOPS: [&str; 3] = ["Question:", "</s>", "<|im_end|>"];
pub const COT_STOPS: [&str; 3] = ["Q:", "</s>", "<|im_end|>"];

/// How `gsm8k`'s exemplars are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// As lm-eval: one `Random(1234)`, a new `sample(train, k)` for each test item in order.
    Lmeval,
    /// The first draw of `Random(1234)` for every item: one shared prefix (faster, but a
    /// different protocol from published numbers).
    Fixed,
}

#[derive(Debug, Clone)]
pub struct Gsm8kOptions {
    pub shots: usize,
    pub sampling: Sampling,
    pub limit: Option<usize>,
    pub max_tokens: usize,
}

#[derive(Debug, Clone, Deserialize)]
struct Exemplar {
    question: String,
    target: String,
}

/// The 8 chain-of-thought exemplars of lm-eval's `gsm8k_cot` (Wei et al.).
fn cot_exemplars() -> Vec<Exemplar> {
    serde_json::from_str(include_str!("gsm8k_cot_exemplars.json"))
        .expect("embedded exemplars parse")
}

/// `Question: {q}\nAnswer:`
pub fn question_block(question: &str) -> String {
    format!("Question: {question}\nAnswer:")
}

/// The `gsm8k` prompt: solved train problems, then the test question.
pub fn prompt(shots: &[&GsmProblem], question: &str) -> String {
    let mut p = String::new();
    for s in shots {
        p.push_str(&question_block(&s.question));
        p.push(' ');
        p.push_str(&s.answer);
        p.push_str("\n\n");
    }
    p.push_str(&question_block(question));
    p
}

/// The `gsm8k_cot` prompt: `Q: …\nA: …` exemplars, then the test question.
pub fn cot_prompt(question: &str) -> String {
    let mut p = String::new();
    for e in cot_exemplars() {
        p.push_str(&format!("Q: {}\nA: {}\n\n", e.question, e.target));
    }
    p.push_str(&format!("Q: {question}\nA:"));
    p
}

/// The train indices of each test item's exemplars, for the first `n_items` items.
pub fn exemplar_indices(
    n_train: usize,
    shots: usize,
    n_items: usize,
    sampling: Sampling,
) -> Vec<Vec<usize>> {
    let mut rnd = PyRandom::new(FEWSHOT_SEED);
    match sampling {
        Sampling::Lmeval => (0..n_items).map(|_| rnd.sample(n_train, shots)).collect(),
        Sampling::Fixed => {
            let first = rnd.sample(n_train, shots);
            vec![first; n_items]
        }
    }
}

/// A solved example's answer as the tuned format writes it.
fn styled_answer(answer: &str, style: AnswerStyle) -> String {
    match style {
        AnswerStyle::Hashes => answer.to_string(),
        AnswerStyle::AnswerIs => {
            let (work, number) = answer.rsplit_once("####").unwrap_or((answer, ""));
            format!("{}\nThe answer is {}.", work.trim_end(), number.trim())
        }
    }
}

/// The chat / tuned prompt: the examples as turns (or one block), the question last,
/// rendered with the model's template.
pub fn chat_prompt(shots: &[&GsmProblem], question: &str, style: &PromptStyle) -> Result<String> {
    let tuned = style.format == Format::Tuned;
    let spec = &style.family.tasks.gsm8k;
    let instruction = if tuned { spec.instruction.trim() } else { "" };
    let answer = |p: &GsmProblem| {
        if tuned {
            styled_answer(&p.answer, spec.answer_style)
        } else {
            p.answer.clone()
        }
    };
    let with_instruction = |text: String| {
        if instruction.is_empty() {
            text
        } else {
            format!("{instruction}\n\n{text}")
        }
    };
    let mut messages = Vec::new();
    if let Some(system) = style.system_prompt() {
        messages.push(Message::new("system", system));
    }
    match style.family.chat.fewshot {
        Fewshot::Multiturn => {
            for (i, s) in shots.iter().enumerate() {
                let user = if i == 0 {
                    with_instruction(s.question.clone())
                } else {
                    s.question.clone()
                };
                messages.push(Message::new("user", user));
                messages.push(Message::new("assistant", answer(s)));
            }
            let user = if shots.is_empty() {
                with_instruction(question.to_string())
            } else {
                question.to_string()
            };
            messages.push(Message::new("user", user));
        }
        Fewshot::Block => {
            let mut user = String::new();
            for s in shots {
                user.push_str(&format!(
                    "Question: {}\nAnswer: {}\n\n",
                    s.question,
                    answer(s)
                ));
            }
            user.push_str(&format!("Question: {question}"));
            messages.push(Message::new("user", with_instruction(user)));
        }
    }
    style.render(&messages)
}

/// `gsm8k` items: test problems with their exemplars.
pub fn build(
    files: &DatasetFiles,
    opts: &Gsm8kOptions,
    style: &PromptStyle,
) -> Result<(Vec<Item>, Vec<DataFile>)> {
    let (test, test_file) = gsm8k::load(files, "test")?;
    let (train, train_file) = gsm8k::load(files, "train")?;
    if opts.shots > train.len() {
        return Err(bad_input(format!(
            "--shots {} is more than the train split",
            opts.shots
        )));
    }
    let n = opts.limit.unwrap_or(usize::MAX).min(test.len());
    let draws = exemplar_indices(train.len(), opts.shots, n, opts.sampling);
    let mut items = Vec::with_capacity(n);
    for (p, idx) in test[..n].iter().zip(draws) {
        let shots: Vec<&GsmProblem> = idx.iter().map(|&i| &train[i]).collect();
        let (prompt, stop, max_tokens, scoring) = match style.format {
            Format::Raw => (
                prompt(&shots, &p.question),
                STOPS.iter().map(|s| s.to_string()).collect(),
                opts.max_tokens,
                Scoring::Gsm8kLmEval { cot: false },
            ),
            Format::Chat => (
                chat_prompt(&shots, &p.question, style)?,
                style.stop.clone(),
                opts.max_tokens,
                Scoring::Gsm8kLmEval { cot: false },
            ),
            Format::Tuned => (
                chat_prompt(&shots, &p.question, style)?,
                style.stop.clone(),
                style.family.tasks.gsm8k.max_tokens,
                Scoring::Number {
                    rules: style.family.tasks.gsm8k.extract.clone(),
                },
            ),
        };
        // With `fixed` sampling every question follows the same exemplars; with lm-eval's,
        // each its own, so nothing is shared.
        let shared_prefix = match opts.sampling {
            Sampling::Fixed => few_shot_head(&prompt, &p.question),
            Sampling::Lmeval => None,
        };
        items.push(Item {
            id: format!("test/{}", p.index),
            group: None,
            work: Work::Generate {
                prompt,
                stop,
                max_tokens,
            },
            gold: p.answer.clone(),
            scoring,
            shared_prefix,
        });
    }
    Ok((items, vec![test_file, train_file]))
}

/// `gsm8k_cot` items: the same 8-shot prefix for every test problem.
pub fn build_cot(
    files: &DatasetFiles,
    limit: Option<usize>,
    max_tokens: usize,
) -> Result<(Vec<Item>, Vec<DataFile>)> {
    let (test, test_file) = gsm8k::load(files, "test")?;
    let n = limit.unwrap_or(usize::MAX).min(test.len());
    let items = test[..n]
        .iter()
        .map(|p| {
            let prompt = cot_prompt(&p.question);
            Item {
                id: format!("test/{}", p.index),
                group: None,
                shared_prefix: few_shot_head(&prompt, &p.question),
                work: Work::Generate {
                    prompt,
                    stop: COT_STOPS.iter().map(|s| s.to_string()).collect(),
                    max_tokens,
                },
                gold: p.answer.clone(),
                scoring: Scoring::Gsm8kLmEval { cot: true },
            }
        })
        .collect();
    Ok((items, vec![test_file]))
}

/// Scores a generation: the primary filter (lm-eval's strict match, or the tuned rules)
/// as `strict_match`, and lm-eval's flexible-extract; a format failure is a generation the
/// primary filter cannot parse.
pub fn score(item: &Item, response: &Response) -> Scored {
    let text = match response {
        Response::Generated { text, .. } => text.as_str(),
        Response::Choices { .. } => "",
    };
    let strict = match &item.scoring {
        Scoring::Gsm8kLmEval { cot: true } => gsm8k_cot_strict(text),
        Scoring::Number { rules } => extract_number(text, rules).map(|(_, n)| n),
        _ => gsm8k_strict(text),
    };
    let flexible = gsm8k_flexible(text);
    // lm-eval compares the filtered prediction ("[invalid]" when nothing matched) with the
    // reference after its regexes_to_ignore strip everything up to "#### ".
    let check =
        |p: &Option<String>| gsm8k_exact_match(p.as_deref().unwrap_or("[invalid]"), &item.gold);
    let strict_ok = check(&strict);
    let flexible_ok = check(&flexible);
    Scored {
        output: text.to_string(),
        extracted: strict.clone(),
        correct: strict_ok,
        format_failure: strict.is_none(),
        metrics: [
            ("strict_match".to_string(), f64::from(u8::from(strict_ok))),
            (
                "flexible_extract".to_string(),
                f64::from(u8::from(flexible_ok)),
            ),
        ]
        .into(),
        detail: json!({ "strict": strict, "flexible": flexible }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::Source;
    use crate::extract::NumberRule;
    use frontier_engine::StopReason;

    fn generated(text: &str) -> Response {
        Response::Generated {
            text: text.to_string(),
            stop_reason: StopReason::StopString,
        }
    }

    /// Correct by construction: every gold solution, as a model output, extracts to the
    /// right answer under both filters (1319/1319).
    #[test]
    fn gold_answers_extract_under_both_filters() {
        let files = DatasetFiles::open("gsm8k", &Source::Embedded).unwrap();
        let opts = Gsm8kOptions {
            shots: 5,
            sampling: Sampling::Lmeval,
            limit: None,
            max_tokens: 256,
        };
        let (items, _) = build(&files, &opts, &PromptStyle::raw()).unwrap();
        assert_eq!(items.len(), 1319);
        let (mut strict, mut flexible) = (0, 0);
        for item in &items {
            let s = score(item, &generated(&item.gold));
            strict += s.metrics["strict_match"] as usize;
            flexible += s.metrics["flexible_extract"] as usize;
        }
        assert_eq!((strict, flexible), (1319, 1319));
    }

    #[test]
    fn exemplars_are_lm_evals_draws() {
        let files = DatasetFiles::open("gsm8k", &Source::Embedded).unwrap();
        let (train, _) = gsm8k::load(&files, "train").unwrap();
        let (items, _) = build(
            &files,
            &Gsm8kOptions {
                shots: 5,
                sampling: Sampling::Lmeval,
                limit: Some(2),
                max_tokens: 256,
            },
            &PromptStyle::raw(),
        )
        .unwrap();
        // CPython: Random(1234).sample(range(7473), 5) → [6374, 3610, 957, 61, 742] then [7462, ...].
        let Work::Generate {
            prompt,
            stop,
            max_tokens,
        } = &items[0].work
        else {
            panic!()
        };
        assert!(prompt.starts_with(&format!(
            "Question: {}\nAnswer: {}\n\n",
            train[6374].question, train[6374].answer
        )));
        assert!(prompt.contains(&train[742].question));
        assert!(prompt.ends_with("\nAnswer:"));
        assert_eq!(stop, &["Question:", "</s>", "<|im_end|>"]);
        assert_eq!(*max_tokens, 256);
        let Work::Generate { prompt: second, .. } = &items[1].work else {
            panic!()
        };
        assert!(second.starts_with(&format!("Question: {}\n", train[7462].question)));
    }

    #[test]
    fn tuned_examples_end_with_the_answer_sentence() {
        assert_eq!(
            styled_answer("2 + 2 = 4\n#### 4", AnswerStyle::AnswerIs),
            "2 + 2 = 4\nThe answer is 4."
        );
        let item = Item {
            id: "test/0".into(),
            group: None,
            work: Work::Generate {
                prompt: String::new(),
                stop: vec![],
                max_tokens: 8,
            },
            gold: "x\n#### 1,250".into(),
            scoring: Scoring::Number {
                rules: vec![NumberRule::AnswerIs, NumberRule::LastNumber],
            },
            shared_prefix: None,
        };
        let s = score(&item, &generated("So the answer is $1,250."));
        assert!(s.correct && !s.format_failure);
        assert_eq!(s.extracted.as_deref(), Some("1250"));
    }

    #[test]
    fn cot_prompt_and_scoring() {
        let p = cot_prompt("How many?");
        assert!(p.starts_with("Q: There are 15 trees in the grove."));
        assert!(p.ends_with("The answer is 8.\n\nQ: How many?\nA:"));
        let item = Item {
            id: "test/0".into(),
            group: None,
            work: Work::Generate {
                prompt: p,
                stop: vec![],
                max_tokens: 256,
            },
            gold: "blah\n#### 18".into(),
            scoring: Scoring::Gsm8kLmEval { cot: true },

            shared_prefix: None,
        };
        let s = score(&item, &generated(" 9 + 9 = 18. The answer is 18.\n\n"));
        assert!(s.correct && s.metrics["flexible_extract"] == 1.0);
        let s = score(&item, &generated(" I think eighteen"));
        assert!(!s.correct && s.format_failure);
    }
}
