//! Which engine a worker loads a model with: llama.cpp (the default), or — for tests only,
//! behind the hidden `--backend fake` — the scripted engine of [`crate::fake`], which needs
//! no real model and runs in milliseconds.

use std::path::Path;

use anyhow::Result;
use frontier_core::bad_input;
use frontier_engine::{Model, ModelOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The model file through llama.cpp.
    #[default]
    Llama,
    /// The scripted engine: the GGUF file's `frontier.fake.*` metadata says what it does.
    Fake,
}

impl std::str::FromStr for Backend {
    type Err = anyhow::Error;

    /// `--backend NAME`.
    fn from_str(name: &str) -> Result<Backend> {
        match name.trim().to_ascii_lowercase().as_str() {
            "llama" | "llama.cpp" | "local" => Ok(Backend::Llama),
            "fake" => Ok(Backend::Fake),
            other => Err(bad_input(format!("unknown backend '{other}' (llama)"))),
        }
    }
}

impl Backend {
    /// Loads `path` with this backend.
    pub fn load(self, path: &Path, options: &ModelOptions) -> Result<Box<dyn Model>> {
        Ok(match self {
            Backend::Llama => Box::new(frontier_llama::LoadedModel::load(path, options)?),
            Backend::Fake => Box::new(crate::fake::FakeModel::load(path)?),
        })
    }

    pub fn is_llama(self) -> bool {
        self == Backend::Llama
    }
}
