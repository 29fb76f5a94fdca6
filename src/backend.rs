//! Which engine a worker loads a model with: llama.cpp (the default), a server speaking
//! llama-server's or vLLM's API (`--backend openai:URL`), or — for tests only, behind the
//! hidden `--backend fake` — the scripted engine of [`crate::fake`], which needs no real
//! model and runs in milliseconds.

use std::path::Path;

use anyhow::Result;
use frontier_core::bad_input;
use frontier_engine::{Model, ModelOptions};
use frontier_remote::RemoteSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The model file through llama.cpp.
    #[default]
    Llama,
    /// The model as a server serves it; the local GGUF names it (identity, templates).
    Remote(RemoteSpec),
    /// The scripted engine: the GGUF file's `frontier.fake.*` metadata says what it does.
    Fake,
}

impl std::str::FromStr for Backend {
    type Err = anyhow::Error;

    /// `--backend NAME`.
    fn from_str(name: &str) -> Result<Backend> {
        let trimmed = name.trim();
        if trimmed.starts_with("openai:") {
            return Ok(Backend::Remote(RemoteSpec::parse(trimmed)?));
        }
        match trimmed.to_ascii_lowercase().as_str() {
            "llama" | "llama.cpp" | "local" => Ok(Backend::Llama),
            "fake" => Ok(Backend::Fake),
            other => Err(bad_input(format!(
                "unknown backend '{other}' (llama, or openai:http://HOST:PORT for a server)"
            ))),
        }
    }
}

impl Backend {
    /// Loads `path` with this backend (remote: connects, and checks the server serves a
    /// model with `path`'s vocabulary).
    pub fn load(&self, path: &Path, options: &ModelOptions) -> Result<Box<dyn Model>> {
        Ok(match self {
            Backend::Llama => Box::new(frontier_llama::LoadedModel::load(path, options)?),
            Backend::Remote(spec) => {
                let model = frontier_remote::RemoteModel::connect(spec)?;
                check_same_vocabulary(path, model.capabilities())?;
                Box::new(model)
            }
            Backend::Fake => Box::new(crate::fake::FakeModel::load(path)?),
        })
    }

    pub fn is_llama(&self) -> bool {
        *self == Backend::Llama
    }

    pub fn remote(&self) -> Option<&RemoteSpec> {
        match self {
            Backend::Remote(spec) => Some(spec),
            _ => None,
        }
    }

    /// With `--api-key-env NAME`: the variable the remote backend reads its key from.
    pub fn with_api_key_env(mut self, name: Option<&str>) -> Result<Backend> {
        match (&mut self, name) {
            (Backend::Remote(spec), Some(n)) => spec.api_key_env = Some(n.to_string()),
            (_, Some(_)) => return Err(bad_input("--api-key-env goes with --backend openai:URL")),
            _ => {}
        }
        Ok(self)
    }
}

/// The served model must have the local file's vocabulary: prompts are sent as its tokens.
fn check_same_vocabulary(path: &Path, caps: &frontier_remote::Capabilities) -> Result<()> {
    let header = frontier_gguf::read_file(path)?;
    let local = header.array_len("tokenizer.ggml.tokens").map(|n| n as u32);
    if let (Some(local), Some(served)) = (local, caps.n_vocab) {
        if local != served {
            return Err(bad_input(format!(
                "{} serves a model with a vocabulary of {served} tokens, {} has {local}: not the same model",
                caps.url,
                path.display()
            )));
        }
    }
    Ok(())
}
