//! A GGUF model loaded by llama.cpp, after our own reader has validated the file: its
//! vocabulary as a [`Tokenizer`] and what llama.cpp says about it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use frontier_engine::{ModelOptions, Token, Tokenizer};
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::backend::backend;
use crate::logs;

/// A model loaded into memory, with how long loading took.
#[derive(Debug)]
pub struct LoadedModel {
    pub(crate) model: LlamaModel,
    pub path: PathBuf,
    pub load_time: Duration,
}

impl LoadedModel {
    /// Validates the file with our GGUF reader, then loads it with llama.cpp.
    pub fn load(path: &Path, options: &ModelOptions) -> Result<LoadedModel> {
        frontier_gguf::read_file(path)?;
        let backend = backend()?;
        let mut params = LlamaModelParams::default()
            .with_use_mmap(options.use_mmap)
            .with_use_mlock(options.use_mlock);
        if let Some(n) = options.gpu_layers {
            params = params.with_n_gpu_layers(n);
        }
        let start = Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            let said = logs::last_llama_error().unwrap_or_else(|| e.to_string());
            anyhow!(
                "{}: llama.cpp could not load the model: {said}",
                path.display()
            )
        })?;
        Ok(LoadedModel {
            model,
            path: path.to_path_buf(),
            load_time: start.elapsed(),
        })
    }

    pub fn n_params(&self) -> u64 {
        self.model.n_params()
    }

    /// Bytes of weights as llama.cpp holds them.
    pub fn size(&self) -> u64 {
        self.model.size()
    }

    pub fn n_ctx_train(&self) -> u32 {
        self.model.n_ctx_train()
    }

    pub fn n_vocab(&self) -> usize {
        self.model.n_vocab().max(0) as usize
    }

    /// The chat template stored in the GGUF, if any.
    pub fn chat_template(&self) -> Option<String> {
        self.model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok())
    }

    /// The end-of-generation test for a token.
    pub fn is_eog(&self, token: Token) -> bool {
        self.model.vocab().is_eog(LlamaToken(token))
    }

    /// Whether llama.cpp adds a BOS token for this model.
    pub fn adds_bos(&self) -> bool {
        self.model.vocab().should_add_bos()
    }

    pub(crate) fn piece(&self, token: Token) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), false, None)
    }
}

impl Tokenizer for LoadedModel {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        Ok(token_ids(&self.model.vocab().tokenize(
            text.as_bytes(),
            add_special,
            true,
        )))
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        let toks: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        let bytes = self.model.vocab().detokenize(&toks, false, false);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn token_ids(tokens: &[LlamaToken]) -> Vec<Token> {
    tokens.iter().map(|t| t.0).collect()
}
