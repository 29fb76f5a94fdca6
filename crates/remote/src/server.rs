//! The requests themselves, in each server's dialect: tokenize and detokenize, the
//! next-token log-probabilities after a prompt, the log-probabilities of a prompt's own
//! tokens, and one greedy completion. Every prompt is sent as token ids, so the server sees
//! exactly the tokens the local engine would; prompt caching is off, so a result does not
//! depend on which request ran before it.

use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use frontier_engine::{StopReason, Token};
use serde_json::{json, Value};

use crate::http::Http;
use crate::probe::{Capabilities, ServerKind};

/// The seed sent with every generation (greedy decoding does not use it; some servers
/// want one to be deterministic anyway).
const SEED: u64 = 0;

pub struct Server {
    pub http: Http,
    pub caps: Capabilities,
}

/// One greedy completion as the server reports it.
pub struct Completion {
    pub text: String,
    pub stop_reason: StopReason,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// The server's own timings where it reports them (llama-server), else the wall time.
    pub prompt_ms: f64,
    pub generation_ms: f64,
}

/// The log-probability of one prompt token and whether it was the most likely one.
pub struct PromptTokenLogprob {
    pub logprob: f64,
    pub is_top: bool,
}

impl Server {
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        let v = match self.caps.kind {
            ServerKind::LlamaServer => self.http.post(
                "/tokenize",
                &json!({"content": text, "add_special": add_special, "parse_special": true}),
            )?,
            _ => self.http.post(
                "/tokenize",
                &json!({"model": self.caps.model, "prompt": text, "add_special_tokens": add_special}),
            )?,
        };
        ids(&v["tokens"]).ok_or_else(|| anyhow!("/tokenize returned no token list: {v}"))
    }

    pub fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        let v = self.http.post(
            "/detokenize",
            &json!({"model": self.caps.model, "tokens": tokens}),
        )?;
        v["content"]
            .as_str()
            .or_else(|| v["prompt"].as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("/detokenize returned no text: {v}"))
    }

    /// The `k` most likely next tokens after `prompt` with their log-probabilities (over the
    /// whole vocabulary, before any sampling), most likely first.
    pub fn next_token_logprobs(&self, prompt: &[Token], k: u32) -> Result<Vec<(Token, f64)>> {
        match self.caps.kind {
            ServerKind::LlamaServer => {
                let v = self.http.post(
                    "/completion",
                    &json!({
                        "prompt": prompt, "n_predict": 1, "n_probs": k, "temperature": 0.0,
                        "cache_prompt": false, "post_sampling_probs": false, "seed": SEED,
                    }),
                )?;
                let top = v
                    .pointer("/completion_probabilities/0/top_logprobs")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        anyhow!(
                            "the server returned no probabilities for the next token \
                             (its greedy token may be a partial UTF-8 byte)"
                        )
                    })?;
                top.iter()
                    .map(|e| {
                        Ok((
                            e["id"]
                                .as_i64()
                                .ok_or_else(|| anyhow!("top_logprobs entry without id: {e}"))?
                                as Token,
                            e["logprob"].as_f64().ok_or_else(|| {
                                anyhow!("top_logprobs entry without logprob: {e}")
                            })?,
                        ))
                    })
                    .collect()
            }
            _ => {
                let v = self.http.post(
                    "/v1/completions",
                    &json!({
                        "model": self.caps.model, "prompt": prompt, "max_tokens": 1,
                        "temperature": 0.0, "logprobs": k, "return_tokens_as_token_ids": true,
                        "seed": SEED,
                    }),
                )?;
                let top = v
                    .pointer("/choices/0/logprobs/top_logprobs/0")
                    .and_then(Value::as_object)
                    .ok_or_else(|| anyhow!("the server returned no top_logprobs"))?;
                let mut out: Vec<(Token, f64)> = top
                    .iter()
                    .map(|(key, lp)| {
                        let id = key
                            .strip_prefix("token_id:")
                            .and_then(|s| s.parse::<Token>().ok())
                            .ok_or_else(|| anyhow!("top_logprobs key '{key}' is not token_id:N (return_tokens_as_token_ids unsupported)"))?;
                        Ok((id, lp.as_f64().unwrap_or(f64::NEG_INFINITY)))
                    })
                    .collect::<Result<_>>()?;
                out.sort_by(|a, b| b.1.total_cmp(&a.1));
                Ok(out)
            }
        }
    }

    /// The log-probability of each token of `prompt` after `from` given the ones before it
    /// (vLLM's `prompt_logprobs`).
    pub fn prompt_logprobs(
        &self,
        prompt: &[Token],
        from: usize,
    ) -> Result<Vec<PromptTokenLogprob>> {
        let v = self.http.post(
            "/v1/completions",
            &json!({
                "model": self.caps.model, "prompt": prompt, "max_tokens": 1,
                "temperature": 0.0, "prompt_logprobs": 1, "seed": SEED,
            }),
        )?;
        let list = v
            .pointer("/choices/0/prompt_logprobs")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("the server returned no prompt_logprobs"))?;
        if list.len() != prompt.len() {
            bail!(
                "prompt_logprobs has {} positions for a prompt of {} tokens",
                list.len(),
                prompt.len()
            );
        }
        (from.max(1)..prompt.len())
            .map(|i| {
                let entry = list[i].get(prompt[i].to_string()).ok_or_else(|| {
                    anyhow!(
                        "prompt_logprobs[{i}] lacks the prompt's own token {}",
                        prompt[i]
                    )
                })?;
                Ok(PromptTokenLogprob {
                    logprob: entry["logprob"].as_f64().unwrap_or(f64::NEG_INFINITY),
                    is_top: entry["rank"].as_u64() == Some(1),
                })
            })
            .collect()
    }

    /// One greedy completion of `prompt`, ending at a stop string, end of generation or
    /// `max_tokens`.
    pub fn complete(
        &self,
        prompt: &[Token],
        max_tokens: usize,
        stop: &[String],
    ) -> Result<Completion> {
        let start = Instant::now();
        match self.caps.kind {
            ServerKind::LlamaServer => {
                let v = self.http.post(
                    "/completion",
                    &json!({
                        "prompt": prompt, "n_predict": max_tokens, "temperature": 0.0, "top_k": 1,
                        "seed": SEED, "stop": stop, "cache_prompt": false,
                    }),
                )?;
                let generated = v["tokens_predicted"].as_u64().unwrap_or(0) as usize;
                let stop_reason = match v["stop_type"].as_str().unwrap_or("") {
                    "eos" => StopReason::EndOfGeneration,
                    "word" => StopReason::StopString,
                    "limit" if generated < max_tokens => StopReason::ContextFull,
                    "limit" => StopReason::Length,
                    other => bail!("unknown stop_type '{other}' from the server"),
                };
                let t = &v["timings"];
                Ok(Completion {
                    text: v["content"].as_str().unwrap_or("").to_string(),
                    stop_reason,
                    prompt_tokens: v["tokens_evaluated"]
                        .as_u64()
                        .unwrap_or(prompt.len() as u64) as usize,
                    generated_tokens: generated,
                    prompt_ms: t["prompt_ms"].as_f64().unwrap_or(0.0),
                    generation_ms: t["predicted_ms"]
                        .as_f64()
                        .unwrap_or_else(|| start.elapsed().as_secs_f64() * 1e3),
                })
            }
            _ => {
                let v = self.http.post(
                    "/v1/completions",
                    &json!({
                        "model": self.caps.model, "prompt": prompt, "max_tokens": max_tokens,
                        "temperature": 0.0, "seed": SEED, "stop": stop,
                    }),
                )?;
                let choice = &v["choices"][0];
                let generated = v
                    .pointer("/usage/completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0) as usize;
                let stop_reason = match (choice["finish_reason"].as_str(), &choice["stop_reason"]) {
                    (Some("length"), _) => StopReason::Length,
                    (Some("stop"), Value::String(_)) => StopReason::StopString,
                    (Some("stop"), _) => StopReason::EndOfGeneration,
                    (other, _) => bail!("unknown finish_reason {other:?} from the server"),
                };
                Ok(Completion {
                    text: choice["text"].as_str().unwrap_or("").to_string(),
                    stop_reason,
                    prompt_tokens: prompt.len(),
                    generated_tokens: generated,
                    prompt_ms: 0.0,
                    generation_ms: start.elapsed().as_secs_f64() * 1e3,
                })
            }
        }
    }
}

fn ids(v: &Value) -> Option<Vec<Token>> {
    v.as_array()?
        .iter()
        .map(|t| t.as_i64().or_else(|| t["id"].as_i64()).map(|n| n as Token))
        .collect()
}
