//! MMLU in its original release format: `{dev,val,test}/SUBJECT_{split}.csv`, headerless
//! rows `question,A,B,C,D,answer`, parsed with a real CSV reader (quoted commas, embedded
//! newlines, CRLF, missing final newline).

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::source::{DataFile, DatasetFiles};
use frontier_core::error::bad_input;

/// The three splits of the release; lm-eval scores `test` with few-shot examples from `dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Dev,
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmluQuestion {
    pub subject: String,
    /// Row number in the subject's file, from 0.
    pub index: usize,
    pub question: String,
    pub choices: [String; 4],
    /// 0..=3 for A..D.
    pub answer: u8,
}

/// The 57 subjects, from the names of the dev files.
pub fn subjects(files: &DatasetFiles) -> Result<Vec<String>> {
    Ok(files
        .list("mmlu/dev", "_dev.csv")?
        .iter()
        .filter_map(|p| {
            p.strip_prefix("mmlu/dev/")?
                .strip_suffix("_dev.csv")
                .map(str::to_string)
        })
        .collect())
}

/// One subject's questions of one split, with the file they came from.
pub fn load(
    files: &DatasetFiles,
    subject: &str,
    split: Split,
) -> Result<(Vec<MmluQuestion>, DataFile)> {
    let path = format!("mmlu/{0}/{subject}_{0}.csv", split.name());
    let file = files.read(&path)?;
    let questions = parse_csv(&file, subject)?;
    files.check_rows(&file, questions.len())?;
    Ok((questions, file))
}

/// Parses one subject file; errors name the file, the record and its line.
pub fn parse_csv(file: &DataFile, subject: &str) -> Result<Vec<MmluQuestion>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file.bytes.as_slice());
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad_input(format!(
                "{}: record {} (line {line}): {e}",
                file.shown,
                i + 1
            ))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let at = || format!("{}: record {} (line {line})", file.shown, i + 1);
        if record.len() != 6 {
            return Err(bad_input(format!(
                "{}: expected 6 fields (question, A, B, C, D, answer), found {}",
                at(),
                record.len()
            )));
        }
        let answer = match record[5].trim() {
            "A" => 0,
            "B" => 1,
            "C" => 2,
            "D" => 3,
            other => {
                return Err(bad_input(format!(
                    "{}: answer {other:?} is not one of A, B, C, D",
                    at()
                )))
            }
        };
        out.push(MmluQuestion {
            subject: subject.to_string(),
            index: i,
            question: record[0].to_string(),
            choices: [
                record[1].to_string(),
                record[2].to_string(),
                record[3].to_string(),
                record[4].to_string(),
            ],
            answer,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> DataFile {
        DataFile {
            path: "mmlu/test/x_test.csv".into(),
            shown: "x_test.csv".into(),
            bytes: text.as_bytes().to_vec(),
            sha256: String::new(),
        }
    }

    #[test]
    fn quoted_commas_newlines_crlf_and_no_final_newline() {
        let text = "\"What, exactly?\",a,\"b, c\",\"multi\nline\",d,B\r\nplain,1,2,3,4,D";
        let q = parse_csv(&file(text), "x").unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].question, "What, exactly?");
        assert_eq!(q[0].choices[1], "b, c");
        assert_eq!(q[0].choices[2], "multi\nline");
        assert_eq!(q[0].answer, 1);
        assert_eq!(q[1].answer, 3);
        assert_eq!(q[1].index, 1);
    }

    #[test]
    fn errors_name_file_record_and_line() {
        let e = parse_csv(&file("q,a,b,c,d,A\nq2,a,b,c,d,E\n"), "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x_test.csv: record 2 (line 2): answer \"E\" is not one of A, B, C, D"
        );
        let e = parse_csv(&file("q,a,b,c,A\n"), "x").unwrap_err();
        assert!(
            e.to_string()
                .contains("record 1 (line 1): expected 6 fields"),
            "{e}"
        );
    }
}
