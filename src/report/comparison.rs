//! `comparison.csv` and `comparison.md`: the wide table people publish (one row per model ×
//! quant, scores with deltas, speed, memory, the frontier mark, verdicts under each cap),
//! rendered from a [`Comparison`]; nothing is computed here.

use anyhow::Result;
use frontier_core::units;

use super::analysis::{task_title, Comparison, Row};
use crate::memory::verdict::Verdict;
use crate::output::table::{markdown, Align};
use crate::store::CellStatus;

pub(super) fn status_str(s: CellStatus) -> &'static str {
    match s {
        CellStatus::Done => "done",
        CellStatus::Failed => "failed",
        CellStatus::Running => "incomplete",
    }
}

/// `comparison.csv`: the wide table, one row per cell, with deltas and the frontier mark.
pub fn comparison_csv(c: &Comparison) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec![
        "model".into(),
        "quant".into(),
        "derived_from".into(),
        "status".into(),
    ];
    for t in &c.tasks {
        let name = t.as_str();
        header.extend([
            format!("{name}_score"),
            format!("{name}_ci95_low"),
            format!("{name}_ci95_high"),
            format!("{name}_n"),
            format!("{name}_format_failure_rate"),
            format!("{name}_delta_points"),
            format!("{name}_delta_p"),
        ]);
    }
    header.extend(["pp_ts", "tg_ts", "peak_rss_bytes", "file_size", "frontier"].map(String::from));
    header.extend(
        c.limits
            .iter()
            .map(|&l| format!("fits_{}", units::bytes_compact(l))),
    );
    header.push("error".into());
    w.write_record(&header)?;
    for r in &c.rows {
        let mut row: Vec<String> = vec![
            r.model.clone(),
            r.quant.clone(),
            r.derived_from.clone().unwrap_or_default(),
            status_str(r.status).into(),
        ];
        for score in &r.scores {
            match score {
                Some(s) => row.extend([
                    format!("{:.4}", s.value),
                    format!("{:.4}", s.ci_low),
                    format!("{:.4}", s.ci_high),
                    s.n.to_string(),
                    format!("{:.4}", s.format_failure_rate),
                    s.delta
                        .as_ref()
                        .map_or(String::new(), |d| format!("{:.2}", d.points)),
                    s.delta
                        .as_ref()
                        .map_or(String::new(), |d| format!("{:.4}", d.p_value)),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 7)),
            }
        }
        row.extend([
            r.pp_ts.map_or(String::new(), |v| format!("{v:.2}")),
            r.tg_ts.map_or(String::new(), |v| format!("{v:.2}")),
            r.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
            r.file_size.to_string(),
            r.on_frontier.to_string(),
        ]);
        row.extend(
            r.fits
                .iter()
                .map(|v| v.map_or(String::new(), |v| v.as_str().to_string())),
        );
        row.push(r.error.clone().unwrap_or_default());
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

/// A footnote mark: ` [n]`.
fn mark(note: Option<usize>) -> String {
    note.map_or(String::new(), |n| format!(" [{}]", n + 1))
}

/// `comparison.md`: the table people publish, the deltas in words, notes.
pub fn comparison_md(c: &Comparison) -> String {
    let mut headers: Vec<String> = vec!["Model".into(), "Quant".into()];
    headers.extend(c.tasks.iter().map(|t| format!("{} %", task_title(*t))));
    headers.extend(["pp t/s", "tg t/s", "Peak RSS", "File size", "Frontier"].map(String::from));
    headers.extend(
        c.limits
            .iter()
            .map(|&l| format!("Fits {}", units::bytes(l))),
    );
    let mut align = vec![Align::Left, Align::Left];
    align.extend(c.tasks.iter().map(|_| Align::Right));
    align.extend([
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
    ]);
    align.extend(c.limits.iter().map(|_| Align::Left));

    let rows: Vec<Vec<String>> = c.rows.iter().map(md_row).collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut md = String::from("# Comparison\n\n");
    md.push_str(&markdown(&header_refs, &align, &rows));
    md.push_str("\nScores are percentages ± standard error. ★ marks the efficient frontier: no other cell has both a higher mean score");
    md.push_str(&format!(
        " (over {}) and a lower peak RSS.\n",
        c.common_tasks
            .iter()
            .map(|t| task_title(*t))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for b in &c.best_under {
        md.push_str(&match b.best {
            Some((i, score)) => {
                let r = &c.rows[i];
                format!(
                    "\nBest under {}: **{} {}** (mean score {:.1}%, peak RSS {}; {} of {} cells fit).\n",
                    units::bytes(b.limit),
                    r.model,
                    r.quant,
                    score * 100.0,
                    r.peak_rss_bytes.map_or("-".into(), units::bytes),
                    b.fitting,
                    b.tried
                )
            }
            None => format!(
                "\nNo cell with scores fits under {} ({} ran under that cap).\n",
                units::bytes(b.limit),
                b.tried
            ),
        });
    }
    if !c.deltas.is_empty() {
        md.push_str("\n## Quantization deltas (paired, same items)\n\n");
        for d in &c.deltas {
            md.push_str(&format!("- {}\n", d.sentence()));
        }
    }
    let failed: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| r.status == CellStatus::Failed)
        .collect();
    if !failed.is_empty() {
        md.push_str("\n## Failed cells\n\n");
        for r in failed {
            md.push_str(&format!(
                "- {} {}: {}\n",
                r.model,
                r.quant,
                r.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    if !c.footnotes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for (i, f) in c.footnotes.iter().enumerate() {
            md.push_str(&format!("{}. {f}\n", i + 1));
        }
    }
    md
}

fn md_row(r: &Row) -> Vec<String> {
    let mut row = vec![
        r.model.clone(),
        format!("{}{}", r.quant, mark(r.quant_note)),
    ];
    for score in &r.scores {
        row.push(match score {
            Some(s) => format!(
                "{:.1} ± {:.1}{}",
                s.value * 100.0,
                s.stderr * 100.0,
                mark(s.note)
            ),
            None if r.status == CellStatus::Failed => "failed".into(),
            None => "-".into(),
        });
    }
    row.push(r.pp_ts.map_or("-".into(), |v| format!("{v:.1}")));
    row.push(r.tg_ts.map_or("-".into(), |v| format!("{v:.1}")));
    row.push(r.peak_rss_bytes.map_or("-".into(), units::bytes));
    row.push(units::bytes(r.file_size));
    row.push(if r.on_frontier {
        "★".into()
    } else {
        String::new()
    });
    for v in &r.fits {
        row.push(match v {
            Some(Verdict::Fits) => "yes".into(),
            Some(v) => format!("no: {}", v.as_str()),
            None => "-".into(),
        });
    }
    row
}
