//! `frontier show RESULTS [ITEM...]`: the stored task runs, or any stored item with its
//! prompt (rebuilt from the dataset and checked against the stored hash), raw output,
//! extracted answer and verdict.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use crate::cli::ShowArgs;
use crate::store::{ItemRow, Store, StoredCell, TaskRun};
use crate::tasks::rebuild::{rebuild_plan, verified_prompt};
use frontier_core::error::bad_input;

/// The store file of an output folder, or the file itself.
pub fn store_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("results.sqlite")
    } else {
        p.to_path_buf()
    }
}

pub fn run(args: &ShowArgs) -> Result<i32> {
    let store = Store::open_existing(&store_path(&args.results))?;
    let cells = store.cells()?;
    let runs = store.task_runs(None)?;
    let mut out = std::io::stdout().lock();
    if args.items.is_empty() {
        let mut listed = Vec::new();
        for tr in &runs {
            let Some(cell) = cells.iter().find(|c| c.id == tr.cell_id) else {
                continue;
            };
            if !selected(args, cell, tr) {
                continue;
            }
            let items = store.items(tr.id)?;
            let correct = items.iter().filter(|i| i.correct).count();
            if args.json {
                listed.push(serde_json::json!({
                    "model": cell.info.model,
                    "quant": cell.info.quant,
                    "task": tr.task,
                    "task_key": tr.task_key,
                    "stored": items.len(),
                    "planned": tr.n_items,
                    "correct": correct,
                }));
            } else {
                writeln!(
                    out,
                    "{} {}  {}  {}  {} items stored of {}, {} correct",
                    cell.info.model,
                    cell.info.quant,
                    tr.task,
                    tr.task_key,
                    items.len(),
                    tr.n_items,
                    correct
                )?;
            }
        }
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&listed)?)?;
        }
        return Ok(0);
    }
    let mut found = 0;
    for id in &args.items {
        for (tr_id, item) in store.find_items(id)? {
            let Some(tr) = runs.iter().find(|t| t.id == tr_id) else {
                continue;
            };
            let Some(cell) = cells.iter().find(|c| c.id == tr.cell_id) else {
                continue;
            };
            if !selected(args, cell, tr) {
                continue;
            }
            found += 1;
            let prompt = rebuild_prompt(tr, cell, &item);
            if args.json {
                let v = json!({
                    "model": cell.info.model, "task": tr.task, "task_key": tr.task_key,
                    "item": item, "prompt": prompt.as_ref().ok(), "prompt_check": prompt.as_ref().err(),
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                out.write_all(render(cell, tr, &item, &prompt, args.prompt).as_bytes())?;
            }
        }
    }
    if found == 0 {
        return Err(bad_input(format!(
            "no stored item matches {} in {}",
            args.items.join(", "),
            args.results.display()
        )));
    }
    Ok(0)
}

fn selected(args: &ShowArgs, cell: &StoredCell, tr: &TaskRun) -> bool {
    args.task.as_ref().is_none_or(|t| tr.task == *t)
        && args
            .model
            .as_ref()
            .is_none_or(|m| cell.info.model.contains(m))
}

/// Rebuilds an item's prompt from its task run's protocol (and, for the chat and tuned
/// formats, the model file's template); Err says why it could not be rebuilt or that it
/// does not match the stored hash.
fn rebuild_prompt(tr: &TaskRun, cell: &StoredCell, item: &ItemRow) -> Result<String, String> {
    let plan = rebuild_plan(tr, &cell.info)?;
    verified_prompt(&plan, item)
}

fn render(
    cell: &StoredCell,
    tr: &TaskRun,
    item: &ItemRow,
    prompt: &Result<String, String>,
    full: bool,
) -> String {
    let mut s = format!(
        "== {} · {} ({}) · {}\n",
        cell.info.model, tr.task, tr.task_key, item.item_id
    );
    let verdict = if item.correct {
        "correct"
    } else if item.format_failure {
        "format failure (no extractable answer)"
    } else {
        "wrong"
    };
    s.push_str(&format!("verdict:    {verdict}\n"));
    s.push_str(&format!(
        "extracted:  {}\n",
        item.extracted.as_deref().unwrap_or("-")
    ));
    s.push_str(&format!("gold:       {}\n", one_line(&item.gold, 200)));
    s.push_str(&format!(
        "metrics:    {}\n",
        serde_json::to_string(&item.metrics).unwrap_or_default()
    ));
    s.push_str(&format!(
        "tokens:     prompt {}, output {}; {:.1} ms\n",
        item.prompt_tokens, item.output_tokens, item.time_ms
    ));
    match prompt {
        Ok(_) => s.push_str(&format!(
            "prompt:     sha256 {} (rebuilt and verified)\n",
            &item.prompt_sha256[..16]
        )),
        Err(why) => s.push_str(&format!(
            "prompt:     sha256 {} ({why})\n",
            &item.prompt_sha256[..16]
        )),
    }
    if let (true, Ok(p)) = (full, prompt) {
        s.push_str("--- prompt ---\n");
        s.push_str(p);
        s.push('\n');
    }
    s.push_str("--- output ---\n");
    s.push_str(&item.output);
    s.push('\n');
    if !item.detail.is_null() {
        s.push_str("--- detail ---\n");
        s.push_str(&serde_json::to_string_pretty(&item.detail).unwrap_or_default());
        s.push('\n');
    }
    s.push('\n');
    s
}

fn one_line(s: &str, max: usize) -> String {
    let flat = s.replace('\n', "⏎");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}
