//! The worker's half of an evaluation: turn work units (text) into token requests the way
//! lm-evaluation-harness tokenizes them, run them through an engine in batches, and hand
//! back one response per unit as soon as it is ready.

use std::sync::Arc;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::tasks::{Response, Work};
use frontier_engine::{Engine, GenRequest, ScoreRequest, Token, Tokenizer};

/// One item's work, keyed so the parent can match the answer to the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkUnit {
    pub key: String,
    /// Units of one group (a task) are batched together, never with another group's, so
    /// each task's time is its own.
    pub group: String,
    pub work: Work,
    /// The start of the prompt shared with the neighbouring units (evaluated once).
    #[serde(default)]
    pub prefix: Option<String>,
}

/// A unit ready for the engine: its tokens and the shared prefix's.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub key: String,
    pub group: String,
    pub prefix: Option<Arc<[Token]>>,
    pub tokens: Tokenized,
}

impl Prepared {
    /// KV cells of its own (beyond the shared prefix) one sequence of this unit needs.
    pub fn own_cells(&self) -> usize {
        let shared = match (&self.prefix, &self.tokens) {
            (Some(p), Tokenized::Choices { requests }) => requests
                .iter()
                .map(|r| frontier_engine::common_prefix(&r.context, p))
                .min()
                .unwrap_or(0),
            (Some(p), Tokenized::Generate { request }) => {
                frontier_engine::common_prefix(&request.prompt, p)
            }
            (None, _) => 0,
        };
        self.tokens.cells_needed().saturating_sub(shared)
    }

    fn same_batch(&self, other: &Prepared) -> bool {
        let same_prefix = match (&self.prefix, &other.prefix) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        self.group == other.group && same_prefix
    }
}

/// The engine's answer for one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkResult {
    pub key: String,
    pub response: Response,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    pub time_ms: f64,
}

/// A unit after tokenization.
#[derive(Debug, Clone, PartialEq)]
pub enum Tokenized {
    Choices { requests: Vec<ScoreRequest> },
    Generate { request: GenRequest },
}

impl Tokenized {
    /// KV cells one sequence of this unit needs at most.
    pub fn cells_needed(&self) -> usize {
        match self {
            Tokenized::Choices { requests } => requests
                .iter()
                .map(|r| r.context.len() + r.continuation.len())
                .max()
                .unwrap_or(0),
            Tokenized::Generate { request } => request.prompt.len() + request.max_tokens,
        }
    }

    /// Whether the unit generates text (rather than scoring continuations).
    pub fn generates(&self) -> bool {
        matches!(self, Tokenized::Generate { .. })
    }
}

/// lm-eval's `_encode_pair`: trailing whitespace of the context moves to the continuation;
/// the continuation's tokens are those of `context + continuation` after the context's own.
pub fn encode_pair(
    tok: &dyn Tokenizer,
    context: &str,
    continuation: &str,
    add_bos: bool,
) -> Result<(Vec<Token>, Vec<Token>)> {
    let mut requests = score_requests(tok, context, &[continuation], add_bos)?;
    let r = requests.remove(0);
    Ok((r.context.to_vec(), r.continuation))
}

/// `encode_pair` for every continuation of one context: the context (whitespace moved as
/// there) is tokenized once, each `context + continuation` once, and the requests share one
/// copy of the context's tokens (full MMLU holds 14,042 items of ~700 tokens in the worker).
pub fn score_requests(
    tok: &dyn Tokenizer,
    context: &str,
    continuations: &[impl AsRef<str>],
    add_bos: bool,
) -> Result<Vec<ScoreRequest>> {
    let ctx = context.trim_end();
    let moved = &context[ctx.len()..];
    let ctx_tokens: Arc<[Token]> = tok.tokenize(ctx, add_bos)?.into();
    let mut requests = Vec::with_capacity(continuations.len());
    for c in continuations {
        let whole = tok.tokenize(&format!("{ctx}{moved}{}", c.as_ref()), add_bos)?;
        requests.push(ScoreRequest {
            context: ctx_tokens.clone(),
            continuation: whole.get(ctx_tokens.len()..).unwrap_or_default().to_vec(),
        });
    }
    Ok(requests)
}

pub fn tokenize_unit(tok: &dyn Tokenizer, work: &Work, add_bos: bool) -> Result<Tokenized> {
    Ok(match work {
        Work::Choices {
            context,
            continuations,
        } => Tokenized::Choices {
            requests: score_requests(tok, context, continuations, add_bos)?,
        },
        Work::Generate {
            prompt,
            stop,
            max_tokens,
        } => Tokenized::Generate {
            request: GenRequest {
                prompt: tok.tokenize(prompt, add_bos)?,
                max_tokens: *max_tokens,
                stop: stop.clone(),
            },
        },
    })
}

/// Runs prepared units through the engine in order: consecutive multiple-choice units are
/// scored `batch_items` at a time, consecutive generations decode together (continuous
/// batching inside the engine); units sharing a prefix have it evaluated once. `emit` gets
/// each result as it is ready.
pub fn run_units(
    engine: &mut dyn Engine,
    units: &[Prepared],
    batch_items: usize,
    emit: &mut dyn FnMut(WorkResult) -> Result<()>,
) -> Result<()> {
    let mut i = 0;
    while i < units.len() {
        let prefix: &[Token] = units[i].prefix.as_deref().unwrap_or_default();
        match &units[i].tokens {
            Tokenized::Choices { .. } => {
                let mut j = i;
                let mut requests = Vec::new();
                let mut spans = Vec::new();
                while j < units.len()
                    && j - i < batch_items.max(1)
                    && units[j].same_batch(&units[i])
                {
                    let Tokenized::Choices { requests: r } = &units[j].tokens else {
                        break;
                    };
                    spans.push((j, requests.len(), r.len()));
                    requests.extend(r.iter().cloned());
                    j += 1;
                }
                let start = std::time::Instant::now();
                let scored = engine.score_shared(prefix, &requests)?;
                let per_item_ms = start.elapsed().as_secs_f64() * 1e3 / spans.len() as f64;
                for (unit, from, n) in spans {
                    let part = &scored[from..from + n];
                    let prompt_tokens = requests[from].context.len();
                    emit(WorkResult {
                        key: units[unit].key.clone(),
                        response: Response::Choices {
                            logprobs: part.iter().map(|s| s.logprob).collect(),
                            greedy: part.iter().map(|s| s.is_greedy).collect(),
                        },
                        prompt_tokens,
                        output_tokens: 0,
                        time_ms: per_item_ms,
                    })?;
                }
                i = j;
            }
            Tokenized::Generate { .. } => {
                let mut j = i;
                let mut requests = Vec::new();
                while j < units.len() && units[j].same_batch(&units[i]) {
                    let Tokenized::Generate { request } = &units[j].tokens else {
                        break;
                    };
                    requests.push(request.clone());
                    j += 1;
                }
                let base = i;
                engine.generate_shared(prefix, &requests, &mut |k, r| {
                    emit(WorkResult {
                        key: units[base + k].key.clone(),
                        response: Response::Generated {
                            text: r.text,
                            stop_reason: r.stop_reason,
                        },
                        prompt_tokens: r.prompt_tokens,
                        output_tokens: r.generated_tokens,
                        time_ms: r.time_ms,
                    })
                })?;
                i = j;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits on spaces: "a b" → ["a", " b"], ids by a tiny vocabulary.
    struct WordTokenizer;

    impl Tokenizer for WordTokenizer {
        fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
            let mut out = if add_special { vec![0] } else { vec![] };
            let mut word = String::new();
            for c in text.chars() {
                if c == ' ' && !word.is_empty() {
                    out.push(word.len() as Token);
                    word.clear();
                }
                word.push(c);
            }
            if !word.is_empty() {
                out.push(100 + word.len() as Token);
            }
            Ok(out)
        }

        fn detokenize(&self, _: &[Token]) -> Result<String> {
            Ok(String::new())
        }
    }

    #[test]
    fn encode_pair_moves_trailing_space_to_the_continuation() {
        let t = WordTokenizer;
        let (ctx, cont) = encode_pair(&t, "Answer: ", "A", true).unwrap();
        let (ctx2, cont2) = encode_pair(&t, "Answer:", " A", true).unwrap();
        assert_eq!((ctx, cont), (ctx2, cont2));
    }

    #[test]
    fn choices_of_one_item_hold_one_copy_of_the_context() {
        // The trailing space moves into each continuation, as in lm-eval's `_encode_pair`:
        // context "Is it red? Answer:" → BOS, "Is", " it", " red?", " Answer:" (last word);
        // each continuation is what follows those five tokens in "Is it red? Answer: X".
        let work = Work::Choices {
            context: "Is it red? Answer: ".into(),
            continuations: ["A", "Bb"].map(String::from).to_vec(),
        };
        let Tokenized::Choices { requests } = tokenize_unit(&WordTokenizer, &work, true).unwrap()
        else {
            panic!("multiple choice tokenizes to choices");
        };
        let got: Vec<(&[Token], &[Token])> = requests
            .iter()
            .map(|r| (&r.context[..], &r.continuation[..]))
            .collect();
        let context: &[Token] = &[0, 2, 3, 5, 108];
        assert_eq!(got, [(context, &[102][..]), (context, &[103][..])]);
        assert!(Arc::ptr_eq(&requests[0].context, &requests[1].context));
    }
}
