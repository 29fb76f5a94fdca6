//! `report.html`: one self-contained page (CSS, script and charts inline; nothing fetched)
//! rendered from what the other reports are made of — the comparison rows, the decision
//! framework, the format sensitivity table, the quantization deltas, provenance, and a
//! bounded drill-down to each cell's items.

mod chart;

use std::fmt::Write as _;

use frontier_core::units;

use super::analysis::{task_title, Comparison, Row};
use super::data::CellResult;
use super::decision::{rules, Decision};
use super::drill::{ShownCell, ITEMS_PER_TASK};
use super::formats;
use crate::store::CellStatus;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Text made safe inside HTML elements and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Everything the page shows.
pub struct Page<'a> {
    pub cells: &'a [CellResult],
    pub comparison: &'a Comparison,
    pub decision: &'a Decision,
    pub items: &'a [ShownCell],
    /// When the page was made (UTC).
    pub generated: String,
}

/// The whole page.
pub fn report_html(p: &Page<'_>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>frontier report</title><style>{CSS}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>frontier report</h1><p class=\"muted\">{} cells · made {} · every number is read from the results store; this page fetches nothing.</p>",
        p.cells.len(),
        escape(&p.generated)
    );
    h.push_str("<nav><a href=\"#decision\">Decision</a><a href=\"#comparison\">Comparison</a><a href=\"#charts\">Charts</a><a href=\"#deltas\">Quantization deltas</a><a href=\"#formats\">Formats</a><a href=\"#items\">Items</a><a href=\"#provenance\">Provenance</a></nav>");
    decision_section(&mut h, p);
    comparison_section(&mut h, p.comparison);
    charts_section(&mut h, p.comparison);
    deltas_section(&mut h, p.comparison);
    formats_section(&mut h, p.cells);
    items_section(&mut h, p.items);
    provenance_section(&mut h, p.cells);
    let _ = writeln!(h, "<script>{SCRIPT}</script></body></html>");
    h
}

fn decision_section(h: &mut String, p: &Page<'_>) {
    let d = p.decision;
    h.push_str("<h2 id=\"decision\">Which model and quant for this machine</h2>");
    let _ = write!(
        h,
        "<p>{}</p>",
        match d.serve_ctx {
            Some(n) => format!("Memory is what serving the model takes: one sequence at a {n}-token context."),
            None => "No serving footprint was measured: memory is estimated from the GGUF headers (or only the file size is known).".to_string(),
        }
    );
    h.push_str("<h3>Hardware table</h3><table><thead><tr><th>RAM</th><th>What fits</th></tr></thead><tbody>");
    for t in &d.tiers {
        let fits = if t.fits.is_empty() {
            match t.closest {
                Some((i, lacks)) => format!(
                    "nothing fits; closest: {} (needs {} more)",
                    escape(&p.cells[i].label()),
                    units::bytes(lacks)
                ),
                None => "nothing fits".into(),
            }
        } else {
            t.fits
                .iter()
                .map(|f| {
                    format!(
                        "{} <span class=\"muted\">({}, {} free, {})</span>",
                        escape(&p.cells[f.cell].label()),
                        units::bytes(f.memory),
                        units::bytes(f.headroom),
                        f.basis.label()
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{fits}</td></tr>",
            units::bytes(t.ram)
        );
    }
    h.push_str("</tbody></table><h3>Decision framework</h3><table><thead><tr><th>RAM</th><th>For</th><th>Pick</th><th>Runner-up</th><th>Notes</th></tr></thead><tbody>");
    for t in &d.tiers {
        if t.picks.is_empty() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td colspan=\"4\" class=\"muted\">no cell with scores fits</td></tr>",
                units::bytes(t.ram)
            );
        }
        for pick in &t.picks {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><b>{}</b> ({})</td><td>{}</td><td>{}{}</td></tr>",
                units::bytes(t.ram),
                escape(&pick.criterion.title()),
                escape(&p.cells[pick.cell].label()),
                pick.criterion.show(pick.value),
                pick.runner_up.map_or("-".into(), |(i, v)| format!(
                    "{} ({})",
                    escape(&p.cells[i].label()),
                    pick.criterion.show(v)
                )),
                pick.tie.as_ref().map_or(String::new(), |t| format!(
                    "<span class=\"tie\">{}</span> ",
                    escape(t)
                )),
                pick.flag.as_ref().map_or(String::new(), |f| format!(
                    "<span class=\"flag\">⚠ {}</span>",
                    escape(f)
                )),
            );
        }
    }
    h.push_str("</tbody></table><details><summary>How the picks are made</summary><ul>");
    for r in rules(d.serve_ctx) {
        let _ = write!(h, "<li>{}</li>", escape(&r));
    }
    h.push_str("</ul></details>");
}

fn num_cell(text: &str, sort: Option<f64>) -> String {
    match sort {
        Some(v) => format!("<td class=\"num\" data-sort=\"{v}\">{}</td>", escape(text)),
        None => format!("<td class=\"num\" data-sort=\"\">{}</td>", escape(text)),
    }
}

fn comparison_section(h: &mut String, c: &Comparison) {
    h.push_str("<h2 id=\"comparison\">Comparison</h2><input class=\"filter\" data-table=\"comparison-table\" placeholder=\"filter rows (model, quant, …)\"><table class=\"sortable\" id=\"comparison-table\"><thead><tr><th>Model</th><th>Quant</th>");
    for (t, f) in c.tasks.iter().zip(&c.formats) {
        let _ = write!(h, "<th>{} % ({})</th>", task_title(*t), escape(f));
    }
    if c.has_fidelity {
        h.push_str("<th>KLD vs base [95% CI]</th><th>p99 KLD</th><th>Same top %</th>");
    }
    let _ = write!(
        h,
        "<th>pp t/s</th><th>tg t/s</th><th>{}</th><th>Eval peak</th><th>File size</th><th>Frontier</th>",
        c.serve_ctx
            .map_or("Memory".to_string(), |n| format!("Memory @ {n} ctx"))
    );
    for &l in &c.limits {
        let _ = write!(h, "<th>Fits {}</th>", units::bytes(l));
    }
    h.push_str("</tr></thead><tbody>");
    for r in &c.rows {
        comparison_row(h, c, r);
    }
    h.push_str("</tbody></table><p class=\"muted\">Scores: percent ± standard error, from the task's primary prompt format. ★: on the efficient frontier (no other cell has both a higher mean score and less memory). Click a column to sort.</p>");
    if !c.footnotes.is_empty() {
        h.push_str("<ol>");
        for f in &c.footnotes {
            let _ = write!(h, "<li>{}</li>", escape(f));
        }
        h.push_str("</ol>");
    }
}

fn comparison_row(h: &mut String, c: &Comparison, r: &Row) {
    let mark = |n: Option<usize>| n.map_or(String::new(), |n| format!(" [{}]", n + 1));
    let _ = write!(
        h,
        "<tr{}><td>{}</td><td>{}{}</td>",
        if r.on_frontier {
            " class=\"frontier\""
        } else {
            ""
        },
        escape(&r.model),
        escape(&r.quant),
        mark(r.quant_note)
    );
    for s in &r.scores {
        match s {
            Some(s) => h.push_str(&num_cell(
                &format!(
                    "{:.1} ± {:.1}{}",
                    s.value * 100.0,
                    s.stderr * 100.0,
                    mark(s.note)
                ),
                Some(s.value * 100.0),
            )),
            None if r.status == CellStatus::Failed => h.push_str(&num_cell("failed", None)),
            None => h.push_str(&num_cell("-", None)),
        }
    }
    if c.has_fidelity {
        match &r.fidelity {
            Some(f) if f.is_base => {
                h.push_str(&num_cell("base", Some(0.0)));
                h.push_str(&num_cell("-", Some(0.0)));
                h.push_str(&num_cell("100", Some(100.0)));
            }
            Some(f) => {
                h.push_str(&num_cell(&f.kld_text(), Some(f.kld.value)));
                h.push_str(&num_cell(&format!("{:.4}", f.kld_p99), Some(f.kld_p99)));
                h.push_str(&num_cell(
                    &f.same_top_text(),
                    Some(f.same_top.value * 100.0),
                ));
            }
            None => {
                for _ in 0..3 {
                    h.push_str(&num_cell("-", None));
                }
            }
        }
    }
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    h.push_str(&num_cell(&opt(r.pp_ts), r.pp_ts));
    h.push_str(&num_cell(&opt(r.tg_ts), r.tg_ts));
    h.push_str(&num_cell(
        &match r.serving {
            Some(s) => units::bytes(s.peak_rss),
            None => format!("{} (file)", units::bytes(r.file_size)),
        },
        Some(r.memory_bytes as f64),
    ));
    h.push_str(&num_cell(
        &match r.eval_peak {
            Some((b, Some(n))) => format!("{} ({n} seqs)", units::bytes(b)),
            Some((b, None)) => units::bytes(b),
            None => "-".into(),
        },
        r.eval_peak.map(|e| e.0 as f64),
    ));
    h.push_str(&num_cell(
        &units::bytes(r.file_size),
        Some(r.file_size as f64),
    ));
    let _ = write!(h, "<td>{}</td>", if r.on_frontier { "★" } else { "" });
    for v in &r.fits {
        let _ = write!(
            h,
            "<td>{}</td>",
            match v {
                Some(crate::memory::verdict::Verdict::Fits) => "yes".to_string(),
                Some(v) => format!("no: {}", v.as_str()),
                None => "-".into(),
            }
        );
    }
    h.push_str("</tr>");
}

fn charts_section(h: &mut String, c: &Comparison) {
    h.push_str("<h2 id=\"charts\">Charts</h2>");
    let over = c
        .common_tasks
        .iter()
        .map(|t| task_title(*t))
        .collect::<Vec<_>>()
        .join(", ");
    let scored: Vec<&Row> = c.rows.iter().filter(|r| r.mean_score.is_some()).collect();
    if scored.is_empty() {
        h.push_str("<p class=\"muted\">No cell has scores to plot.</p>");
        return;
    }
    let detail = |r: &Row| {
        format!(
            "{} {}: mean score {:.1}% over {over}; memory {}; tg {}",
            r.model,
            r.quant,
            r.mean_score.unwrap_or(0.0) * 100.0,
            units::bytes(r.memory_bytes),
            r.tg_ts.map_or("-".into(), |t| format!("{t:.1} t/s"))
        )
    };
    let memory: Vec<chart::Point> = scored
        .iter()
        .map(|r| chart::Point {
            model: r.model.clone(),
            label: r.quant.clone(),
            x: r.memory_bytes as f64 / 1048576.0,
            y: r.mean_score.unwrap_or(0.0) * 100.0,
            on_frontier: r.on_frontier,
            detail: detail(r),
        })
        .collect();
    let fast: Vec<&&Row> = scored.iter().filter(|r| r.tg_ts.is_some()).collect();
    let flags = chart::pareto(
        &fast
            .iter()
            .map(|r| (r.tg_ts.unwrap_or(0.0), r.mean_score.unwrap_or(0.0)))
            .collect::<Vec<_>>(),
        false,
    );
    let speed: Vec<chart::Point> = fast
        .iter()
        .zip(flags)
        .map(|(r, on)| chart::Point {
            model: r.model.clone(),
            label: r.quant.clone(),
            x: r.tg_ts.unwrap_or(0.0),
            y: r.mean_score.unwrap_or(0.0) * 100.0,
            on_frontier: on,
            detail: detail(r),
        })
        .collect();
    h.push_str("<div class=\"charts\">");
    h.push_str(&chart::scatter(
        "chart-memory",
        &format!("mean score over {over} vs memory"),
        &c.serve_ctx.map_or("memory (MiB)".to_string(), |n| {
            format!("memory to serve, one sequence at {n} tokens (MiB)")
        }),
        "mean score (%)",
        &memory,
        true,
    ));
    if !speed.is_empty() {
        h.push_str(&chart::scatter(
            "chart-speed",
            &format!("mean score over {over} vs generation speed"),
            "generation (tokens/s)",
            "mean score (%)",
            &speed,
            false,
        ));
    }
    h.push_str("</div><p class=\"muted\">Hover a point for its numbers; the black line is the efficient frontier on each chart.</p>");
}

fn deltas_section(h: &mut String, c: &Comparison) {
    h.push_str("<h2 id=\"deltas\">Quantization deltas</h2>");
    if !c.fidelity_findings.is_empty() {
        h.push_str("<h3>KL divergence from the base</h3><ul>");
        for f in &c.fidelity_findings {
            let _ = write!(h, "<li>{}</li>", escape(f));
        }
        h.push_str("</ul>");
    }
    if c.deltas.is_empty() {
        h.push_str("<p class=\"muted\">No paired task deltas: no model has task scores in more than one quantization.</p>");
        return;
    }
    h.push_str("<h3>Task scores, paired on the same items</h3>");
    h.push_str("<table class=\"sortable\"><thead><tr><th>Model</th><th>Quant</th><th>vs</th><th>Task</th><th>Δ points</th><th>Paired items</th><th>Lost</th><th>Gained</th><th>McNemar p</th></tr></thead><tbody>");
    for d in &c.deltas {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}{}</tr>",
            escape(&d.model),
            escape(&d.quant),
            escape(&d.reference),
            task_title(d.task),
            num_cell(&format!("{:+.1}", d.points), Some(d.points)),
            num_cell(&d.n.to_string(), Some(d.n as f64)),
            num_cell(&d.lost.to_string(), Some(d.lost as f64)),
            num_cell(&d.gained.to_string(), Some(d.gained as f64)),
            num_cell(&format!("{:.3}", d.p_value), Some(d.p_value)),
        );
    }
    h.push_str("</tbody></table>");
}

fn formats_section(h: &mut String, cells: &[CellResult]) {
    h.push_str("<h2 id=\"formats\">Format sensitivity</h2>");
    let rows = formats::format_sensitivity_rows(cells);
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">Every task ran in one prompt format (<code>--format all</code> compares raw, chat and tuned).</p>");
        return;
    }
    h.push_str("<table class=\"sortable\"><thead><tr>");
    for head in formats::HEADERS {
        let _ = write!(h, "<th>{}</th>", escape(head));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows {
        h.push_str("<tr>");
        for v in r {
            let _ = write!(h, "<td>{}</td>", escape(&v));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table><p class=\"muted\">ff = format failures: answers with nothing to extract, counted apart from wrong answers.</p>");
}

fn items_section(h: &mut String, cells: &[ShownCell]) {
    let _ = write!(
        h,
        "<h2 id=\"items\">Items</h2><p class=\"muted\">Per cell and task, the first {ITEMS_PER_TASK} items, wrong and unparseable answers first; prompts are rebuilt from the dataset and checked against their stored hash; long texts are cut. <code>frontier show DIR ITEM --prompt</code> prints any item whole.</p>"
    );
    for c in cells {
        let _ = write!(h, "<details><summary>{}</summary>", escape(&c.label));
        for t in &c.tasks {
            let _ = write!(
                h,
                "<h3>{} <span class=\"muted\">— {} of {} items not correct; {} shown</span></h3><table><thead><tr><th>Item</th><th>Verdict</th><th>Extracted</th><th>Gold</th><th>Output and prompt</th></tr></thead><tbody>",
                escape(&t.title),
                t.failed,
                t.total,
                t.items.len()
            );
            for i in &t.items {
                let class = match i.verdict {
                    "correct" => "verdict-correct",
                    "wrong" => "verdict-wrong",
                    _ => "verdict-format",
                };
                let prompt = match &i.prompt {
                    Ok(p) => format!(
                        "<details><summary>prompt</summary><pre>{}</pre></details>",
                        escape(p)
                    ),
                    Err(why) => format!(
                        "<span class=\"muted\">prompt not rebuilt: {}</span>",
                        escape(why)
                    ),
                };
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre>{prompt}</td></tr>",
                    escape(&i.id),
                    i.verdict,
                    escape(i.extracted.as_deref().unwrap_or("-")),
                    escape(&i.gold),
                    escape(&i.output),
                );
            }
            h.push_str("</tbody></table>");
        }
        h.push_str("</details>");
    }
}

fn provenance_section(h: &mut String, cells: &[CellResult]) {
    h.push_str("<h2 id=\"provenance\">Provenance</h2><table><thead><tr><th>Cell</th><th>Model file (sha256)</th><th>llama.cpp</th><th>frontier</th><th>Machine</th><th>Threads</th><th>Tasks (dataset hash, template)</th></tr></thead><tbody>");
    for c in cells {
        let conf = |k: &str| match c.config.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "-".into(),
        };
        let tasks = c
            .tasks
            .iter()
            .map(|t| {
                format!(
                    "{} {}: {}, {}",
                    t.task.as_str(),
                    t.format.as_str(),
                    &t.dataset_hash[..t.dataset_hash.len().min(12)],
                    t.template
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.label()),
            escape(&c.model_sha256[..c.model_sha256.len().min(16)]),
            escape(&conf("llama_cpp")),
            escape(&conf("frontier")),
            escape(&conf("machine")),
            escape(&conf("threads")),
            escape(&tasks)
        );
    }
    h.push_str("</tbody></table>");
    if let Some(from) = cells.iter().find_map(|c| c.derived_from.as_ref()) {
        let _ = write!(
            h,
            "<p>Cells marked derived were made locally from another file (e.g. {}): their size, speed and memory are real, their quality at most that of their source.</p>",
            escape(from)
        );
    }
}
