//! The llama.cpp model and context offered through frontier's engine interface:
//! [`frontier_engine::Model`] for [`LoadedModel`] (contexts made on it) and
//! [`frontier_engine::Engine`] for [`LlamaEngine`] (scoring in [`crate::score`], generation in
//! [`crate::generate`]).

use std::time::Duration;

use anyhow::{bail, Result};
use frontier_engine::{
    ContextOptions, Engine, EngineStats, GenRequest, GenResult, Model, ScoreRequest, ScoreResult,
    Token, Tokenizer,
};

use crate::context::LlamaEngine;
use crate::model::LoadedModel;

impl LoadedModel {
    pub fn new_engine(&self, options: &ContextOptions) -> Result<LlamaEngine<'_>> {
        LlamaEngine::new(self, options)
    }
}

impl Model for LoadedModel {
    fn adds_bos(&self) -> bool {
        LoadedModel::adds_bos(self)
    }

    fn n_ctx_train(&self) -> u32 {
        LoadedModel::n_ctx_train(self)
    }

    fn n_params(&self) -> u64 {
        LoadedModel::n_params(self)
    }

    fn load_time(&self) -> Duration {
        self.load_time
    }

    fn engine(&self, options: &ContextOptions) -> Result<Box<dyn Engine + '_>> {
        Ok(Box::new(self.new_engine(options)?))
    }
}

impl Tokenizer for LlamaEngine<'_> {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.model.tokenize(text, add_special)
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        self.model.detokenize(tokens)
    }
}

impl Engine for LlamaEngine<'_> {
    fn options(&self) -> &ContextOptions {
        &self.options
    }

    fn kv_cache_bytes(&self) -> Option<u64> {
        self.memory.kv_bytes
    }

    fn stats(&self) -> EngineStats {
        self.stats.clone()
    }

    fn warm_up(&mut self) -> Result<()> {
        LlamaEngine::warm_up(self)
    }

    fn score_shared(
        &mut self,
        prefix: &[Token],
        requests: &[ScoreRequest],
    ) -> Result<Vec<ScoreResult>> {
        crate::score::run(self, prefix, requests)
    }

    fn generate_shared(
        &mut self,
        prefix: &[Token],
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        if !prefix.is_empty() {
            if prefix.len() >= self.options.cells_per_seq() as usize {
                bail!(
                    "a shared prefix of {} tokens does not fit the context",
                    prefix.len()
                );
            }
            self.set_prefix(prefix)?;
        }
        crate::generate::run(self, prefix, requests, on_done)
    }
}
