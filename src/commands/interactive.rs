//! What `chat` and `demo` share: loading a model in this process with its chat template.

use std::path::Path;

use anyhow::Result;

use crate::cli::InteractiveArgs;
use crate::prompts::{family_named, select_family, Format, PromptStyle};
use frontier_engine::{ContextOptions, ModelOptions};
use frontier_gguf::ModelSummary;
use frontier_llama::LoadedModel;

/// A model ready to talk: the loaded weights, its metadata and its chat style.
pub struct Talker {
    pub model: LoadedModel,
    pub summary: ModelSummary,
    pub style: PromptStyle,
    pub add_bos: bool,
}

impl Talker {
    pub fn load(path: &Path, args: &InteractiveArgs) -> Result<Talker> {
        let summary = frontier_gguf::read_summary(path)?;
        let family = match &args.template {
            Some(t) => family_named(t)?,
            None => select_family(
                &summary,
                &path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
            ),
        };
        let style = PromptStyle::for_model(
            Format::Chat,
            family,
            summary.chat_template_text.as_deref(),
            summary.bos_text.as_deref().unwrap_or_default(),
            summary.eos_text.as_deref().unwrap_or_default(),
        )?;
        let model = LoadedModel::load(path, &ModelOptions::default())?;
        let add_bos = model.adds_bos();
        Ok(Talker {
            model,
            summary,
            style,
            add_bos,
        })
    }

    pub fn context_options(&self, args: &InteractiveArgs) -> ContextOptions {
        ContextOptions {
            n_ctx: args.ctx.min(self.model.n_ctx_train().max(256)),
            n_seq_max: 1,
            threads: args
                .threads
                .unwrap_or_else(frontier_core::system::default_threads),
            flash_attn: frontier_engine::FlashAttn::Auto
                .for_decoding(crate::build_info::cpu_only()),
            ..ContextOptions::default()
        }
    }

    /// The family's default system prompt ("" when it has none).
    pub fn default_system(&self) -> String {
        self.style.family.chat.system_prompt.clone()
    }
}
