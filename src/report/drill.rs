//! The items a report shows for each cell and task, bounded so that a full-size store (all
//! 14,042 MMLU questions in every cell) still makes a page that opens: the first
//! [`ITEMS_PER_TASK`] items, wrong and unparseable answers first, each with its prompt
//! rebuilt from the dataset and checked against its stored hash, long texts cut.

use std::collections::HashMap;

use anyhow::Result;

use super::data::CellResult;
use crate::store::{ItemRow, Store};
use crate::tasks::rebuild::{rebuild_plan, verified_prompt};

/// Items shown per cell and task.
pub const ITEMS_PER_TASK: usize = 12;
/// Characters of a prompt or an output shown (the rest is cut, and said so).
pub const TEXT_LIMIT: usize = 4000;

/// One item as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownItem {
    pub id: String,
    /// `correct`, `wrong` or `format failure`.
    pub verdict: &'static str,
    pub extracted: Option<String>,
    pub gold: String,
    pub output: String,
    /// The prompt, or why it could not be rebuilt.
    pub prompt: Result<String, String>,
}

/// The items shown for one task of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownTask {
    pub title: String,
    /// Items stored, and how many were not correct.
    pub total: usize,
    pub failed: usize,
    pub items: Vec<ShownItem>,
}

/// A cell's tasks, for its drill-down.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownCell {
    pub label: String,
    pub tasks: Vec<ShownTask>,
}

fn verdict(i: &ItemRow) -> &'static str {
    if i.correct {
        "correct"
    } else if i.format_failure {
        "format failure"
    } else {
        "wrong"
    }
}

/// `text` cut to [`TEXT_LIMIT`] characters, saying how much was left out.
pub fn cut(text: &str) -> String {
    let n = text.chars().count();
    if n <= TEXT_LIMIT {
        return text.to_string();
    }
    let kept: String = text.chars().take(TEXT_LIMIT).collect();
    format!("{kept}\n… ({} more characters)", n - TEXT_LIMIT)
}

/// The shown items of every cell's tasks (in each task's primary format).
pub fn load(store: &Store, cells: &[CellResult]) -> Result<Vec<ShownCell>> {
    let runs = store.task_runs(None)?;
    let stored: HashMap<i64, crate::store::StoredCell> =
        store.cells()?.into_iter().map(|c| (c.id, c)).collect();
    let mut out = Vec::new();
    for c in cells {
        let mut tasks = Vec::new();
        for t in &c.tasks {
            if c.task(t.task).map(|p| &p.task_key) != Some(&t.task_key) {
                continue;
            }
            let Some(tr) = runs
                .iter()
                .find(|r| r.cell_id == c.id && r.task_key == t.task_key)
            else {
                continue;
            };
            let items = store.items(tr.id)?;
            let failed = items.iter().filter(|i| !i.correct).count();
            let mut chosen: Vec<&ItemRow> = items.iter().filter(|i| !i.correct).collect();
            chosen.extend(items.iter().filter(|i| i.correct));
            chosen.truncate(ITEMS_PER_TASK);
            let plan = stored
                .get(&c.id)
                .ok_or_else(|| "cell not in the store".to_string())
                .and_then(|cell| rebuild_plan(tr, &cell.info));
            tasks.push(ShownTask {
                title: format!("{} ({})", t.task.as_str(), t.format.as_str()),
                total: items.len(),
                failed,
                items: chosen
                    .into_iter()
                    .map(|i| ShownItem {
                        id: i.item_id.clone(),
                        verdict: verdict(i),
                        extracted: i.extracted.clone(),
                        gold: cut(&i.gold),
                        output: cut(&i.output),
                        prompt: plan
                            .as_ref()
                            .map_err(Clone::clone)
                            .and_then(|p| verified_prompt(p, i))
                            .map(|p| cut(&p)),
                    })
                    .collect(),
            });
        }
        out.push(ShownCell {
            label: c.label(),
            tasks,
        });
    }
    Ok(out)
}
