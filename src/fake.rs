//! A scripted engine for tests (`--backend fake`, hidden): answers are a deterministic
//! function of each prompt alone, and the model file's own metadata scripts the faults a
//! test needs — a crash (abort, as llama.cpp on a failed assertion) after N answers, a delay
//! per answer (time to kill a run mid-way), memory held from load (to meet a cap), a load
//! failure, and speed figures. With it the sweep, resume, crash, kill -9, OOM-verdict and
//! report tests run through the real binary in seconds, without a model.
//!
//! Script keys (strings or u32 in the GGUF header): `frontier.fake.crash_after`,
//! `frontier.fake.delay_ms`, `frontier.fake.alloc_mib`, `frontier.fake.fail`,
//! `frontier.fake.pp_ts`, `frontier.fake.tg_ts`. Tokens are bytes (+1; 0 is BOS).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use frontier_engine::bench::{SpeedConfig, SpeedMeasurement, SpeedTest};
use frontier_engine::{
    ContextOptions, Engine, EngineStats, GenRequest, GenResult, Model, ScoreRequest, ScoreResult,
    StopMatcher, StopReason, Token, Tokenizer,
};
use frontier_gguf::GgufHeader;

/// What the model file scripts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// Abort the process before the answer after this many items (counted per process).
    pub crash_after: Option<u64>,
    /// Sleep this long per answer.
    pub delay_ms: u64,
    /// Hold (and touch) this much memory from load on.
    pub alloc_mib: u64,
    /// Fail to load with this message.
    pub fail: Option<String>,
    /// What a speed measurement reports.
    pub pp_ts: f64,
    pub tg_ts: f64,
    /// Mixed into every answer's hash: fake models with different salts answer differently.
    pub salt: u64,
}

impl Script {
    pub fn from_header(h: &GgufHeader) -> Script {
        let num = |key: &str| {
            let key = format!("frontier.fake.{key}");
            h.get_u64(&key)
                .or_else(|| h.get_str(&key).and_then(|s| s.parse().ok()))
        };
        Script {
            crash_after: num("crash_after"),
            delay_ms: num("delay_ms").unwrap_or(0),
            alloc_mib: num("alloc_mib").unwrap_or(0),
            fail: h.get_str("frontier.fake.fail").map(str::to_string),
            pp_ts: num("pp_ts").unwrap_or(1000) as f64,
            tg_ts: num("tg_ts").unwrap_or(100) as f64,
            salt: num("salt").unwrap_or(0),
        }
    }
}

/// A "loaded" fake model: its script, and the memory it was told to hold.
pub struct FakeModel {
    script: Script,
    n_ctx_train: u32,
    n_params: u64,
    load_time: Duration,
    _held: Vec<u8>,
}

impl FakeModel {
    pub fn load(path: &Path) -> Result<FakeModel> {
        let start = Instant::now();
        let header = frontier_gguf::read_file(path)?;
        let summary = frontier_gguf::ModelSummary::from_header(&header);
        let script = Script::from_header(&header);
        if let Some(why) = &script.fail {
            bail!(
                "{}: the fake engine could not load it: {why}",
                path.display()
            );
        }
        let held = hold(script.alloc_mib);
        Ok(FakeModel {
            n_ctx_train: summary.context_length.unwrap_or(8192) as u32,
            n_params: summary.parameters,
            script,
            load_time: start.elapsed(),
            _held: held,
        })
    }
}

/// `mib` MiB, every page written, so they count in the process's resident memory.
fn hold(mib: u64) -> Vec<u8> {
    vec![1u8; (mib as usize) << 20]
}

impl Tokenizer for FakeModel {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        let bos = add_special.then_some(0);
        Ok(bos
            .into_iter()
            .chain(text.bytes().map(|b| b as Token + 1))
            .collect())
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        let bytes: Vec<u8> = tokens
            .iter()
            .filter(|&&t| t > 0)
            .map(|&t| (t - 1) as u8)
            .collect();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Model for FakeModel {
    fn adds_bos(&self) -> bool {
        true
    }

    fn n_ctx_train(&self) -> u32 {
        self.n_ctx_train
    }

    fn n_params(&self) -> u64 {
        self.n_params
    }

    fn load_time(&self) -> Duration {
        self.load_time
    }

    fn engine(&self, options: &ContextOptions) -> Result<Box<dyn Engine + '_>> {
        Ok(Box::new(FakeEngine {
            model: self,
            options: options.clone(),
            stats: EngineStats::default(),
        }))
    }
}

/// Answers given by this process, for `crash_after`.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

struct FakeEngine<'m> {
    model: &'m FakeModel,
    options: ContextOptions,
    stats: EngineStats,
}

impl FakeEngine<'_> {
    /// Before each answer: the scripted delay, and the crash when its time has come.
    fn before_answer(&self) {
        let s = &self.model.script;
        if s.crash_after
            .is_some_and(|n| ANSWERED.load(Ordering::SeqCst) >= n)
        {
            eprintln!("GGML_ASSERT failed (the fake engine's scripted crash)");
            std::process::abort();
        }
        if s.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(s.delay_ms));
        }
        ANSWERED.fetch_add(1, Ordering::SeqCst);
    }
}

/// FNV-1a over the salt and token ids: the fake's answers depend on the tokens alone.
fn hash(salt: u64, tokens: &[Token]) -> u64 {
    tokens.iter().fold(0xcbf2_9ce4_8422_2325 ^ salt, |h, &t| {
        (h ^ t as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Tokenizer for FakeEngine<'_> {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.model.tokenize(text, add_special)
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        self.model.detokenize(tokens)
    }
}

impl Engine for FakeEngine<'_> {
    fn options(&self) -> &ContextOptions {
        &self.options
    }

    fn stats(&self) -> EngineStats {
        self.stats.clone()
    }

    fn score_shared(
        &mut self,
        _prefix: &[Token],
        requests: &[ScoreRequest],
    ) -> Result<Vec<ScoreResult>> {
        // One answer per item: the choices of an item share its context.
        for (i, r) in requests.iter().enumerate() {
            if i == 0 || requests[i - 1].context != r.context {
                self.before_answer();
            }
        }
        Ok(requests
            .iter()
            .map(|r| {
                self.stats.prompt_tokens += (r.context.len() + r.continuation.len()) as u64;
                let whole: Vec<Token> = r.context.iter().chain(&r.continuation).copied().collect();
                let logprob = -((hash(self.model.script.salt, &whole) % 1000) as f64) / 100.0;
                ScoreResult {
                    token_logprobs: vec![logprob],
                    logprob,
                    is_greedy: false,
                }
            })
            .collect())
    }

    fn generate_shared(
        &mut self,
        _prefix: &[Token],
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        for (i, r) in requests.iter().enumerate() {
            self.before_answer();
            let n = hash(self.model.script.salt, &r.prompt) % 100;
            let reply = format!(" The answer is {n}.\n#### {n}\n\nQuestion: ...");
            let mut text = StopMatcher::new(&r.stop);
            let mut generated = 0;
            for piece in reply.split_inclusive(' ').take(r.max_tokens) {
                generated += 1;
                if text.push(piece.as_bytes()) {
                    break;
                }
            }
            let stop_reason = if text.stopped() {
                StopReason::StopString
            } else if generated >= r.max_tokens {
                StopReason::Length
            } else {
                StopReason::EndOfGeneration
            };
            self.stats.prompt_tokens += r.prompt.len() as u64;
            self.stats.generated_tokens += generated as u64;
            on_done(
                i,
                GenResult {
                    text: text.finish(),
                    stop_reason,
                    prompt_tokens: r.prompt.len(),
                    generated_tokens: generated,
                    time_ms: self.model.script.delay_ms as f64,
                },
            )?;
        }
        Ok(())
    }
}

/// The speed job on the fake: the scripted rates, as if measured.
pub fn measure_speed(path: &Path, config: &SpeedConfig) -> Result<SpeedMeasurement> {
    let model = FakeModel::load(path)?;
    let s = &model.script;
    let test = |name: String, n_prompt: u32, n_gen: u32, ts: f64| {
        let n = n_prompt.max(n_gen) as f64;
        SpeedTest {
            name,
            n_prompt,
            n_gen,
            n_depth: config.n_depth,
            samples_ns: vec![(n / ts * 1e9) as u64; config.reps as usize],
            samples_ts: vec![ts; config.reps as usize],
            avg_ts: ts,
            stddev_ts: 0.0,
        }
    };
    let mut tests = Vec::new();
    if config.n_prompt > 0 {
        tests.push(test(
            format!("pp{}", config.n_prompt),
            config.n_prompt,
            0,
            s.pp_ts,
        ));
    }
    if config.n_gen > 0 {
        tests.push(test(
            format!("tg{}", config.n_gen),
            0,
            config.n_gen,
            s.tg_ts,
        ));
    }
    std::thread::sleep(Duration::from_millis(s.delay_ms));
    Ok(SpeedMeasurement {
        load_ms: model.load_time.as_secs_f64() * 1e3,
        ttft_ms: config.n_prompt as f64 / s.pp_ts * 1e3,
        ttft_sd_ms: 0.0,
        n_ctx: config.context.n_ctx,
        n_batch: config.context.n_batch,
        n_ubatch: config.context.n_ubatch,
        threads: config.context.threads,
        n_params: model.n_params,
        model_bytes: 0,
        kv_cache_bytes: None,
        compute_buffer_bytes: None,
        tests,
    })
}
