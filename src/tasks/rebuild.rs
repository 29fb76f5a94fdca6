//! Rebuilding a stored task run's prompts from its protocol (the options, format and
//! template family it records, the data source and model file of its cell), so any stored
//! item can be shown with the exact prompt it was asked, checked against its stored hash.

use std::path::Path;

use super::plan::{build_styled, GenerationSteps, TaskOptions};
use super::{TaskName, TaskPlan};
use crate::datasets::Source;
use crate::hashing::sha256_hex;
use crate::prompts::{family_named, Format, PromptStyle};
use crate::store::{CellInfo, ItemRow, TaskRun};

/// The plan a task run was made from; Err says why it cannot be rebuilt.
pub fn rebuild_plan(tr: &TaskRun, cell: &CellInfo) -> Result<TaskPlan, String> {
    let task = TaskName::parse(&tr.task).ok_or("unknown task")?;
    let mut opts = TaskOptions::from_protocol(&tr.protocol)
        .ok_or("the protocol has no options to rebuild from")?;
    // The steps the run recorded, so the rebuilt plan has the stored protocol.
    opts.generation_steps = GenerationSteps::from_protocol(&tr.protocol);
    let source = cell
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
        let summary = frontier_gguf::read_summary(Path::new(&cell.model_path))
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
    build_styled(task, &opts, &source, &style).map_err(|e| format!("{e:#}"))
}

/// A stored item's prompt from the rebuilt plan, checked against the stored hash.
pub fn verified_prompt(plan: &TaskPlan, item: &ItemRow) -> Result<String, String> {
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
