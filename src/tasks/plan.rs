//! A task plan: the items of one task with the protocol that defines them (everything that
//! changes a prompt or a score) and the hash of the data they came from. The protocol's
//! hash keys stored results, so a rerun with the same protocol resumes and one with another
//! protocol starts fresh.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::gsm8k::{self, Gsm8kOptions, Sampling};
use super::humaneval;
use super::mmlu::{self, MmluOptions};
use super::{Item, TaskName};
use crate::datasets::{content_hash, DatasetFiles, Source};
use crate::hashing::sha256_hex;
use crate::prompts::{family_named, select_family, Format, PromptStyle};
use frontier_core::error::bad_input;

/// Everything a user can choose about the tasks (defaults match lm-evaluation-harness,
/// except MMLU's shots: 5, as "MMLU 5-shot" in papers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOptions {
    pub mmlu_shots: usize,
    pub subjects: Option<Vec<String>>,
    /// Items per task (per subject for MMLU), first N in dataset order.
    pub limit: Option<usize>,
    /// Per-task limits that override `limit` (`mmlu=10,gsm8k=100`).
    #[serde(default)]
    pub task_limits: std::collections::BTreeMap<TaskName, usize>,
    pub gsm8k_shots: usize,
    pub gsm8k_sampling: Sampling,
    /// Generation limit for GSM8K (lm-eval: 256).
    pub gsm8k_max_tokens: usize,
    /// Generation limit for HumanEval (lm-eval: 1024).
    pub humaneval_max_tokens: usize,
    /// Use the HumanEval+ tests.
    pub plus: bool,
    /// The sandbox's limits on a HumanEval program (recorded in HumanEval's protocol, not
    /// among the options every task's protocol holds).
    #[serde(skip)]
    pub humaneval_limits: humaneval::ProgramLimits,
    /// How generation steps are shaped (recorded in the generation tasks' protocols, not
    /// among the options every task's protocol holds). Set by whoever runs the plans from
    /// its engine settings (`settings::generation_steps`); a plan built without it (a
    /// scoring-only run, a test) records none.
    #[serde(skip)]
    pub generation_steps: Option<GenerationSteps>,
}

/// The shape of every generation step, on which a generated item's output depends
/// (llama.cpp's logits change with a batch's row count, not with the other rows' tokens or
/// depths): results stored under one shape are not resumed under another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationSteps {
    /// Rows in every step (`eval::parallel::generation_rows`); 0: a server's own batching.
    pub rows: u32,
    /// Idle rows padded (not `--no-padding`, whose outputs depend on the other items).
    pub padding: bool,
}

impl GenerationSteps {
    /// The steps a generation task's protocol records, if it records any.
    pub fn from_protocol(protocol: &serde_json::Value) -> Option<GenerationSteps> {
        Some(GenerationSteps {
            rows: u32::try_from(protocol.get("generation_rows")?.as_u64()?).ok()?,
            padding: protocol.get("padding")?.as_bool()?,
        })
    }
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            mmlu_shots: 5,
            subjects: None,
            limit: None,
            task_limits: Default::default(),
            gsm8k_shots: 5,
            gsm8k_sampling: Sampling::Lmeval,
            gsm8k_max_tokens: 256,
            humaneval_max_tokens: humaneval::MAX_TOKENS,
            plus: false,
            humaneval_limits: Default::default(),
            generation_steps: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TaskPlan {
    pub task: TaskName,
    pub format: Format,
    /// The template the prompts were rendered with (name and content hash).
    pub template: String,
    pub template_hash: String,
    pub items: Vec<Item>,
    /// What defines the prompts and the scoring (recorded with every result).
    pub protocol: serde_json::Value,
    /// sha256 over the data files used.
    pub dataset_hash: String,
    pub n_shot: usize,
}

impl TaskOptions {
    /// The item limit of one task.
    pub fn limit_for(&self, task: TaskName) -> Option<usize> {
        self.task_limits.get(&task).copied().or(self.limit)
    }

    /// The options stored in a task run's protocol.
    pub fn from_protocol(protocol: &serde_json::Value) -> Option<TaskOptions> {
        serde_json::from_value(protocol.get("options")?.clone()).ok()
    }
}

impl TaskPlan {
    /// Records `steps` in the protocol of a generation task (another key: its results are
    /// kept apart from those of other steps); a scoring task's protocol stays as it is.
    pub fn record_generation_steps(&mut self, steps: GenerationSteps) {
        let generates = match self.task {
            TaskName::Mmlu => false,
            TaskName::Gsm8k | TaskName::Gsm8kCot | TaskName::Humaneval => true,
        };
        if generates {
            self.protocol = with_steps(std::mem::take(&mut self.protocol), steps);
        }
    }

    /// `mmlu-1a2b3c4d5e6f`: the task name and a hash of its protocol.
    pub fn key(&self) -> String {
        let hash = sha256_hex(self.protocol.to_string().as_bytes());
        format!("{}-{}", self.task.as_str(), &hash[..12])
    }
}

/// The dataset a task reads.
pub fn dataset_of(task: TaskName) -> &'static str {
    match task {
        TaskName::Mmlu => "mmlu",
        TaskName::Gsm8k | TaskName::Gsm8kCot => "gsm8k",
        TaskName::Humaneval => "humaneval",
    }
}

/// Builds the plan of one task from a data source, in lm-eval's raw format.
pub fn build_plan(task: TaskName, opts: &TaskOptions, source: &Source) -> Result<TaskPlan> {
    build_styled(task, opts, source, &PromptStyle::raw())
}

/// Builds the plan of one task from a data source in a prompt style.
pub fn build_styled(
    task: TaskName,
    opts: &TaskOptions,
    source: &Source,
    style: &PromptStyle,
) -> Result<TaskPlan> {
    build_from(
        task,
        opts,
        &DatasetFiles::open(dataset_of(task), source)?,
        style,
    )
}

/// Builds the plan of one task from an opened dataset.
pub fn build_from(
    task: TaskName,
    opts: &TaskOptions,
    files: &DatasetFiles,
    style: &PromptStyle,
) -> Result<TaskPlan> {
    if task == TaskName::Gsm8kCot && style.format != Format::Raw {
        return Err(bad_input(
            "gsm8k_cot is lm-eval's raw completion task; use gsm8k with --format chat or tuned",
        ));
    }
    let (items, used, n_shot, protocol) = match task {
        TaskName::Mmlu => {
            let o = MmluOptions {
                shots: opts.mmlu_shots,
                subjects: opts.subjects.clone(),
                limit: opts.limit_for(task),
            };
            let (items, used) = mmlu::build(files, &o, style)?;
            let p = json!({
                "task": "mmlu", "template": "lm-eval default", "split": "test", "fewshot_split": "dev",
                "sampler": "first_n", "num_fewshot": o.shots, "continuations": [" A", " B", " C", " D"],
                "metric": "acc (argmax of summed log-probabilities)",
            });
            (items, used, o.shots, p)
        }
        TaskName::Gsm8k => {
            let o = Gsm8kOptions {
                shots: opts.gsm8k_shots,
                sampling: opts.gsm8k_sampling,
                limit: opts.limit_for(task),
                max_tokens: opts.gsm8k_max_tokens,
            };
            let (items, used) = gsm8k::build(files, &o, style)?;
            let p = json!({
                "task": "gsm8k", "template": "Question: {question}\\nAnswer:", "split": "test",
                "fewshot_split": "train", "num_fewshot": o.shots, "sampling": o.sampling,
                "seed": gsm8k::FEWSHOT_SEED, "until": gsm8k::STOPS, "max_gen_toks": o.max_tokens,
                "greedy": true, "filters": ["strict-match #### N", "flexible-extract last number"],
            });
            (items, used, o.shots, p)
        }
        TaskName::Gsm8kCot => {
            let (items, used) =
                gsm8k::build_cot(files, opts.limit_for(task), opts.gsm8k_max_tokens)?;
            let p = json!({
                "task": "gsm8k_cot", "template": "Q: {question}\\nA:", "split": "test",
                "num_fewshot": 8, "sampling": "first_n (Wei et al. exemplars)", "until": gsm8k::COT_STOPS,
                "max_gen_toks": opts.gsm8k_max_tokens, "greedy": true,
                "filters": ["strict-match The answer is N.", "flexible-extract last number"],
            });
            (items, used, 8, p)
        }
        TaskName::Humaneval => {
            let (items, used) = humaneval::build(
                files,
                opts.plus,
                opts.limit_for(task),
                opts.humaneval_max_tokens,
                style,
            )?;
            let p = json!({
                "task": "humaneval", "tests": if opts.plus { "HumanEval+ v0.1.10" } else { "HumanEval" },
                "template": "{prompt}", "until": humaneval::STOPS, "max_gen_toks": opts.humaneval_max_tokens,
                "greedy": true, "metric": "pass@1 (prompt + completion + test + check(entry_point), sandboxed)",
                "program_wall_ms": opts.humaneval_limits.wall_ms,
                "program_memory_bytes": opts.humaneval_limits.memory_bytes,
            });
            (items, used, 0, p)
        }
    };
    let refs: Vec<&crate::datasets::DataFile> = used.iter().collect();
    let dataset_hash = content_hash(&refs);
    let mut protocol = protocol;
    protocol["dataset_hash"] = json!(dataset_hash);
    protocol["format"] = json!(style.format);
    protocol["template"] = json!(style.template_name);
    protocol["template_hash"] = json!(style.template_hash);
    protocol["family"] = json!(style.family.name);
    // The options that shape prompts and scores (not the selection), so a stored item's
    // prompt can be rebuilt.
    let shaping = TaskOptions {
        subjects: None,
        limit: None,
        task_limits: Default::default(),
        ..opts.clone()
    };
    protocol["options"] = serde_json::to_value(&shaping)?;
    let mut plan = TaskPlan {
        task,
        format: style.format,
        template: style.template_name.clone(),
        template_hash: style.template_hash.clone(),
        items,
        protocol,
        dataset_hash,
        n_shot,
    };
    if let Some(steps) = opts.generation_steps {
        plan.record_generation_steps(steps);
    }
    Ok(plan)
}

/// A generation task's protocol with the shape of its generation steps.
fn with_steps(mut protocol: serde_json::Value, steps: GenerationSteps) -> serde_json::Value {
    protocol["generation_rows"] = json!(steps.rows);
    protocol["padding"] = json!(steps.padding);
    protocol
}

/// The prompt formats each task runs in, the first being the one comparison tables show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFormats(pub BTreeMap<TaskName, Vec<Format>>);

impl TaskFormats {
    /// The defaults: MMLU in lm-eval's raw prompts (log-likelihood scoring has no format
    /// failures, and stays comparable with published numbers), GSM8K and HumanEval in the
    /// model family's template (an instruct model's answers in its own turns),
    /// gsm8k_cot raw (it is lm-eval's completion task).
    pub fn defaults(tasks: &[TaskName]) -> TaskFormats {
        TaskFormats(
            tasks
                .iter()
                .map(|&t| {
                    let f = match t {
                        TaskName::Mmlu | TaskName::Gsm8kCot => Format::Raw,
                        TaskName::Gsm8k | TaskName::Humaneval => Format::Tuned,
                    };
                    (t, vec![f])
                })
                .collect(),
        )
    }

    /// The same formats for every task (gsm8k_cot runs raw only).
    pub fn every(tasks: &[TaskName], formats: &[Format]) -> TaskFormats {
        TaskFormats(
            tasks
                .iter()
                .map(|&t| {
                    let fs = match t {
                        TaskName::Gsm8kCot => vec![Format::Raw],
                        _ => formats.to_vec(),
                    };
                    (t, fs)
                })
                .collect(),
        )
    }

    pub fn of(&self, task: TaskName) -> &[Format] {
        self.0.get(&task).map_or(&[], Vec::as_slice)
    }

    /// Every format used by some task, raw first.
    pub fn all(&self) -> Vec<Format> {
        let mut f: Vec<Format> = self.0.values().flatten().copied().collect();
        f.sort();
        f.dedup();
        f
    }

    /// Plans per item of each task, counting each format it runs in.
    pub fn runs_of(&self, task: TaskName) -> usize {
        self.of(task).len()
    }
}

/// Every task's plan for one model in its formats: the family template chosen from the
/// model's metadata (or `template`), the embedded chat template rendered with Jinja.
pub fn plans_for_model(
    tasks: &[TaskName],
    opts: &TaskOptions,
    source: &Source,
    formats: &TaskFormats,
    template: Option<&str>,
    summary: &frontier_gguf::ModelSummary,
    path: &std::path::Path,
) -> Result<Vec<TaskPlan>> {
    let family = match template {
        Some(t) => family_named(t)?,
        None => select_family(
            summary,
            &path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
        ),
    };
    let mut plans = Vec::new();
    for format in formats.all() {
        let style = PromptStyle::for_model(
            format,
            family.clone(),
            summary.chat_template_text.as_deref(),
            summary.bos_text.as_deref().unwrap_or_default(),
            summary.eos_text.as_deref().unwrap_or_default(),
        )
        .map_err(|e| bad_input(format!("{}: {e:#}", path.display())))?;
        for &task in tasks {
            if formats.of(task).contains(&format) {
                plans.push(build_styled(task, opts, source, &style)?);
            }
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gsm8k_plan(steps: Option<GenerationSteps>) -> TaskPlan {
        let opts = TaskOptions {
            limit: Some(2),
            generation_steps: steps,
            ..TaskOptions::default()
        };
        build_plan(TaskName::Gsm8k, &opts, &Source::Embedded).unwrap()
    }

    #[test]
    fn generation_steps_are_recorded_read_back_and_part_of_the_key() {
        let four = GenerationSteps {
            rows: 4,
            padding: true,
        };
        let one = GenerationSteps {
            rows: 1,
            padding: true,
        };
        let plan = gsm8k_plan(Some(four));
        assert_eq!(GenerationSteps::from_protocol(&plan.protocol), Some(four));
        assert_ne!(plan.key(), gsm8k_plan(Some(one)).key());
        // A plan built without steps records none (what a rebuilt old protocol reads back).
        let unset = gsm8k_plan(None);
        assert_eq!(GenerationSteps::from_protocol(&unset.protocol), None);
        assert_ne!(plan.key(), unset.key());
        // Scoring tasks never record them.
        let opts = TaskOptions {
            limit: Some(2),
            generation_steps: Some(four),
            ..TaskOptions::default()
        };
        let mmlu = build_plan(TaskName::Mmlu, &opts, &Source::Embedded).unwrap();
        assert_eq!(GenerationSteps::from_protocol(&mmlu.protocol), None);
    }
}
