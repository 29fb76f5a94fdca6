//! The Hub's parquet files for MMLU, GSM8K and HumanEval: pure functions from parquet bytes to
//! rows (errors name the file label and the row) and back (snappy, the Hub's schema).

use std::sync::Arc;

use ::parquet::basic::Compression;
use ::parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::record::{Field, Row};
use ::parquet::schema::parser::parse_message_type;
use ::parquet::schema::types::Type;
use anyhow::{anyhow, bail, Result};
use bytes::Bytes;

/// One question of `cais/mmlu` (`all/{dev,validation,test}-00000-of-00001.parquet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmluRow {
    pub question: String,
    pub subject: String,
    pub choices: Vec<String>,
    /// Index into `choices` of the right answer (0..=3 for MMLU).
    pub answer: i64,
}

/// One problem of `openai/gsm8k` (`main/{train,test}-00000-of-00001.parquet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GsmRow {
    pub question: String,
    /// The worked solution, ending in `#### <number>`.
    pub answer: String,
}

/// One task of `openai/openai_humaneval` (`openai_humaneval/test-00000-of-00001.parquet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanEvalRow {
    pub task_id: String,
    pub prompt: String,
    pub canonical_solution: String,
    pub test: String,
    pub entry_point: String,
}

const MMLU_SCHEMA: &str = "message schema {
  optional binary question (STRING);
  optional binary subject (STRING);
  optional group choices (LIST) {
    repeated group list {
      optional binary element (STRING);
    }
  }
  optional int64 answer;
}";

const MMLU_FEATURES: &str = r#"{"info": {"features": {"question": {"dtype": "string", "_type": "Value"}, "subject": {"dtype": "string", "_type": "Value"}, "choices": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"}, "answer": {"names": ["A", "B", "C", "D"], "_type": "ClassLabel"}}}}"#;

const GSM8K_SCHEMA: &str = "message schema {
  optional binary question (STRING);
  optional binary answer (STRING);
}";

const GSM8K_FEATURES: &str = r#"{"info": {"features": {"question": {"dtype": "string", "_type": "Value"}, "answer": {"dtype": "string", "_type": "Value"}}}}"#;

const HUMANEVAL_SCHEMA: &str = "message schema {
  optional binary task_id (STRING);
  optional binary prompt (STRING);
  optional binary canonical_solution (STRING);
  optional binary test (STRING);
  optional binary entry_point (STRING);
}";

const HUMANEVAL_FEATURES: &str = r#"{"info": {"features": {"task_id": {"dtype": "string", "_type": "Value"}, "prompt": {"dtype": "string", "_type": "Value"}, "canonical_solution": {"dtype": "string", "_type": "Value"}, "test": {"dtype": "string", "_type": "Value"}, "entry_point": {"dtype": "string", "_type": "Value"}}}}"#;

/// Rows per row group in the files we write (the Hub's files for these sets have one group).
const GROUP_ROWS: usize = 100_000;

/// Reads MMLU rows; `label` names the file in errors.
pub fn read_mmlu(label: &str, bytes: &[u8]) -> Result<Vec<MmluRow>> {
    let columns = ["question", "subject", "choices", "answer"];
    read_rows(label, bytes, &columns, |row| {
        let choices = string_list(row, "choices")?;
        let answer = integer(row, "answer")?;
        if answer < 0 || answer as usize >= choices.len() {
            return Err(format!(
                "answer {answer} is not an index into its {} choices",
                choices.len()
            ));
        }
        Ok(MmluRow {
            question: string(row, "question")?,
            subject: string(row, "subject")?,
            choices,
            answer,
        })
    })
}

/// Reads GSM8K rows; `label` names the file in errors.
pub fn read_gsm8k(label: &str, bytes: &[u8]) -> Result<Vec<GsmRow>> {
    read_rows(label, bytes, &["question", "answer"], |row| {
        Ok(GsmRow {
            question: string(row, "question")?,
            answer: string(row, "answer")?,
        })
    })
}

/// Reads HumanEval rows; `label` names the file in errors.
pub fn read_humaneval(label: &str, bytes: &[u8]) -> Result<Vec<HumanEvalRow>> {
    let columns = [
        "task_id",
        "prompt",
        "canonical_solution",
        "test",
        "entry_point",
    ];
    read_rows(label, bytes, &columns, |row| {
        Ok(HumanEvalRow {
            task_id: string(row, "task_id")?,
            prompt: string(row, "prompt")?,
            canonical_solution: string(row, "canonical_solution")?,
            test: string(row, "test")?,
            entry_point: string(row, "entry_point")?,
        })
    })
}

/// Writes MMLU rows with the Hub's schema (snappy).
pub fn write_mmlu(rows: &[MmluRow]) -> Result<Vec<u8>> {
    write_mmlu_with(rows, GROUP_ROWS, Compression::SNAPPY)
}

/// Writes GSM8K rows with the Hub's schema (snappy).
pub fn write_gsm8k(rows: &[GsmRow]) -> Result<Vec<u8>> {
    let columns = vec![
        Column::Strings(rows.iter().map(|r| Some(r.question.as_str())).collect()),
        Column::Strings(rows.iter().map(|r| Some(r.answer.as_str())).collect()),
    ];
    let table = Table::new(GSM8K_SCHEMA, GSM8K_FEATURES, rows.len(), columns);
    table.write(GROUP_ROWS, Compression::SNAPPY)
}

/// Writes HumanEval rows with the Hub's schema (snappy).
pub fn write_humaneval(rows: &[HumanEvalRow]) -> Result<Vec<u8>> {
    let column = |get: fn(&HumanEvalRow) -> &str| {
        Column::Strings(rows.iter().map(|r| Some(get(r))).collect())
    };
    let columns = vec![
        column(|r| &r.task_id),
        column(|r| &r.prompt),
        column(|r| &r.canonical_solution),
        column(|r| &r.test),
        column(|r| &r.entry_point),
    ];
    let table = Table::new(HUMANEVAL_SCHEMA, HUMANEVAL_FEATURES, rows.len(), columns);
    table.write(GROUP_ROWS, Compression::SNAPPY)
}

fn write_mmlu_with(
    rows: &[MmluRow],
    group_rows: usize,
    compression: Compression,
) -> Result<Vec<u8>> {
    let columns = vec![
        Column::Strings(rows.iter().map(|r| Some(r.question.as_str())).collect()),
        Column::Strings(rows.iter().map(|r| Some(r.subject.as_str())).collect()),
        Column::StringLists(rows.iter().map(|r| r.choices.as_slice()).collect()),
        Column::Int64(rows.iter().map(|r| Some(r.answer)).collect()),
    ];
    let table = Table::new(MMLU_SCHEMA, MMLU_FEATURES, rows.len(), columns);
    table.write(group_rows, compression)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Opens the file, checks that every wanted column is there, and converts each row (only the
/// wanted columns are decoded). Errors from `convert` get the label and row index in front.
fn read_rows<T>(
    label: &str,
    bytes: &[u8],
    columns: &[&str],
    mut convert: impl FnMut(&Row) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let reader = SerializedFileReader::new(Bytes::copy_from_slice(bytes))
        .map_err(|e| anyhow!("{label}: not a readable parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema();
    let mut wanted = Vec::with_capacity(columns.len());
    for name in columns {
        match schema.get_fields().iter().find(|f| f.name() == *name) {
            Some(field) => wanted.push(field.clone()),
            None => {
                let have: Vec<&str> = schema.get_fields().iter().map(|f| f.name()).collect();
                bail!(
                    "{label}: missing column '{name}' (the file has: {})",
                    have.join(", ")
                );
            }
        }
    }
    let projection = Type::group_type_builder(schema.name())
        .with_fields(wanted)
        .build()
        .map_err(|e| anyhow!("{label}: {e}"))?;
    let rows = reader
        .get_row_iter(Some(projection))
        .map_err(|e| anyhow!("{label}: {e}"))?;
    let mut out = Vec::new();
    for (index, row) in rows.enumerate() {
        let row = row.map_err(|e| anyhow!("{label}: row {index}: {e}"))?;
        out.push(convert(&row).map_err(|e| anyhow!("{label}: row {index}: {e}"))?);
    }
    Ok(out)
}

fn field<'r>(row: &'r Row, name: &str) -> std::result::Result<&'r Field, String> {
    row.get_column_iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, f)| f)
        .ok_or_else(|| format!("no column '{name}'"))
}

fn string(row: &Row, name: &str) -> std::result::Result<String, String> {
    match field(row, name)? {
        Field::Str(s) => Ok(s.clone()),
        Field::Null => Err(format!("column '{name}' is null")),
        other => Err(format!(
            "column '{name}' is {}, expected a string",
            kind_of(other)
        )),
    }
}

fn integer(row: &Row, name: &str) -> std::result::Result<i64, String> {
    let value = match field(row, name)? {
        Field::Long(v) => *v,
        Field::Int(v) => i64::from(*v),
        Field::Short(v) => i64::from(*v),
        Field::Byte(v) => i64::from(*v),
        Field::UByte(v) => i64::from(*v),
        Field::UShort(v) => i64::from(*v),
        Field::UInt(v) => i64::from(*v),
        Field::ULong(v) => {
            i64::try_from(*v).map_err(|_| format!("column '{name}' value {v} is too large"))?
        }
        Field::Null => return Err(format!("column '{name}' is null")),
        other => {
            return Err(format!(
                "column '{name}' is {}, expected an integer",
                kind_of(other)
            ))
        }
    };
    Ok(value)
}

fn string_list(row: &Row, name: &str) -> std::result::Result<Vec<String>, String> {
    let list = match field(row, name)? {
        Field::ListInternal(list) => list,
        Field::Null => return Err(format!("column '{name}' is null")),
        other => {
            return Err(format!(
                "column '{name}' is {}, expected a list of strings",
                kind_of(other)
            ))
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, element) in list.elements().iter().enumerate() {
        match element {
            Field::Str(s) => out.push(s.clone()),
            Field::Null => return Err(format!("{name}[{i}] is null")),
            other => {
                return Err(format!(
                    "{name}[{i}] is {}, expected a string",
                    kind_of(other)
                ))
            }
        }
    }
    Ok(out)
}

/// A few words for a value's type, for error messages.
fn kind_of(field: &Field) -> &'static str {
    match field {
        Field::Null => "null",
        Field::Bool(_) => "a boolean",
        Field::Byte(_) | Field::Short(_) | Field::Int(_) | Field::Long(_) => "an integer",
        Field::UByte(_) | Field::UShort(_) | Field::UInt(_) | Field::ULong(_) => "an integer",
        Field::Float16(_) | Field::Float(_) | Field::Double(_) => "a float",
        Field::Decimal(_) => "a decimal",
        Field::Str(_) => "a string",
        Field::Bytes(_) => "binary",
        Field::Date(_) | Field::TimeMillis(_) | Field::TimeMicros(_) => "a date or time",
        Field::TimestampMillis(_) | Field::TimestampMicros(_) => "a timestamp",
        Field::Group(_) => "a struct",
        Field::ListInternal(_) => "a list",
        Field::MapInternal(_) => "a map",
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// One column's values for every row; `None` writes a null.
enum Column<'a> {
    Strings(Vec<Option<&'a str>>),
    Int64(Vec<Option<i64>>),
    /// A nullable `list<string>` (the Hub's `choices`); every list here is present.
    StringLists(Vec<&'a [String]>),
}

/// A whole file to write: schema text, the `huggingface` feature metadata, and the columns in
/// the schema's leaf order.
struct Table<'a> {
    schema: &'static str,
    features: &'static str,
    rows: usize,
    columns: Vec<Column<'a>>,
}

impl<'a> Table<'a> {
    fn new(
        schema: &'static str,
        features: &'static str,
        rows: usize,
        columns: Vec<Column<'a>>,
    ) -> Table<'a> {
        Table {
            schema,
            features,
            rows,
            columns,
        }
    }

    fn write(&self, group_rows: usize, compression: Compression) -> Result<Vec<u8>> {
        let schema = Arc::new(parse_message_type(self.schema)?);
        let metadata = KeyValue::new("huggingface".to_string(), self.features.to_string());
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_key_value_metadata(Some(vec![metadata]))
            .build();
        let mut writer = SerializedFileWriter::new(Vec::new(), schema, Arc::new(props))?;
        let group_rows = group_rows.max(1);
        let mut start = 0;
        // An empty table still gets its schema; it just has no row group.
        while start < self.rows {
            let end = (start + group_rows).min(self.rows);
            let mut group = writer.next_row_group()?;
            for column in &self.columns {
                let mut out = group
                    .next_column()?
                    .ok_or_else(|| anyhow!("parquet writer: more columns than the schema"))?;
                match column {
                    Column::Strings(values) => write_strings(&mut out, &values[start..end])?,
                    Column::Int64(values) => write_int64(&mut out, &values[start..end])?,
                    Column::StringLists(values) => write_lists(&mut out, &values[start..end])?,
                }
                out.close()?;
            }
            group.close()?;
            start = end;
        }
        Ok(writer.into_inner()?)
    }
}

type ColumnOut<'w> = ::parquet::file::writer::SerializedColumnWriter<'w>;

fn write_strings(out: &mut ColumnOut<'_>, values: &[Option<&str>]) -> Result<()> {
    let present: Vec<ByteArray> = values
        .iter()
        .flatten()
        .map(|s| ByteArray::from(*s))
        .collect();
    let defs: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
    out.typed::<ByteArrayType>()
        .write_batch(&present, Some(&defs), None)?;
    Ok(())
}

fn write_int64(out: &mut ColumnOut<'_>, values: &[Option<i64>]) -> Result<()> {
    let present: Vec<i64> = values.iter().flatten().copied().collect();
    let defs: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
    out.typed::<Int64Type>()
        .write_batch(&present, Some(&defs), None)?;
    Ok(())
}

/// Levels for `optional group (LIST) { repeated group list { optional binary element } }`:
/// definition 1 = empty list, 3 = a present element; repetition 1 = same list continues.
fn write_lists(out: &mut ColumnOut<'_>, lists: &[&[String]]) -> Result<()> {
    let mut values = Vec::new();
    let mut defs = Vec::new();
    let mut reps = Vec::new();
    for list in lists {
        if list.is_empty() {
            defs.push(1);
            reps.push(0);
        }
        for (i, s) in list.iter().enumerate() {
            values.push(ByteArray::from(s.as_str()));
            defs.push(3);
            reps.push(i16::from(i > 0));
        }
    }
    out.typed::<ByteArrayType>()
        .write_batch(&values, Some(&defs), Some(&reps))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::basic::ZstdLevel;

    fn mmlu_rows(n: usize) -> Vec<MmluRow> {
        (0..n)
            .map(|i| MmluRow {
                question: format!("Question {i}: what is {i} + {i}?\nThink, then answer."),
                subject: if i % 2 == 0 {
                    "abstract_algebra"
                } else {
                    "virology"
                }
                .to_string(),
                choices: vec![
                    format!("{}", 2 * i),
                    "a, b, and c".to_string(),
                    "line one\nline two".to_string(),
                    "ünïcödé — 数学 🧮".to_string(),
                ],
                answer: (i % 4) as i64,
            })
            .collect()
    }

    #[test]
    fn mmlu_round_trips_lists_with_commas_newlines_and_unicode() {
        let rows = mmlu_rows(5);
        let bytes = write_mmlu(&rows).unwrap();
        assert_eq!(read_mmlu("test.parquet", &bytes).unwrap(), rows);
    }

    #[test]
    fn mmlu_round_trips_an_empty_choice_list_as_an_answer_error() {
        let mut rows = mmlu_rows(2);
        rows[1].choices.clear();
        let bytes = write_mmlu(&rows).unwrap();
        let err = read_mmlu("x.parquet", &bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            "x.parquet: row 1: answer 1 is not an index into its 0 choices"
        );
    }

    #[test]
    fn gsm8k_round_trips() {
        let rows = vec![
            GsmRow {
                question: "Natalia sold clips to 48 of her friends in April, ...".to_string(),
                answer: "In May she sold 48/2 = <<48/2=24>>24 clips.\n#### 72".to_string(),
            },
            GsmRow {
                question: String::new(),
                answer: "#### 0".to_string(),
            },
        ];
        let bytes = write_gsm8k(&rows).unwrap();
        assert_eq!(read_gsm8k("main/test", &bytes).unwrap(), rows);
    }

    #[test]
    fn humaneval_round_trips() {
        let rows = vec![HumanEvalRow {
            task_id: "HumanEval/0".to_string(),
            prompt: "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \"\"\" Check \"\"\"\n".to_string(),
            canonical_solution: "    return False\n".to_string(),
            test: "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert True\n".to_string(),
            entry_point: "has_close_elements".to_string(),
        }];
        let bytes = write_humaneval(&rows).unwrap();
        assert_eq!(read_humaneval("he.parquet", &bytes).unwrap(), rows);
    }

    #[test]
    fn empty_tables_round_trip() {
        assert!(read_gsm8k("e", &write_gsm8k(&[]).unwrap())
            .unwrap()
            .is_empty());
        assert!(read_mmlu("e", &write_mmlu(&[]).unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn several_row_groups_are_read_in_order() {
        let rows = mmlu_rows(10);
        let bytes = write_mmlu_with(&rows, 3, Compression::SNAPPY).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 4);
        assert_eq!(read_mmlu("groups.parquet", &bytes).unwrap(), rows);
    }

    #[test]
    fn zstd_files_are_read() {
        let rows = mmlu_rows(7);
        let level = ZstdLevel::try_new(3).unwrap();
        let bytes = write_mmlu_with(&rows, 4, Compression::ZSTD(level)).unwrap();
        assert_eq!(read_mmlu("zstd.parquet", &bytes).unwrap(), rows);
    }

    #[test]
    fn files_carry_the_hub_schema_and_snappy() {
        let bytes = write_mmlu(&mmlu_rows(1)).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let meta = reader.metadata();
        let column = meta.row_group(0).column(2);
        assert_eq!(column.column_path().string(), "choices.list.element");
        assert_eq!(column.compression(), Compression::SNAPPY);
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        assert_eq!(kv[0].key, "huggingface");
        let leaf = meta.file_metadata().schema_descr().column(3);
        assert_eq!(leaf.name(), "answer");
        assert_eq!(leaf.physical_type(), ::parquet::basic::Type::INT64);
    }

    #[test]
    fn a_missing_column_is_named_with_the_label() {
        // A GSM8K file read as MMLU has no `subject` column.
        let bytes = write_gsm8k(&[GsmRow {
            question: "q".to_string(),
            answer: "a".to_string(),
        }])
        .unwrap();
        let err = read_mmlu("all/test-00000-of-00001.parquet", &bytes)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "all/test-00000-of-00001.parquet: missing column 'subject' (the file has: question, answer)"
        );
    }

    #[test]
    fn a_null_value_names_the_row_and_column() {
        let columns = vec![
            Column::Strings(vec![Some("q0"), None]),
            Column::Strings(vec![Some("a0"), Some("a1")]),
        ];
        let bytes = Table::new(GSM8K_SCHEMA, GSM8K_FEATURES, 2, columns)
            .write(10, Compression::SNAPPY)
            .unwrap();
        let err = read_gsm8k("gsm.parquet", &bytes).unwrap_err().to_string();
        assert_eq!(err, "gsm.parquet: row 1: column 'question' is null");
    }

    #[test]
    fn a_wrong_type_names_the_row_and_column() {
        // `answer` as a string where MMLU wants int64.
        let schema = "message schema {
          optional binary question (STRING);
          optional binary subject (STRING);
          optional group choices (LIST) { repeated group list { optional binary element (STRING); } }
          optional binary answer (STRING);
        }";
        let choices = vec!["x".to_string()];
        let columns = vec![
            Column::Strings(vec![Some("q")]),
            Column::Strings(vec![Some("s")]),
            Column::StringLists(vec![choices.as_slice()]),
            Column::Strings(vec![Some("A")]),
        ];
        let bytes = Table::new(schema, MMLU_FEATURES, 1, columns)
            .write(10, Compression::SNAPPY)
            .unwrap();
        let err = read_mmlu("m.parquet", &bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            "m.parquet: row 0: column 'answer' is a string, expected an integer"
        );
    }

    #[test]
    fn garbage_is_not_a_parquet_file() {
        let err = read_gsm8k("junk.parquet", b"not parquet at all")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("junk.parquet: not a readable parquet file"),
            "{err}"
        );
    }
}
