//! Per-model prompt templates (the family files in `prompts/`), their automatic selection
//! from GGUF metadata, chat rendering (the model's own Jinja template, or the family's
//! turns), and the prompt formats a task can be run in: raw (lm-evaluation-harness
//! completion style), chat (the model's own template with a plain instruction) and tuned
//! (the family file).

pub mod chat;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use chat::{ChatRenderer, Message};

use crate::extract::{CodeRule, NumberRule};
use crate::hashing::sha256_hex;
use frontier_core::error::bad_input;
use frontier_gguf::ModelSummary;

/// The built-in family files.
const FAMILIES: &[(&str, &str)] = &[
    ("smollm2", include_str!("../../prompts/smollm2.toml")),
    ("smollm3", include_str!("../../prompts/smollm3.toml")),
    ("gemma", include_str!("../../prompts/gemma.toml")),
    ("gemma-3", include_str!("../../prompts/gemma-3.toml")),
    ("gemma-base", include_str!("../../prompts/gemma-base.toml")),
    ("phi-2", include_str!("../../prompts/phi-2.toml")),
    ("llama-3", include_str!("../../prompts/llama-3.toml")),
    ("qwen", include_str!("../../prompts/qwen.toml")),
    ("chatml", include_str!("../../prompts/chatml.toml")),
    ("raw", include_str!("../../prompts/raw.toml")),
];

/// How a task is prompted.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// lm-evaluation-harness completion style: comparable with published base-model numbers.
    Raw,
    /// The model's own chat template with a plain instruction.
    Chat,
    /// The model family's tuned template (instructions, answer format, extraction).
    Tuned,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Chat => "chat",
            Format::Tuned => "tuned",
        }
    }
}

/// Which models a family file is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRules {
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Case-insensitive substrings of the model name or file name.
    #[serde(default)]
    pub names: Vec<String>,
    /// Chat template families (`chatml`, `gemma`, `llama3`, ...).
    #[serde(default)]
    pub templates: Vec<String>,
    /// Only for models with (`true`) or without (`false`) an embedded chat template: a
    /// pretrained model usually carries none and prompts differently from its instruct twin.
    #[serde(default)]
    pub embedded_template: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Render {
    /// The model's own (Jinja) chat template.
    Embedded,
    /// The turn strings of the family file.
    Turns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fewshot {
    /// Each example as a user turn and an assistant turn.
    Multiturn,
    /// All examples in the first user message.
    Block,
}

/// How turns are rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSpec {
    pub render: Render,
    #[serde(default)]
    pub system: String,
    pub user: String,
    pub assistant: String,
    pub generation_prompt: String,
    #[serde(default)]
    pub system_prompt: String,
    /// The template has no system role: the system prompt joins the first user turn.
    #[serde(default)]
    pub merge_system_into_user: bool,
    pub fewshot: Fewshot,
    #[serde(default)]
    pub stop: Vec<String>,
}

/// How answers are written in tuned GSM8K examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStyle {
    /// The worked solution, then `The answer is N.`
    AnswerIs,
    /// The dataset's own style, ending in `#### N`.
    Hashes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gsm8kSpec {
    pub instruction: String,
    pub answer_style: AnswerStyle,
    /// Extraction rules tried in order (see [`NumberRule`]).
    pub extract: Vec<NumberRule>,
    pub max_tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanevalSpec {
    pub instruction: String,
    pub extract: CodeRule,
    pub max_tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmluSpec {
    #[serde(default)]
    pub instruction: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpecs {
    pub gsm8k: Gsm8kSpec,
    pub humaneval: HumanevalSpec,
    pub mmlu: MmluSpec,
}

/// One family file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    pub name: String,
    pub description: String,
    #[serde(rename = "match", default)]
    pub matching: MatchRules,
    pub chat: ChatSpec,
    pub tasks: TaskSpecs,
    /// First 16 hex digits of the file's sha256.
    #[serde(skip)]
    pub hash: String,
}

impl Family {
    pub fn parse(text: &str, label: &str) -> Result<Family> {
        let mut f: Family = toml::from_str(text).map_err(|e| bad_input(format!("{label}: {e}")))?;
        f.hash = sha256_hex(text.as_bytes())[..16].to_string();
        for (name, t) in [("user", &f.chat.user), ("assistant", &f.chat.assistant)] {
            if !t.contains("{content}") {
                return Err(bad_input(format!(
                    "{label}: chat.{name} must contain {{content}}"
                )));
            }
        }
        Ok(f)
    }
}

/// Every built-in family.
pub fn families() -> Vec<Family> {
    FAMILIES
        .iter()
        .map(|(name, text)| {
            Family::parse(text, name).unwrap_or_else(|e| panic!("built-in family {name}: {e}"))
        })
        .collect()
}

/// A family by name, or from a TOML file path (`--template NAME|FILE`).
pub fn family_named(spec: &str) -> Result<Family> {
    let p = Path::new(spec);
    if spec.ends_with(".toml") || p.is_file() {
        let text =
            std::fs::read_to_string(p).map_err(|e| bad_input(format!("{}: {e}", p.display())))?;
        return Family::parse(&text, &p.display().to_string());
    }
    families()
        .into_iter()
        .find(|f| f.name == spec)
        .ok_or_else(|| {
            let names: Vec<String> = families().into_iter().map(|f| f.name).collect();
            bad_input(format!(
                "unknown template '{spec}' (built-in: {}; or a .toml file)",
                names.join(", ")
            ))
        })
}

/// Picks the family for a model from its metadata: architecture, name (or file name), the
/// family of its embedded chat template and whether it has one at all (a family can be only
/// for models with, or without, a template). The best-scoring file wins; without any match,
/// `chatml` for ChatML templates and `raw` otherwise.
pub fn select_family(summary: &ModelSummary, file_name: &str) -> Family {
    let name = format!(
        "{} {}",
        summary.name.as_deref().unwrap_or_default(),
        file_name
    )
    .to_ascii_lowercase();
    let template = summary.chat_template.as_ref().map(|t| t.family.as_str());
    let mut best: Option<(u32, Family)> = None;
    for f in families() {
        let m = &f.matching;
        let arch = m
            .architectures
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&summary.architecture));
        let named = m
            .names
            .iter()
            .any(|n| name.contains(&n.to_ascii_lowercase()));
        let templ = template.is_some_and(|t| m.templates.iter().any(|x| x == t));
        let presence = m.embedded_template.map(|want| want == template.is_some());
        if presence == Some(false) {
            continue;
        }
        // A family for particular models needs its model's name (or, when it lists no
        // names, its architecture); only the generic families go by the template alone.
        let eligible = if !m.names.is_empty() {
            named
        } else if !m.architectures.is_empty() {
            arch
        } else {
            true
        };
        if !eligible {
            continue;
        }
        // A name match is the strongest signal; architecture, template and whether there
        // is one at all refine it.
        let score = u32::from(named) * 4
            + u32::from(arch) * 2
            + u32::from(templ)
            + u32::from(presence == Some(true));
        if score > 0 && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, f));
        }
    }
    best.map(|(_, f)| f).unwrap_or_else(|| {
        let fallback = if template == Some("chatml") {
            "chatml"
        } else {
            "raw"
        };
        family_named(fallback).expect("built-in fallback family")
    })
}

/// Everything that decides how one model's prompts are built in one format.
#[derive(Debug, Clone)]
pub struct PromptStyle {
    pub format: Format,
    pub family: Arc<Family>,
    /// Renders chat turns (chat and tuned formats).
    pub renderer: Option<ChatRenderer>,
    /// What is recorded with results: `raw (lm-eval)`, `chat: embedded chatml 872be49d…`,
    /// `tuned: smollm2 3f1c…`.
    pub template_name: String,
    pub template_hash: String,
    /// Stop strings of the chat turns (chat and tuned formats).
    pub stop: Vec<String>,
}

impl PromptStyle {
    /// lm-evaluation-harness completion style.
    pub fn raw() -> PromptStyle {
        let family = family_named("raw").expect("built-in raw family");
        PromptStyle {
            format: Format::Raw,
            template_hash: family.hash.clone(),
            family: Arc::new(family),
            renderer: None,
            template_name: "raw (lm-eval)".into(),
            stop: Vec::new(),
        }
    }

    /// The style of `format` for a model. `embedded` is the model's chat template text,
    /// `bos`/`eos` its special token texts; `family` overrides the automatic choice.
    pub fn for_model(
        format: Format,
        family: Family,
        embedded: Option<&str>,
        bos: &str,
        eos: &str,
    ) -> Result<PromptStyle> {
        if format == Format::Raw {
            return Ok(PromptStyle::raw());
        }
        let use_embedded = match format {
            Format::Chat => embedded.is_some(),
            _ => family.chat.render == Render::Embedded && embedded.is_some(),
        };
        let renderer = if use_embedded {
            let text = embedded.unwrap_or_default();
            ChatRenderer::jinja(text, bos, eos)?
        } else {
            ChatRenderer::turns(family.chat.clone())
        };
        let (name, hash) = match (&renderer, format) {
            (ChatRenderer::Jinja { source, .. }, Format::Chat) => (
                format!(
                    "chat: embedded {}",
                    frontier_gguf::chat_template::identify(source)
                ),
                sha256_hex(source.as_bytes())[..16].to_string(),
            ),
            (ChatRenderer::Jinja { source, .. }, _) => (
                format!("tuned: {} (embedded template)", family.name),
                format!("{}+{}", family.hash, &sha256_hex(source.as_bytes())[..8]),
            ),
            (ChatRenderer::Turns(_), Format::Chat) => (
                format!("chat: {} turns (no embedded template)", family.name),
                family.hash.clone(),
            ),
            (ChatRenderer::Turns(_), _) => (format!("tuned: {}", family.name), family.hash.clone()),
        };
        let mut stop = family.chat.stop.clone();
        if !eos.is_empty() && !stop.iter().any(|s| s == eos) {
            stop.push(eos.to_string());
        }
        Ok(PromptStyle {
            format,
            family: Arc::new(family),
            renderer: Some(renderer),
            template_name: name,
            template_hash: hash,
            stop,
        })
    }

    /// Renders messages and the generation prompt (chat and tuned formats only).
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        match &self.renderer {
            Some(r) => r.render(messages, true),
            None => Err(anyhow::anyhow!("the raw format has no chat turns")),
        }
    }

    /// The system prompt for this format: the family's in tuned, none in chat (the model's
    /// template adds its own default, if any).
    pub fn system_prompt(&self) -> Option<&str> {
        match self.format {
            Format::Tuned => {
                Some(self.family.chat.system_prompt.as_str()).filter(|s| !s.is_empty())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
