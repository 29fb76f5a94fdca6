//! The served model as a `Model`: its vocabulary is the server's (`/tokenize`), its context
//! the server's per-request context, and each engine made on it a set of requests in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use frontier_engine::{ContextOptions, Engine, Model, Token, Tokenizer};

use crate::engine::RemoteEngine;
use crate::http::Http;
use crate::probe::{probe_with, Capabilities};
use crate::server::Server;
use crate::spec::RemoteSpec;

pub struct RemoteModel {
    server: Arc<Server>,
    adds_bos: bool,
    connect_time: Duration,
}

impl RemoteModel {
    /// Connects: probes the server and checks it can run token-level tasks.
    pub fn connect(spec: &RemoteSpec) -> Result<RemoteModel> {
        let start = Instant::now();
        let http = Http::new(spec)?;
        let caps = probe_with(&http, spec)?;
        caps.check_usable()?;
        let server = Arc::new(Server { http, caps });
        // Whether a whole prompt starts with a BOS token: tokenize with and without it.
        let with = server.tokenize("Hello", true)?;
        let without = server.tokenize("Hello", false)?;
        Ok(RemoteModel {
            adds_bos: with.len() > without.len(),
            server,
            connect_time: start.elapsed(),
        })
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.server.caps
    }

    /// Requests that had to be tried again so far.
    pub fn retries(&self) -> u64 {
        self.server.http.retries()
    }
}

impl Tokenizer for RemoteModel {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.server.tokenize(text, add_special)
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        self.server.detokenize(tokens)
    }
}

impl Model for RemoteModel {
    fn adds_bos(&self) -> bool {
        self.adds_bos
    }

    /// The context one request may use on the server (what limits a prompt there).
    fn n_ctx_train(&self) -> u32 {
        let caps = &self.server.caps;
        caps.n_ctx.or(caps.n_ctx_train).unwrap_or(4096)
    }

    fn n_params(&self) -> u64 {
        self.server.caps.n_params.unwrap_or(0)
    }

    fn load_time(&self) -> Duration {
        self.connect_time
    }

    fn served_slots(&self) -> Option<u32> {
        Some(self.server.caps.slots.unwrap_or(8))
    }

    fn engine(&self, options: &ContextOptions) -> Result<Box<dyn Engine + '_>> {
        Ok(Box::new(RemoteEngine::new(
            self.server.clone(),
            options,
            self.n_ctx_train(),
        )))
    }
}
