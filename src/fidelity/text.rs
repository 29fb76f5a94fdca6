//! The text a quant's fidelity is measured on: by default a pinned text from the embedded
//! datasets (GSM8K train problems with their worked solutions, interleaved with MMLU dev
//! questions with their answers: in-domain for the scores beside it), or any file.

use std::path::Path;

use anyhow::Result;
use frontier_core::bad_input;

use crate::datasets::{gsm8k, mmlu, DatasetFiles, Source};
use crate::hashing::sha256_hex;

/// A text and what identifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct FidelityText {
    pub text: String,
    /// sha256 of the text.
    pub sha256: String,
    /// `default (GSM8K train + MMLU dev)` or the file's path.
    pub name: String,
}

/// Problems of GSM8K's train split used (each followed by an MMLU dev question while those
/// last): about 100,000 tokens with a 49k vocabulary, enough for 20 chunks of 4,096.
const GSM8K_PROBLEMS: usize = 600;

impl FidelityText {
    /// The default text, from the datasets embedded in the binary.
    pub fn default_text() -> Result<FidelityText> {
        let g = DatasetFiles::open("gsm8k", &Source::Embedded)?;
        let (train, _) = gsm8k::load(&g, "train")?;
        let m = DatasetFiles::open("mmlu", &Source::Embedded)?;
        let mut questions = Vec::new();
        for subject in mmlu::subjects(&m)? {
            let (dev, _) = mmlu::load(&m, &subject, mmlu::Split::Dev)?;
            questions.extend(dev);
        }
        let mut text = String::new();
        for (i, p) in train.iter().take(GSM8K_PROBLEMS).enumerate() {
            text.push_str(&format!(
                "Question: {}\nAnswer: {}\n\n",
                p.question, p.answer
            ));
            if let Some(q) = questions.get(i) {
                text.push_str(&crate::tasks::mmlu::question_block(q));
                text.push(' ');
                text.push_str(crate::tasks::mmlu::LETTERS[q.answer as usize]);
                text.push_str("\n\n");
            }
        }
        Ok(FidelityText {
            sha256: sha256_hex(text.as_bytes()),
            text,
            name: "default (GSM8K train solutions and MMLU dev questions, embedded)".into(),
        })
    }

    /// A UTF-8 text file (e.g. wikitext-2's test split).
    pub fn from_file(path: &Path) -> Result<FidelityText> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        if text.trim().is_empty() {
            return Err(bad_input(format!("{}: the text is empty", path.display())));
        }
        Ok(FidelityText {
            sha256: sha256_hex(text.as_bytes()),
            text,
            name: path.display().to_string(),
        })
    }
}
