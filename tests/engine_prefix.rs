//! Prefix sharing feeds the model exactly the token ids of the one-prompt path: every
//! sequence evaluated (the shared prefix's cells copied in, plus what is decoded after
//! them) equals the whole prompt's own tokenization, and the scores agree with whole
//! evaluation within llama.cpp's batch-shape noise.

mod common;

use std::collections::HashMap;

use common::{model, SMOLLM_Q4_K_M};
use frontier::datasets::Source;
use frontier::eval::infer::score_requests;
use frontier::tasks::{build_plan, TaskName, TaskOptions, Work};
use frontier_engine::{ContextOptions, Engine, ModelOptions, Token, Tokenizer};
use frontier_llama::{Fed, LoadedModel};

/// The token lists each working sequence held when it was evaluated, rebuilt from the trace.
fn sequences(trace: &[Fed], prefix_seq: i32) -> Vec<Vec<Token>> {
    let mut cells: HashMap<i32, Vec<Option<Token>>> = HashMap::new();
    let mut done = Vec::new();
    let mut finish = |seq: i32, cells: &mut HashMap<i32, Vec<Option<Token>>>| {
        if seq != prefix_seq {
            if let Some(c) = cells.remove(&seq).filter(|c| !c.is_empty()) {
                done.push(
                    c.into_iter()
                        .map(|t| t.expect("a hole in a sequence"))
                        .collect(),
                );
            }
        }
    };
    for f in trace {
        match *f {
            Fed::Token { seq, pos, token } => {
                let c = cells.entry(seq).or_default();
                if c.len() <= pos as usize {
                    c.resize(pos as usize + 1, None);
                }
                c[pos as usize] = Some(token);
            }
            Fed::Copy { seq, n } => {
                let p: Vec<Option<Token>> = cells
                    .get(&prefix_seq)
                    .map(|c| c[..n].to_vec())
                    .unwrap_or_default();
                cells.insert(seq, p);
            }
            Fed::Clear { seq } => finish(seq, &mut cells),
            Fed::Move { from, to } => {
                let c = cells.remove(&from).unwrap_or_default();
                cells.insert(to, c);
            }
            Fed::Truncate { seq, keep } => {
                if let Some(c) = cells.get_mut(&seq) {
                    c.truncate(keep);
                }
            }
        }
    }
    let rest: Vec<i32> = cells.keys().copied().collect();
    for seq in rest {
        finish(seq, &mut cells);
    }
    done.sort();
    done
}

#[test]
fn shared_prefix_feeds_the_whole_prompts_tokens_and_agrees_in_scores() {
    let m = LoadedModel::load(&model(SMOLLM_Q4_K_M), &ModelOptions::default()).unwrap();
    let opts = TaskOptions {
        subjects: Some(vec!["anatomy".into()]),
        limit: Some(6),
        ..TaskOptions::default()
    };
    let plan = build_plan(TaskName::Mmlu, &opts, &Source::Embedded).unwrap();
    let prefix_text = plan.items[0]
        .shared_prefix
        .clone()
        .expect("MMLU items share their few-shot head");
    let add_bos = m.adds_bos();
    let prefix = m.tokenize(&prefix_text, add_bos).unwrap();
    let mut requests = Vec::new();
    for item in &plan.items {
        let Work::Choices {
            context,
            continuations,
        } = &item.work
        else {
            panic!()
        };
        requests.extend(score_requests(&m, context, continuations, add_bos).unwrap());
    }
    let mut expected: Vec<Vec<Token>> = requests
        .iter()
        .step_by(4)
        .map(|r| r.context.to_vec())
        .collect();
    expected.sort();

    let opts = |n_seq, stream_per_seq| ContextOptions {
        n_ctx: 4096,
        n_seq_max: n_seq,
        threads: 2,
        stream_per_seq,
        ..ContextOptions::default()
    };
    // One KV stream tagged to many sequences, and a stream per sequence with copies.
    let mut a = Vec::new();
    for stream_per_seq in [false, true] {
        let mut shared = m.new_engine(&opts(3, stream_per_seq)).unwrap();
        shared.set_trace(true);
        a = shared.score_shared(&prefix, &requests).unwrap();
        assert_eq!(
            sequences(shared.trace(), 3),
            expected,
            "shared path, stream per sequence: {stream_per_seq}"
        );
        assert!(shared.stats().reused_tokens > 0);
    }

    let mut whole = m.new_engine(&opts(1, false)).unwrap();
    whole.set_trace(true);
    let b = whole.score(&requests).unwrap();
    assert_eq!(
        sequences(whole.trace(), 1),
        expected,
        "one prompt at a time"
    );

    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x.logprob - y.logprob).abs())
        .fold(0.0, f64::max);
    assert!(
        max_diff < 0.5,
        "log-probabilities differ by up to {max_diff} nats"
    );
}
