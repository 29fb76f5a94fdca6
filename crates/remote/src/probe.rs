//! What a server can do, asked once (`frontier probe URL`): which server it is, its model,
//! build and context, whether it tokenizes, and how it gives log-probabilities. Tasks it
//! would score silently wrong are refused from this.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::Http;
use crate::spec::RemoteSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// llama.cpp's llama-server: `/tokenize`, `/completion` with token prompts and `n_probs`.
    LlamaServer,
    /// vLLM: `/tokenize`, `/v1/completions` with token prompts, `logprobs`, `prompt_logprobs`.
    Vllm,
    /// Another OpenAI-compatible server.
    Other,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::LlamaServer => "llama-server",
            ServerKind::Vllm => "vLLM",
            ServerKind::Other => "OpenAI-compatible",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capabilities {
    /// The server, without credentials.
    pub url: String,
    pub kind: ServerKind,
    /// The model id the server reports.
    pub model: String,
    /// The server's build or version (`b6000-abc1234`, `0.33.0`).
    pub build: Option<String>,
    /// Context of one request (llama-server: per slot; vLLM: max_model_len).
    pub n_ctx: Option<u32>,
    pub n_ctx_train: Option<u32>,
    pub n_vocab: Option<u32>,
    pub n_params: Option<u64>,
    /// Requests the server decodes together (llama-server's slots).
    pub slots: Option<u32>,
    /// `/tokenize` and `/detokenize` with the model's own vocabulary.
    pub tokenizer: bool,
    /// The most next-token log-probabilities one request returns (the whole vocabulary on
    /// llama-server); `None` when the server gives none.
    pub top_logprobs: Option<u32>,
    /// Log-probabilities of the prompt's own tokens (vLLM's `prompt_logprobs`).
    pub prompt_logprobs: bool,
}

impl Capabilities {
    /// Why this server cannot run tasks at all (every task works in tokens).
    pub fn check_usable(&self) -> Result<()> {
        if !self.tokenizer {
            return Err(frontier_core::bad_input(format!(
                "{} ({}) has no /tokenize endpoint: frontier's prompts and stops work in the model's tokens, \
                 so it needs llama-server or vLLM",
                self.url,
                self.kind.name()
            )));
        }
        Ok(())
    }

    /// Why this server cannot score multiple-choice continuations (MMLU), if it cannot.
    pub fn scoring_problem(&self) -> Option<String> {
        if self.prompt_logprobs || self.top_logprobs.is_some_and(|k| k >= 4) {
            return None;
        }
        Some(format!(
            "{} gives no log-probabilities of the next token or the prompt: MMLU cannot be scored there",
            self.url
        ))
    }

    /// `frontier probe`'s report.
    pub fn describe(&self) -> String {
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<16} {v}\n"));
        line("server", format!("{} ({})", self.url, self.kind.name()));
        line("model", self.model.clone());
        line("build", or_unknown(self.build.clone()));
        line(
            "context",
            or_unknown(self.n_ctx.map(|n| format!("{n} tokens per request"))),
        );
        line(
            "trained context",
            or_unknown(self.n_ctx_train.map(|n| n.to_string())),
        );
        line(
            "vocabulary",
            or_unknown(self.n_vocab.map(|n| n.to_string())),
        );
        line(
            "parameters",
            or_unknown(self.n_params.map(|n| n.to_string())),
        );
        line("slots", or_unknown(self.slots.map(|n| n.to_string())));
        line("tokenizer", yes_no(self.tokenizer).into());
        line(
            "next-token top-k",
            self.top_logprobs.map_or("none".into(), |k| k.to_string()),
        );
        line("prompt logprobs", yes_no(self.prompt_logprobs).into());
        line(
            "MMLU (scoring)",
            match (self.tokenizer, self.scoring_problem()) {
                (false, _) => "no: no tokenizer".into(),
                (true, Some(_)) => "no: no log-probabilities".into(),
                (true, None) if self.prompt_logprobs => "yes (prompt log-probabilities)".into(),
                (true, None) => "yes (next-token top-k)".into(),
            },
        );
        line(
            "GSM8K, HumanEval",
            if self.tokenizer {
                "yes"
            } else {
                "no: no tokenizer"
            }
            .into(),
        );
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Asks the server what it is and what it can do.
pub fn probe(spec: &RemoteSpec) -> Result<Capabilities> {
    let http = Http::new(spec)?;
    probe_with(&http, spec)
}

pub(crate) fn probe_with(http: &Http, spec: &RemoteSpec) -> Result<Capabilities> {
    let models = http
        .first_contact("/v1/models")
        .map_err(|e| anyhow!("{e} (is an OpenAI-compatible server listening there?)"))?;
    let first = models
        .pointer("/data/0")
        .ok_or_else(|| anyhow!("{}/v1/models lists no model", spec.display_url()))?;
    let model = first["id"].as_str().unwrap_or("").to_string();
    let owner = first["owned_by"].as_str().unwrap_or("");
    let kind = match owner {
        "llamacpp" => ServerKind::LlamaServer,
        "vllm" => ServerKind::Vllm,
        _ => ServerKind::Other,
    };
    let meta = &first["meta"];
    let u32_of = |v: &Value| v.as_u64().map(|n| n as u32);
    let mut caps = Capabilities {
        url: spec.display_url(),
        kind,
        model: model.clone(),
        build: None,
        n_ctx: u32_of(&meta["n_ctx"]).or_else(|| u32_of(&first["max_model_len"])),
        n_ctx_train: u32_of(&meta["n_ctx_train"]),
        n_vocab: u32_of(&meta["n_vocab"]),
        n_params: meta["n_params"].as_u64(),
        slots: None,
        tokenizer: false,
        top_logprobs: None,
        prompt_logprobs: false,
    };
    match kind {
        ServerKind::LlamaServer => {
            let props = http.get("/props")?;
            caps.build = props["build_info"].as_str().map(str::to_string);
            caps.slots = u32_of(&props["total_slots"]);
            caps.n_ctx = u32_of(
                &props
                    .pointer("/default_generation_settings/n_ctx")
                    .cloned()
                    .unwrap_or_default(),
            )
            .or(caps.n_ctx);
            caps.tokenizer = http
                .try_once("POST", "/tokenize", Some(&json!({"content": "Hello"})))
                .is_ok();
            // n_probs has no cap: the softmax is over the whole vocabulary anyway.
            caps.top_logprobs = caps.n_vocab.or(Some(u32::MAX));
        }
        ServerKind::Vllm | ServerKind::Other => {
            if let Ok(v) = http.try_once("GET", "/version", None) {
                caps.build = v["version"].as_str().map(str::to_string);
            }
            let tokens = http
                .try_once(
                    "POST",
                    "/tokenize",
                    Some(&json!({"model": model, "prompt": "Hello", "add_special_tokens": true})),
                )
                .ok()
                .and_then(|v| v["tokens"].as_array().cloned());
            caps.tokenizer = tokens.is_some();
            if let Some(tokens) = tokens {
                let ids: Vec<i64> = tokens.iter().filter_map(Value::as_i64).collect();
                let try_completion = |extra: Value| {
                    let mut body =
                        json!({"model": model, "prompt": ids, "max_tokens": 1, "temperature": 0.0});
                    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
                        b.extend(e.clone());
                    }
                    http.try_once("POST", "/v1/completions", Some(&body))
                };
                caps.prompt_logprobs =
                    try_completion(json!({"prompt_logprobs": 1})).is_ok_and(|r| {
                        r.pointer("/choices/0/prompt_logprobs")
                            .is_some_and(Value::is_array)
                    });
                // vLLM's default --max-logprobs is 20; ask for that, then for 5.
                for k in [20u32, 5] {
                    let ok =
                        try_completion(json!({"logprobs": k, "return_tokens_as_token_ids": true}))
                            .is_ok_and(|r| {
                                r.pointer("/choices/0/logprobs/top_logprobs/0").is_some()
                            });
                    if ok {
                        caps.top_logprobs = Some(k);
                        break;
                    }
                }
            }
        }
    }
    Ok(caps)
}
