//! The llama-bench equivalent: prompt processing and generation tokens/s over repetitions
//! after a discarded warm-up, with time to first token and model load time, timed around
//! llama.cpp's decode calls. Called inside a worker process (so peak RSS is the model's own).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use frontier_core::stats::{mean, stddev};
use frontier_engine::bench::{SpeedConfig, SpeedMeasurement, SpeedTest};
use frontier_engine::Token;

use crate::context::Logits;
use crate::model::LoadedModel;

/// A deterministic stream of token ids (llama-bench feeds random tokens too).
struct TokenStream {
    state: u64,
    n_vocab: u64,
}

impl TokenStream {
    fn next(&mut self) -> Token {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.n_vocab) as Token
    }
}

/// Loads the model and measures it. Called in the worker process.
pub fn measure(path: &Path, config: &SpeedConfig) -> Result<SpeedMeasurement> {
    if config.reps == 0 {
        bail!("repetitions must be at least 1");
    }
    if config.n_prompt == 0 && config.n_gen == 0 {
        bail!("nothing to measure: both -p and -n are 0");
    }
    let model = LoadedModel::load(path, &config.model)?;
    let mut ctx_opts = config.context.clone();
    if ctx_opts.n_ctx == 0 {
        ctx_opts.n_ctx = (config.n_prompt + config.n_gen).max(1);
    }
    let mut engine = model.new_engine(&ctx_opts)?;
    let mut stream = TokenStream {
        state: 0x9E37_79B9_7F4A_7C15,
        n_vocab: engine.n_vocab().max(1) as u64,
    };
    let bos = engine.bos();
    let prompt = |n: u32, stream: &mut TokenStream| -> Vec<Token> {
        (0..n)
            .map(|i| match (i, bos) {
                (0, Some(b)) => b,
                _ => stream.next(),
            })
            .collect()
    };

    let mut tests = Vec::new();
    let mut ttft = Vec::new();
    if config.n_prompt > 0 {
        // Warm-up, discarded.
        let warm = prompt(config.n_prompt, &mut stream);
        engine.clear();
        engine.decode(&warm, 0, 0, Logits::Last)?;
        let mut samples = Vec::new();
        for _ in 0..config.reps {
            let tokens = prompt(config.n_prompt, &mut stream);
            engine.clear();
            let start = Instant::now();
            engine.decode(&tokens, 0, 0, Logits::Last)?;
            engine.synchronize();
            let pp = start.elapsed();
            // The first token is the greedy choice from the prompt's last logits.
            let _first = engine.argmax(0)?;
            ttft.push(start.elapsed().as_secs_f64() * 1e3);
            samples.push(pp.as_nanos() as u64);
        }
        tests.push(summarize(
            format!("pp{}", config.n_prompt),
            config.n_prompt,
            0,
            config.n_prompt,
            samples,
        ));
    }
    if config.n_gen > 0 {
        let first = bos.unwrap_or_else(|| stream.next());
        // Warm-up: one token, as llama-bench.
        engine.clear();
        engine.decode(&[first], 0, 0, Logits::Last)?;
        let mut samples = Vec::new();
        for _ in 0..config.reps {
            engine.clear();
            let mut token = first;
            let start = Instant::now();
            for pos in 0..config.n_gen {
                engine.decode(&[token], pos as i32, 0, Logits::Last)?;
                engine.synchronize();
                token = stream.next();
            }
            samples.push(start.elapsed().as_nanos() as u64);
        }
        tests.push(summarize(
            format!("tg{}", config.n_gen),
            0,
            config.n_gen,
            config.n_gen,
            samples,
        ));
    }

    let opts = engine.options().clone();
    let memory = engine.memory().clone();
    Ok(SpeedMeasurement {
        load_ms: model.load_time.as_secs_f64() * 1e3,
        ttft_ms: mean(&ttft),
        ttft_sd_ms: stddev(&ttft),
        n_ctx: opts.n_ctx,
        n_batch: opts.n_batch,
        n_ubatch: opts.n_ubatch,
        threads: opts.threads,
        n_params: model.n_params(),
        model_bytes: model.size(),
        kv_cache_bytes: memory.kv_bytes,
        compute_buffer_bytes: memory.compute_bytes,
        tests,
    })
}

fn summarize(
    name: String,
    n_prompt: u32,
    n_gen: u32,
    n_tokens: u32,
    samples_ns: Vec<u64>,
) -> SpeedTest {
    let ts: Vec<f64> = samples_ns
        .iter()
        .map(|&ns| n_tokens as f64 / (ns as f64 / 1e9))
        .collect();
    SpeedTest {
        name,
        n_prompt,
        n_gen,
        avg_ts: mean(&ts),
        stddev_ts: stddev(&ts),
        samples_ts: ts,
        samples_ns,
    }
}
