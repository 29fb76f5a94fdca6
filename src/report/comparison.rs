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
            format!("{name}_format"),
            format!("{name}_score"),
            format!("{name}_ci95_low"),
            format!("{name}_ci95_high"),
            format!("{name}_n"),
            format!("{name}_format_failure_rate"),
            format!("{name}_delta_points"),
            format!("{name}_delta_p"),
        ]);
    }
    if c.has_fidelity {
        header.extend(FIDELITY_CSV.map(String::from));
    }
    header.extend(
        [
            "pp_ts",
            "tg_ts",
            "serving_bytes",
            "serving_ctx",
            "serving_estimate_bytes",
            "eval_peak_bytes",
            "eval_seqs",
            "file_size",
            "frontier",
        ]
        .map(String::from),
    );
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
                    s.format.as_str().to_string(),
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
                None => row.extend(std::iter::repeat_n(String::new(), 8)),
            }
        }
        if c.has_fidelity {
            row.extend(fidelity_csv(r));
        }
        row.extend([
            r.pp_ts.map_or(String::new(), |v| format!("{v:.2}")),
            r.tg_ts.map_or(String::new(), |v| format!("{v:.2}")),
            r.serving.map_or(String::new(), |s| s.peak_rss.to_string()),
            r.serving.map_or(String::new(), |s| s.n_ctx.to_string()),
            r.serving
                .and_then(|s| s.estimate)
                .map_or(String::new(), |b| b.to_string()),
            r.eval_peak.map_or(String::new(), |e| e.0.to_string()),
            r.eval_peak
                .and_then(|e| e.1)
                .map_or(String::new(), |n| n.to_string()),
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

/// The fidelity columns of `comparison.csv` (when any cell has fidelity).
const FIDELITY_CSV: [&str; 14] = [
    "fidelity_base",
    "kld_mean",
    "kld_ci95_low",
    "kld_ci95_high",
    "kld_median",
    "kld_p90",
    "kld_p99",
    "kld_max",
    "same_top",
    "same_top_ci95_low",
    "same_top_ci95_high",
    "ppl",
    "ppl_ratio",
    "fidelity_tokens",
];

fn fidelity_csv(r: &Row) -> Vec<String> {
    let Some(f) = &r.fidelity else {
        return vec![String::new(); FIDELITY_CSV.len()];
    };
    let (klo, khi) = f.kld.ci95();
    let (slo, shi) = f.same_top.ci95();
    vec![
        f.base.clone(),
        format!("{:.6}", f.kld.value),
        format!("{:.6}", klo.max(0.0)),
        format!("{:.6}", khi),
        format!("{:.6}", f.kld_median),
        format!("{:.6}", f.kld_p90),
        format!("{:.6}", f.kld_p99),
        format!("{:.6}", f.kld_max),
        format!("{:.5}", f.same_top.value),
        format!("{:.5}", slo),
        format!("{:.5}", shi.min(1.0)),
        format!("{:.4}", f.ppl.value),
        format!("{:.5}", f.ppl_ratio.value),
        f.n.to_string(),
    ]
}

/// A footnote mark: ` [n]`.
fn mark(note: Option<usize>) -> String {
    note.map_or(String::new(), |n| format!(" [{}]", n + 1))
}

/// `comparison.md`: the table people publish, the deltas in words, notes.
pub fn comparison_md(c: &Comparison) -> String {
    let mut headers: Vec<String> = vec!["Model".into(), "Quant".into()];
    headers.extend(
        c.tasks
            .iter()
            .zip(&c.formats)
            .map(|(t, f)| format!("{} % ({f})", task_title(*t))),
    );
    if c.has_fidelity {
        headers.extend(["KLD vs base [95% CI]", "p99 KLD", "Same top %"].map(String::from));
    }
    headers.extend([
        "pp t/s".to_string(),
        "tg t/s".to_string(),
        c.serve_ctx
            .map_or("Memory".to_string(), |n| format!("Memory @ {n} ctx")),
        "Eval peak".to_string(),
        "File size".to_string(),
        "Frontier".to_string(),
    ]);
    headers.extend(
        c.limits
            .iter()
            .map(|&l| format!("Fits {}", units::bytes(l))),
    );
    let mut align = vec![Align::Left, Align::Left];
    align.extend(c.tasks.iter().map(|_| Align::Right));
    if c.has_fidelity {
        align.extend([Align::Right; 3]);
    }
    align.extend([
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
    ]);
    align.extend(c.limits.iter().map(|_| Align::Left));

    let rows: Vec<Vec<String>> = c.rows.iter().map(|r| md_row(r, c.has_fidelity)).collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut md = String::from("# Comparison\n\n");
    md.push_str(&markdown(&header_refs, &align, &rows));
    md.push_str("\nScores are percentages ± standard error. ★ marks the efficient frontier: no other cell has both a higher mean score");
    md.push_str(&format!(
        " (over {}) and less memory{}.\n",
        c.common_tasks
            .iter()
            .map(|t| task_title(*t))
            .collect::<Vec<_>>()
            .join(", "),
        match c.serve_ctx {
            Some(n) => format!(
                " to serve it (peak RSS of one sequence at a {n}-token context; the file size where that was not measured). Eval peak is the evaluation worker's, with its KV cache for the sequences it decoded together"
            ),
            None => " (the file size: no serving footprint was measured)".to_string(),
        }
    ));
    for b in &c.best_under {
        md.push_str(&match b.best {
            Some((i, score)) => {
                let r = &c.rows[i];
                format!(
                    "\nBest under {}: **{} {}** (mean score {:.1}%, memory {}; {} of {} cells fit).\n",
                    units::bytes(b.limit),
                    r.model,
                    r.quant,
                    score * 100.0,
                    units::bytes(r.memory_bytes),
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
    if !c.deltas.is_empty() || !c.fidelity_findings.is_empty() {
        md.push_str("\n## Quantization deltas (paired, same items)\n\n");
        for d in &c.deltas {
            md.push_str(&format!("- {}\n", d.sentence()));
        }
        for f in &c.fidelity_findings {
            md.push_str(&format!("- {f}\n"));
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

fn md_row(r: &Row, has_fidelity: bool) -> Vec<String> {
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
    if has_fidelity {
        match &r.fidelity {
            Some(f) if f.is_base => row.extend(["base".into(), "-".into(), "100".into()]),
            Some(f) => row.extend([f.kld_text(), format!("{:.4}", f.kld_p99), f.same_top_text()]),
            None => row.extend(["-".to_string(), "-".into(), "-".into()]),
        }
    }
    row.push(r.pp_ts.map_or("-".into(), |v| format!("{v:.1}")));
    row.push(r.tg_ts.map_or("-".into(), |v| format!("{v:.1}")));
    row.push(match r.serving {
        Some(s) => units::bytes(s.peak_rss),
        None => format!("{} (file)", units::bytes(r.file_size)),
    });
    row.push(match r.eval_peak {
        Some((b, Some(n))) => format!("{} ({n} seqs)", units::bytes(b)),
        Some((b, None)) => units::bytes(b),
        None => "-".into(),
    });
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
