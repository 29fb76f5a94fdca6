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
    let depth = config.n_depth;
    let mut ctx_opts = config.context.clone();
    if ctx_opts.n_ctx == 0 {
        ctx_opts.n_ctx = (depth + config.n_prompt + config.n_gen).max(1);
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

    // Each repetition starts from an empty cache holding `depth` tokens, decoded untimed
    // (llama-bench's -d); the test's tokens follow them.
    let fill = |engine: &mut crate::LlamaEngine<'_>, stream: &mut TokenStream| -> Result<()> {
        engine.clear();
        if depth > 0 {
            let tokens = prompt(depth, stream);
            engine.decode(&tokens, 0, 0, Logits::None)?;
        }
        Ok(())
    };
    let at = depth as i32;
    let mut tests = Vec::new();
    let mut ttft = Vec::new();
    if config.n_prompt > 0 {
        // Warm-up, discarded.
        for _ in 0..config.warmup {
            let warm = prompt(config.n_prompt, &mut stream);
            fill(&mut engine, &mut stream)?;
            engine.decode(&warm, at, 0, Logits::Last)?;
        }
        let mut samples = Vec::new();
        for _ in 0..config.reps {
            let tokens = prompt(config.n_prompt, &mut stream);
            fill(&mut engine, &mut stream)?;
            let start = Instant::now();
            engine.decode(&tokens, at, 0, Logits::Last)?;
            engine.synchronize();
            let pp = start.elapsed();
            // The first token is the greedy choice from the prompt's last logits.
            let _first = engine.argmax(0)?;
            ttft.push(start.elapsed().as_secs_f64() * 1e3);
            samples.push(pp.as_nanos() as u64);
        }
        tests.push(summarize(
            test_name("pp", config.n_prompt, depth),
            config.n_prompt,
            0,
            depth,
            samples,
        ));
    }
    if config.n_gen > 0 {
        let first = bos.unwrap_or_else(|| stream.next());
        // Warm-up: one token, as llama-bench.
        for _ in 0..config.warmup {
            fill(&mut engine, &mut stream)?;
            engine.decode(&[first], at, 0, Logits::Last)?;
        }
        let mut samples = Vec::new();
        for _ in 0..config.reps {
            fill(&mut engine, &mut stream)?;
            let mut token = first;
            let start = Instant::now();
            for pos in 0..config.n_gen {
                engine.decode(&[token], at + pos as i32, 0, Logits::Last)?;
                engine.synchronize();
                token = stream.next();
            }
            samples.push(start.elapsed().as_nanos() as u64);
        }
        tests.push(summarize(
            test_name("tg", config.n_gen, depth),
            0,
            config.n_gen,
            depth,
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

/// llama-bench's test names: `pp512`, `tg128`, `pp82 @ d519`.
fn test_name(kind: &str, n: u32, depth: u32) -> String {
    if depth > 0 {
        format!("{kind}{n} @ d{depth}")
    } else {
        format!("{kind}{n}")
    }
}

/// Tokens/s of each repetition (`n_prompt` or `n_gen` tokens) and their mean ± sd.
fn summarize(
    name: String,
    n_prompt: u32,
    n_gen: u32,
    n_depth: u32,
    samples_ns: Vec<u64>,
) -> SpeedTest {
    let n_tokens = n_prompt.max(n_gen);
    let ts: Vec<f64> = samples_ns
        .iter()
        .map(|&ns| n_tokens as f64 / (ns as f64 / 1e9))
        .collect();
    SpeedTest {
        name,
        n_prompt,
        n_gen,
        n_depth,
        avg_ts: mean(&ts),
        stddev_ts: stddev(&ts),
        samples_ts: ts,
        samples_ns,
    }
}
