//! Scoring and generation as requests to the server, `n_seq_max` of them in flight (the
//! server batches them). Each finished generation is handed back at once, so the caller
//! stores it before the others end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Result};
use frontier_engine::{
    ContextOptions, Engine, EngineStats, GenRequest, GenResult, ScoreRequest, ScoreResult, Token,
    Tokenizer,
};

use crate::server::Server;

/// Next-token log-probabilities asked for first; more only when a wanted token is not
/// among them.
const FIRST_TOP_K: u32 = 64;

pub struct RemoteEngine {
    server: Arc<Server>,
    options: ContextOptions,
    stats: Mutex<EngineStats>,
    /// The server's retry count when this engine was made.
    retries_before: u64,
}

impl RemoteEngine {
    pub fn new(
        server: Arc<Server>,
        options: &ContextOptions,
        per_request_ctx: u32,
    ) -> RemoteEngine {
        let mut options = options.clone();
        options.n_seq_max = options.n_seq_max.max(1);
        // One request's context is the server's; shown per sequence like a local context.
        options.stream_per_seq = true;
        options.n_ctx = per_request_ctx * options.n_seq_max;
        RemoteEngine {
            retries_before: server.http.retries(),
            server,
            options,
            stats: Mutex::default(),
        }
    }

    fn in_flight(&self) -> usize {
        self.options.n_seq_max as usize
    }

    fn add_prompt(&self, tokens: usize, ms: f64) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.prompt_tokens += tokens as u64;
        s.prompt_ms += ms;
    }

    /// Log-probabilities of every continuation token from the next-token top-k after each
    /// distinct prompt (llama-server: exact over the whole vocabulary).
    fn score_by_next_token(&self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        // (request, position) → the prompt before that token.
        let mut prompts: Vec<Vec<Token>> = Vec::new();
        let mut index: HashMap<Vec<Token>, usize> = HashMap::new();
        let mut wanted: Vec<Vec<(usize, Token)>> = Vec::new();
        for r in requests {
            let mut per_token = Vec::new();
            for (i, &tok) in r.continuation.iter().enumerate() {
                let mut prompt = r.context.to_vec();
                prompt.extend_from_slice(&r.continuation[..i]);
                let p = *index.entry(prompt.clone()).or_insert_with(|| {
                    prompts.push(prompt);
                    prompts.len() - 1
                });
                per_token.push((p, tok));
            }
            wanted.push(per_token);
        }
        let most = self.server.caps.top_logprobs.unwrap_or(0);
        let mut k = FIRST_TOP_K.min(most);
        let mut tops = parallel_map(&prompts, self.in_flight(), |p| {
            let start = Instant::now();
            let top = self.server.next_token_logprobs(p, k)?;
            self.add_prompt(p.len(), start.elapsed().as_secs_f64() * 1e3);
            Ok(top)
        })?;
        // A wanted token outside the first top-k: ask those prompts for the most there is.
        let missing: Vec<usize> = (0..prompts.len())
            .filter(|&p| {
                wanted
                    .iter()
                    .flatten()
                    .any(|&(q, t)| q == p && !tops[p].iter().any(|&(id, _)| id == t))
            })
            .collect();
        if !missing.is_empty() && most > k {
            k = most.min(self.server.caps.n_vocab.unwrap_or(most));
            let again: Vec<&Vec<Token>> = missing.iter().map(|&p| &prompts[p]).collect();
            let more = parallel_map(&again, self.in_flight(), |p| {
                self.server.next_token_logprobs(p, k)
            })?;
            for (p, top) in missing.into_iter().zip(more) {
                tops[p] = top;
            }
        }
        wanted
            .iter()
            .map(|per_token| {
                let mut token_logprobs = Vec::new();
                let mut is_greedy = true;
                for &(p, tok) in per_token {
                    let top = &tops[p];
                    let lp = top
                        .iter()
                        .find(|&&(id, _)| id == tok)
                        .map(|&(_, lp)| lp)
                        .ok_or_else(|| {
                            anyhow!(
                            "token {tok} is not among the server's {} most likely next tokens: \
                             its log-probability is unknown (the server caps top-k at {k})",
                            top.len()
                        )
                        })?;
                    is_greedy &= top.first().is_some_and(|&(id, _)| id == tok);
                    token_logprobs.push(lp);
                }
                Ok(ScoreResult {
                    logprob: token_logprobs.iter().sum(),
                    token_logprobs,
                    is_greedy,
                })
            })
            .collect()
    }

    /// Log-probabilities of the continuation as the prompt's own tokens (vLLM).
    fn score_by_prompt(&self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        parallel_map(requests, self.in_flight(), |r| {
            let mut prompt = r.context.to_vec();
            prompt.extend_from_slice(&r.continuation);
            let start = Instant::now();
            let lps = self.server.prompt_logprobs(&prompt, r.context.len())?;
            self.add_prompt(prompt.len(), start.elapsed().as_secs_f64() * 1e3);
            let token_logprobs: Vec<f64> = lps.iter().map(|l| l.logprob).collect();
            Ok(ScoreResult {
                logprob: token_logprobs.iter().sum(),
                token_logprobs,
                is_greedy: lps.iter().all(|l| l.is_top),
            })
        })
    }
}

impl Tokenizer for RemoteEngine {
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.server.tokenize(text, add_special)
    }

    fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        self.server.detokenize(tokens)
    }
}

impl Engine for RemoteEngine {
    fn options(&self) -> &ContextOptions {
        &self.options
    }

    fn stats(&self) -> EngineStats {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        stats.retried_requests = self.server.http.retries() - self.retries_before;
        stats
    }

    /// The server evaluates each prompt whole (prompt caching off), so `prefix` is not used:
    /// every item's log-probabilities are those of its prompt alone.
    fn score_shared(
        &mut self,
        _prefix: &[Token],
        requests: &[ScoreRequest],
    ) -> Result<Vec<ScoreResult>> {
        if let Some(problem) = self.server.caps.scoring_problem() {
            return Err(frontier_core::bad_input(problem));
        }
        if self.server.caps.prompt_logprobs {
            self.score_by_prompt(requests)
        } else {
            self.score_by_next_token(requests)
        }
    }

    fn generate_shared(
        &mut self,
        _prefix: &[Token],
        requests: &[GenRequest],
        on_done: &mut dyn FnMut(usize, GenResult) -> Result<()>,
    ) -> Result<()> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel::<(usize, Result<GenResult>)>();
        let workers = self.in_flight().min(requests.len());
        let server = &self.server;
        let stats = &self.stats;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop) = (&next, &stop);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = &requests[i];
                    let result = server.complete(&r.prompt, r.max_tokens, &r.stop).map(|c| {
                        let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                        s.prompt_tokens += c.prompt_tokens as u64;
                        s.prompt_ms += c.prompt_ms;
                        s.generated_tokens += c.generated_tokens as u64;
                        s.generation_ms += c.generation_ms;
                        GenResult {
                            text: c.text,
                            stop_reason: c.stop_reason,
                            prompt_tokens: c.prompt_tokens,
                            generated_tokens: c.generated_tokens,
                            time_ms: c.prompt_ms + c.generation_ms,
                        }
                    });
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            let mut first_error = None;
            for (i, result) in rx {
                let handled = result.and_then(|r| on_done(i, r));
                if let Err(e) = handled {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

/// `f` over `items` with up to `n` calls in flight, results in order; the first error ends it.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    n: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || failed.load(Ordering::Relaxed) {
                    break;
                }
                let r = f(&items[i]);
                failed.fetch_or(r.is_err(), Ordering::Relaxed);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    if results.iter().all(Option::is_some) {
        return results.into_iter().flatten().collect();
    }
    // Stopped early: the error that stopped it.
    Err(results
        .into_iter()
        .flatten()
        .find_map(Result::err)
        .unwrap_or_else(|| anyhow!("a request was not run")))
}
