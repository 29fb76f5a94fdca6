//! MMLU, scored as lm-evaluation-harness does by default: k-shot from the first k dev rows
//! of the subject, the continuations " A".." D" scored by log-probability, argmax wins.

use anyhow::Result;
use serde_json::json;

use super::{few_shot_head, Item, Response, Scored, Scoring, Work};
use crate::datasets::mmlu::{self, MmluQuestion, Split};
use crate::datasets::{DataFile, DatasetFiles};
use crate::prompts::{Fewshot, Format, Message, PromptStyle};
use frontier_core::error::bad_input;

pub const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// `The following are multiple choice questions (with answers) about abstract algebra.\n\n`
pub fn description(subject: &str) -> String {
    format!(
        "The following are multiple choice questions (with answers) about {}.\n\n",
        subject.replace('_', " ")
    )
}

/// Python's `str.strip()`: Unicode whitespace plus the ASCII separators \x1c-\x1f.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// `{question.strip()}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer:`
pub fn question_block(q: &MmluQuestion) -> String {
    format!(
        "{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
        py_strip(&q.question),
        q.choices[0],
        q.choices[1],
        q.choices[2],
        q.choices[3]
    )
}

/// The whole lm-eval prompt: description, k solved dev questions, the test question.
pub fn prompt(subject: &str, shots: &[MmluQuestion], q: &MmluQuestion) -> String {
    let mut p = description(subject);
    for s in shots {
        p.push_str(&question_block(s));
        p.push(' ');
        p.push_str(LETTERS[s.answer as usize]);
        p.push_str("\n\n");
    }
    p.push_str(&question_block(q));
    p
}

#[derive(Debug, Clone)]
pub struct MmluOptions {
    pub shots: usize,
    pub subjects: Option<Vec<String>>,
    /// First N test questions of each subject.
    pub limit: Option<usize>,
}

/// The context in the chat and tuned formats: the same questions as turns (or one block)
/// rendered with the model's template, ending in its generation prompt.
pub fn chat_context(
    subject: &str,
    shots: &[MmluQuestion],
    q: &MmluQuestion,
    style: &PromptStyle,
) -> Result<String> {
    let description = description(subject);
    let description = description.trim_end();
    let instruction = match style.format {
        Format::Tuned => style.family.tasks.mmlu.instruction.trim(),
        _ => "",
    };
    let intro = if instruction.is_empty() {
        description.to_string()
    } else {
        format!("{description}\n{instruction}")
    };
    let mut messages = Vec::new();
    if let Some(system) = style.system_prompt() {
        messages.push(Message::new("system", system));
    }
    match style.family.chat.fewshot {
        Fewshot::Multiturn => {
            for (i, s) in shots.iter().enumerate() {
                let block = question_block(s);
                let user = if i == 0 {
                    format!("{intro}\n\n{block}")
                } else {
                    block
                };
                messages.push(Message::new("user", user));
                messages.push(Message::new("assistant", LETTERS[s.answer as usize]));
            }
            let block = question_block(q);
            let user = if shots.is_empty() {
                format!("{intro}\n\n{block}")
            } else {
                block
            };
            messages.push(Message::new("user", user));
        }
        Fewshot::Block => {
            let mut user = format!("{intro}\n\n");
            for s in shots {
                user.push_str(&format!(
                    "{} {}\n\n",
                    question_block(s),
                    LETTERS[s.answer as usize]
                ));
            }
            user.push_str(&question_block(q));
            messages.push(Message::new("user", user));
        }
    }
    style.render(&messages)
}

/// The continuations scored: lm-eval's " A".." D" (raw and chat), the bare letters after
/// the assistant's turn header (tuned).
pub fn continuations(style: &PromptStyle) -> Vec<String> {
    let sep = if style.format == Format::Tuned {
        ""
    } else {
        " "
    };
    LETTERS.iter().map(|l| format!("{sep}{l}")).collect()
}

/// Items for every selected subject, with the files they came from.
pub fn build(
    files: &DatasetFiles,
    opts: &MmluOptions,
    style: &PromptStyle,
) -> Result<(Vec<Item>, Vec<DataFile>)> {
    if opts.shots > 5 {
        return Err(bad_input(format!(
            "MMLU has 5 dev questions per subject; --shots {} is too many",
            opts.shots
        )));
    }
    let all = mmlu::subjects(files)?;
    if let Some(wanted) = &opts.subjects {
        for s in wanted {
            if !all.contains(s) {
                let hint = frontier_core::suggest::did_you_mean(s, all.iter().map(String::as_str));
                return Err(bad_input(match hint {
                    Some(close) => format!("unknown MMLU subject '{s}': did you mean '{close}'?"),
                    None => format!(
                        "unknown MMLU subject '{s}' (the 57: {}; `frontier eval --help` lists the tasks)",
                        all.join(", ")
                    ),
                }));
            }
        }
    }
    let mut items = Vec::new();
    let mut used = Vec::new();
    // Every subject's files are read and hashed, so the dataset identity does not depend
    // on which subjects or how many questions were selected.
    for subject in &all {
        let (dev, dev_file) = mmlu::load(files, subject, Split::Dev)?;
        let (test, test_file) = mmlu::load(files, subject, Split::Test)?;
        used.push(dev_file);
        used.push(test_file);
        if opts.subjects.as_ref().is_some_and(|w| !w.contains(subject)) {
            continue;
        }
        let shots = &dev[..opts.shots.min(dev.len())];
        let take = opts.limit.unwrap_or(usize::MAX).min(test.len());
        for q in &test[..take] {
            let context = match style.format {
                Format::Raw => prompt(subject, shots, q),
                _ => chat_context(subject, shots, q, style)?,
            };
            // Every question of a subject follows the same description and shots.
            let shared_prefix = few_shot_head(&context, &question_block(q));
            items.push(Item {
                id: format!("{subject}/{}", q.index),
                group: Some(subject.clone()),
                work: Work::Choices {
                    context,
                    continuations: continuations(style),
                },
                gold: LETTERS[q.answer as usize].to_string(),
                scoring: Scoring::Choice,
                shared_prefix,
            });
        }
    }
    Ok((items, used))
}

/// argmax of the four log-probabilities (the first on ties, as numpy) against the gold letter.
pub fn score(item: &Item, response: &Response) -> Scored {
    let (logprobs, greedy) = match response {
        Response::Choices { logprobs, greedy } => (logprobs.as_slice(), greedy.as_slice()),
        Response::Generated { text, .. } => {
            return Scored {
                output: text.clone(),
                extracted: None,
                correct: false,
                format_failure: true,
                metrics: [("acc".to_string(), 0.0)].into(),
                detail: json!({"error": "MMLU needs log-probabilities, not generated text"}),
            }
        }
    };
    let mut best = 0;
    for (i, &lp) in logprobs.iter().enumerate() {
        if lp > logprobs[best] {
            best = i;
        }
    }
    let pred = LETTERS.get(best).copied().unwrap_or("?");
    let correct = pred == item.gold;
    let output = logprobs
        .iter()
        .zip(LETTERS)
        .map(|(lp, l)| format!("{l}: {lp:.4}"))
        .collect::<Vec<_>>()
        .join(", ");
    Scored {
        output,
        extracted: Some(pred.to_string()),
        correct,
        format_failure: false,
        metrics: [("acc".to_string(), if correct { 1.0 } else { 0.0 })].into(),
        detail: json!({ "logprobs": logprobs, "greedy": greedy }),
    }
}

/// lm-eval's category of each subject (from the `tag` of its task file).
pub const CATEGORIES: &[(&str, &str)] = &[
    ("abstract_algebra", "stem"),
    ("anatomy", "stem"),
    ("astronomy", "stem"),
    ("business_ethics", "other"),
    ("clinical_knowledge", "other"),
    ("college_biology", "stem"),
    ("college_chemistry", "stem"),
    ("college_computer_science", "stem"),
    ("college_mathematics", "stem"),
    ("college_medicine", "other"),
    ("college_physics", "stem"),
    ("computer_security", "stem"),
    ("conceptual_physics", "stem"),
    ("econometrics", "social_sciences"),
    ("electrical_engineering", "stem"),
    ("elementary_mathematics", "stem"),
    ("formal_logic", "humanities"),
    ("global_facts", "other"),
    ("high_school_biology", "stem"),
    ("high_school_chemistry", "stem"),
    ("high_school_computer_science", "stem"),
    ("high_school_european_history", "humanities"),
    ("high_school_geography", "social_sciences"),
    ("high_school_government_and_politics", "social_sciences"),
    ("high_school_macroeconomics", "social_sciences"),
    ("high_school_mathematics", "stem"),
    ("high_school_microeconomics", "social_sciences"),
    ("high_school_physics", "stem"),
    ("high_school_psychology", "social_sciences"),
    ("high_school_statistics", "stem"),
    ("high_school_us_history", "humanities"),
    ("high_school_world_history", "humanities"),
    ("human_aging", "other"),
    ("human_sexuality", "social_sciences"),
    ("international_law", "humanities"),
    ("jurisprudence", "humanities"),
    ("logical_fallacies", "humanities"),
    ("machine_learning", "stem"),
    ("management", "other"),
    ("marketing", "other"),
    ("medical_genetics", "other"),
    ("miscellaneous", "other"),
    ("moral_disputes", "humanities"),
    ("moral_scenarios", "humanities"),
    ("nutrition", "other"),
    ("philosophy", "humanities"),
    ("prehistory", "humanities"),
    ("professional_accounting", "other"),
    ("professional_law", "humanities"),
    ("professional_medicine", "other"),
    ("professional_psychology", "social_sciences"),
    ("public_relations", "social_sciences"),
    ("security_studies", "social_sciences"),
    ("sociology", "social_sciences"),
    ("us_foreign_policy", "social_sciences"),
    ("virology", "other"),
    ("world_religions", "humanities"),
];

/// The category of a subject: `stem`, `humanities`, `social_sciences` or `other`.
pub fn category(subject: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(s, _)| *s == subject)
        .map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::Source;

    fn q(question: &str, answer: u8) -> MmluQuestion {
        MmluQuestion {
            subject: "abstract_algebra".into(),
            index: 0,
            question: question.into(),
            choices: ["0".into(), "4".into(), "2".into(), "6".into()],
            answer,
        }
    }

    #[test]
    fn prompt_is_lm_eval_default_template() {
        let p = prompt("abstract_algebra", &[q("  Shot? ", 2)], &q("Test?\n", 1));
        assert_eq!(
            p,
            "The following are multiple choice questions (with answers) about abstract algebra.\n\n\
             Shot?\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer: C\n\n\
             Test?\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
        );
    }

    /// Correct by construction: scoring the gold letters as predictions gives 100% on the
    /// whole test split.
    #[test]
    fn gold_letters_score_100_percent() {
        let files = DatasetFiles::open("mmlu", &Source::Embedded).unwrap();
        let (items, used) = build(
            &files,
            &MmluOptions {
                shots: 5,
                subjects: None,
                limit: None,
            },
            &PromptStyle::raw(),
        )
        .unwrap();
        assert_eq!(items.len(), 14_042);
        assert_eq!(used.len(), 57 * 2);
        for item in &items {
            let gold = LETTERS.iter().position(|l| *l == item.gold).unwrap();
            let mut logprobs = vec![-5.0; 4];
            logprobs[gold] = -0.1;
            let s = score(
                item,
                &Response::Choices {
                    logprobs,
                    greedy: vec![false; 4],
                },
            );
            assert!(s.correct, "{}", item.id);
        }
    }

    #[test]
    fn every_subject_has_a_category() {
        let files = DatasetFiles::open("mmlu", &Source::Embedded).unwrap();
        let subjects = mmlu::subjects(&files).unwrap();
        assert_eq!(subjects.len(), 57);
        assert!(subjects.iter().all(|s| category(s).is_some()));
        let stem = CATEGORIES.iter().filter(|(_, c)| *c == "stem").count();
        assert_eq!(stem, 19);
    }

    #[test]
    fn bad_subject_and_shots_are_bad_input() {
        let files = DatasetFiles::open("mmlu", &Source::Embedded).unwrap();
        let bad = |shots, subjects: Option<Vec<String>>| {
            build(
                &files,
                &MmluOptions {
                    shots,
                    subjects,
                    limit: Some(1),
                },
                &PromptStyle::raw(),
            )
            .unwrap_err()
        };
        assert!(bad(5, Some(vec!["astrology".into()]))
            .to_string()
            .contains("unknown MMLU subject 'astrology'"));
        assert!(bad(6, None).to_string().contains("--shots 6"));
    }
}
