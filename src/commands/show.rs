//! `frontier show RESULTS [ITEM...]`: the stored task runs, or any stored item with its
//! prompt (rebuilt from the dataset and checked against the stored hash), raw output,
//! extracted answer and verdict.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use crate::cli::ShowArgs;
use crate::datasets::Source;
use crate::hashing::sha256_hex;
use crate::prompts::{family_named, Format, PromptStyle};
use crate::store::{ItemRow, Store, StoredCell, TaskRun};
use crate::tasks::plan::build_styled;
use crate::tasks::{TaskName, TaskOptions};
use frontier_core::error::bad_input;
use frontier_gguf::read_summary as model_summary;

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
        for tr in &runs {
            let Some(cell) = cells.iter().find(|c| c.id == tr.cell_id) else {
                continue;
            };
            if !selected(args, cell, tr) {
                continue;
            }
            let items = store.items(tr.id)?;
            let correct = items.iter().filter(|i| i.correct).count();
            writeln!(
                out,
                "{}  {}  {}  {} items stored of {}, {} correct",
                cell.info.model,
                tr.task,
                tr.task_key,
                items.len(),
                tr.n_items,
                correct
            )?;
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
    let task = TaskName::parse(&tr.task).ok_or("unknown task")?;
    let opts = TaskOptions::from_protocol(&tr.protocol)
        .ok_or("the protocol has no options to rebuild from")?;
    let source = cell
        .info
        .config
        .get("data_source")
        .and_then(|s| s.as_str())
        .map_or(Source::Embedded, Source::from_description);
    let format: Format = tr
        .protocol
        .get("format")
        .and_then(|f| serde_json::from_value(f.clone()).ok())
        .unwrap_or(Format::Raw);
    let style = if format == Format::Raw {
        PromptStyle::raw()
    } else {
        let family = tr
            .protocol
            .get("family")
            .and_then(|f| f.as_str())
            .ok_or("no template family recorded")?;
        let family = family_named(family)
            .map_err(|_| format!("template '{family}' is not a built-in one"))?;
        let path = Path::new(&cell.info.model_path);
        let summary = model_summary(path)
            .map_err(|e| format!("model file needed for the chat template: {e:#}"))?;
        PromptStyle::for_model(
            format,
            family,
            summary.chat_template_text.as_deref(),
            summary.bos_text.as_deref().unwrap_or_default(),
            summary.eos_text.as_deref().unwrap_or_default(),
        )
        .map_err(|e| format!("{e:#}"))?
    };
    let plan = build_styled(task, &opts, &source, &style).map_err(|e| format!("{e:#}"))?;
    let it = plan
        .items
        .iter()
        .find(|i| i.id == item.item_id)
        .ok_or("item not in the dataset")?;
    let text = it.work.prompt_text().to_string();
    if sha256_hex(text.as_bytes()) != item.prompt_sha256 {
        return Err(
            "the rebuilt prompt does not match the stored hash (different data or code)".into(),
        );
    }
    Ok(text)
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
