//! What a server's speed honestly is from outside: for `concurrency` requests sent at once,
//! each with an `n_prompt`-token prompt and `n_gen` generated tokens, the time to first token
//! (llama-server's own prompt time; else the request's wall time with one token asked) and
//! the generated tokens per second, per request and all together.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use frontier_engine::Token;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::Http;
use crate::probe::{probe_with, Capabilities, ServerKind};
use crate::server::Server;
use crate::spec::RemoteSpec;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteSpeed {
    pub server: String,
    pub model: String,
    pub build: Option<String>,
    pub concurrency: u32,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub reps: u32,
    /// Mean and sd over every request of every repetition.
    pub ttft_ms: f64,
    pub ttft_sd_ms: f64,
    /// Generated tokens per second of one request (its own generation time).
    pub tg_ts_per_request: f64,
    /// Generated tokens of all requests over the wall time of the round.
    pub tg_ts_total: f64,
    /// Where TTFT comes from.
    pub ttft_source: String,
}

/// Measures each concurrency in turn, `reps` rounds each after one warm-up round.
pub fn measure(
    spec: &RemoteSpec,
    n_prompt: u32,
    n_gen: u32,
    concurrency: &[u32],
    reps: u32,
) -> Result<(Capabilities, Vec<RemoteSpeed>)> {
    let http = Http::new(spec)?;
    let caps = probe_with(&http, spec)?;
    caps.check_usable()?;
    let server = Arc::new(Server {
        http,
        caps: caps.clone(),
    });
    let prompt = prompt_tokens(&server, n_prompt as usize)?;
    let mut rows = Vec::new();
    for &c in concurrency {
        let mut ttft = Vec::new();
        let (mut per_request, mut total) = (Vec::new(), Vec::new());
        for rep in 0..=reps {
            let start = Instant::now();
            let results: Vec<Result<(f64, f64, u64)>> = std::thread::scope(|scope| {
                let jobs: Vec<_> = (0..c.max(1))
                    .map(|_| scope.spawn(|| one_request(&server, &prompt, n_gen)))
                    .collect();
                jobs.into_iter()
                    .map(|j| {
                        j.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("request thread panicked")))
                    })
                    .collect()
            });
            let wall = start.elapsed().as_secs_f64();
            let results: Vec<(f64, f64, u64)> = results.into_iter().collect::<Result<_>>()?;
            if rep == 0 {
                continue; // warm-up
            }
            let generated: u64 = results.iter().map(|r| r.2).sum();
            total.push(generated as f64 / wall);
            for (t, gen_ms, n) in results {
                ttft.push(t);
                if gen_ms > 0.0 {
                    per_request.push(n as f64 / (gen_ms / 1e3));
                }
            }
        }
        let (ttft_ms, ttft_sd_ms) = mean_sd(&ttft);
        rows.push(RemoteSpeed {
            server: caps.url.clone(),
            model: caps.model.clone(),
            build: caps.build.clone(),
            concurrency: c,
            n_prompt,
            n_gen,
            reps,
            ttft_ms,
            ttft_sd_ms,
            tg_ts_per_request: mean_sd(&per_request).0,
            tg_ts_total: mean_sd(&total).0,
            ttft_source: match caps.kind {
                ServerKind::LlamaServer => "server prompt time".into(),
                _ => "wall time of a 1-token request".into(),
            },
        });
    }
    Ok((caps, rows))
}

/// (TTFT ms, generation ms, generated tokens) of one request.
fn one_request(server: &Server, prompt: &[Token], n_gen: u32) -> Result<(f64, f64, u64)> {
    match server.caps.kind {
        ServerKind::LlamaServer => {
            let v = server.http.post(
                "/completion",
                &json!({
                    "prompt": prompt, "n_predict": n_gen, "temperature": 0.0,
                    "cache_prompt": false, "ignore_eos": true,
                }),
            )?;
            let t = &v["timings"];
            Ok((
                t["prompt_ms"].as_f64().unwrap_or(0.0),
                t["predicted_ms"].as_f64().unwrap_or(0.0),
                t["predicted_n"].as_u64().unwrap_or(0),
            ))
        }
        _ => {
            let start = Instant::now();
            server.complete(prompt, 1, &[])?;
            let ttft = start.elapsed().as_secs_f64() * 1e3;
            let start = Instant::now();
            let c = server.complete(prompt, n_gen as usize, &[])?;
            let ms = start.elapsed().as_secs_f64() * 1e3 - ttft;
            Ok((ttft, ms.max(0.0), c.generated_tokens as u64))
        }
    }
}

/// `n` tokens of ordinary text in the server's vocabulary.
fn prompt_tokens(server: &Server, n: usize) -> Result<Vec<Token>> {
    let text = "The quick brown fox jumps over the lazy dog while the river runs to the sea. ";
    let mut tokens = server.tokenize(&text.repeat(n / 8 + 2), true)?;
    tokens.truncate(n.max(1));
    Ok(tokens)
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len().max(2) - 1) as f64;
    (mean, var.sqrt())
}
