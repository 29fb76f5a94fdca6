//! GSM8K in its original JSONL (`question`, `answer` ending in `#### N`).

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::source::{text_of, DataFile, DatasetFiles};
use frontier_core::error::bad_input;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GsmProblem {
    /// Line number in the file, from 0.
    pub index: usize,
    pub question: String,
    /// The worked solution, ending in `#### N`.
    pub answer: String,
}

impl GsmProblem {
    /// The number after `####`.
    pub fn gold(&self) -> &str {
        self.answer.rsplit("####").next().unwrap_or("").trim()
    }
}

#[derive(Deserialize)]
struct Row {
    question: String,
    answer: String,
}

/// `split` is `test` or `train`.
pub fn load(files: &DatasetFiles, split: &str) -> Result<(Vec<GsmProblem>, DataFile)> {
    let file = files.read(&format!("gsm8k/{split}.jsonl"))?;
    let problems = parse_jsonl(&file)?;
    files.check_rows(&file, problems.len())?;
    Ok((problems, file))
}

pub fn parse_jsonl(file: &DataFile) -> Result<Vec<GsmProblem>> {
    let text = text_of(file)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line)
            .map_err(|e| bad_input(format!("{}: line {}: {e}", file.shown, n + 1)))?;
        if !row.answer.contains("#### ") {
            return Err(bad_input(format!(
                "{}: line {}: the answer does not end in '#### N'",
                file.shown,
                n + 1
            )));
        }
        out.push(GsmProblem {
            index: out.len(),
            question: row.question,
            answer: row.answer,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> DataFile {
        DataFile {
            path: "gsm8k/test.jsonl".into(),
            shown: "test.jsonl".into(),
            bytes: text.as_bytes().to_vec(),
            sha256: String::new(),
        }
    }

    #[test]
    fn parses_and_finds_gold() {
        let p = parse_jsonl(&file(
            "{\"question\":\"q\",\"answer\":\"2+2=4\\n#### 4\"}\n\n",
        ))
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].gold(), "4");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_jsonl(&file(
            "{\"question\":\"q\",\"answer\":\"#### 1\"}\n{\"question\":1}\n",
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("test.jsonl: line 2: "), "{e}");
        let e = parse_jsonl(&file("{\"question\":\"q\",\"answer\":\"no marker\"}\n")).unwrap_err();
        assert!(
            e.to_string().contains("line 1: the answer does not end"),
            "{e}"
        );
    }
}
