//! `format.md`: per model × quant × task, the score under each prompt format, the spread
//! between the best and the worst, and format failures apart from wrong answers.

use super::analysis::task_title;
use super::data::CellResult;
use crate::output::table::{markdown, Align};
use crate::tasks::TaskName;

/// The format sensitivity table's headers.
pub const HEADERS: [&str; 7] = [
    "Model",
    "Quant",
    "Task",
    "raw % (ff)",
    "chat % (ff)",
    "tuned % (ff)",
    "spread (points)",
];

/// Per model × quant × task: the score under each format, the spread between the best and
/// the worst, and the format-failure rate apart from wrong answers. Empty when every cell
/// ran one format.
pub fn format_sensitivity_md(cells: &[CellResult]) -> String {
    let rows = format_sensitivity_rows(cells);
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from("\n## Format sensitivity\n\n");
    md.push_str(&markdown(&HEADERS, &ALIGN, &rows));
    md.push_str("\nff = format failures: answers with nothing to extract (no number, no code), counted apart from wrong answers.\n");
    md
}

pub const ALIGN: [Align; 7] = [
    Align::Left,
    Align::Left,
    Align::Left,
    Align::Right,
    Align::Right,
    Align::Right,
    Align::Right,
];

/// The table's rows; none when every cell ran one format.
pub fn format_sensitivity_rows(cells: &[CellResult]) -> Vec<Vec<String>> {
    use crate::prompts::Format;
    let formats = [Format::Raw, Format::Chat, Format::Tuned];
    let several = cells.iter().any(|c| {
        let mut f: Vec<Format> = c.tasks.iter().map(|t| t.format).collect();
        f.sort();
        f.dedup();
        f.len() > 1
    });
    if !several {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for c in cells {
        for t in tasks_of_any_format(c) {
            let mut row = vec![c.model.clone(), c.quant.clone(), task_title(t).to_string()];
            let mut scores = Vec::new();
            for f in formats {
                match c.task_in(t, f) {
                    Some(r) => {
                        let s = &r.summary;
                        let rate = s.format_failures as f64 / s.score.n.max(1) as f64;
                        scores.push(s.score.value);
                        row.push(format!(
                            "{:.1} ({:.0}% ff)",
                            s.score.value * 100.0,
                            rate * 100.0
                        ));
                    }
                    None => row.push("-".into()),
                }
            }
            let spread = if scores.len() > 1 {
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let min = scores.iter().cloned().fold(f64::MAX, f64::min);
                format!("{:.1}", (max - min) * 100.0)
            } else {
                "-".into()
            };
            row.push(spread);
            rows.push(row);
        }
    }
    rows
}

fn tasks_of_any_format(c: &CellResult) -> Vec<TaskName> {
    let mut t: Vec<TaskName> = c.tasks.iter().map(|r| r.task).collect();
    t.sort();
    t.dedup();
    t
}
