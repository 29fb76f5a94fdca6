//! Why a generation step keeps all its rows (tests on the real test model): within one
//! step a row's logits do not depend on the other rows' tokens, nor on how deep their
//! sequences are (llama.cpp attends every row over the deepest one's cells, masked), but
//! they do depend on how many rows the step has. `cargo test --release -p frontier-llama step_rows -- --nocapture`
//! prints, for each smaller step, which rows came out different from a full step's.

use std::path::PathBuf;

use anyhow::Result;
use frontier_engine::{ContextOptions, FlashAttn, ModelOptions, Token, Tokenizer};
use llama_cpp_2::token::LlamaToken;

use crate::context::{LlamaEngine, Logits};
use crate::model::LoadedModel;

const ROWS: usize = 8;

/// `scripts/test-models`' SmolLM2-135M Q4_K_M, if it is there.
fn test_model() -> Option<PathBuf> {
    let dir = std::env::var_os("FRONTIER_TEST_MODELS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/frontier/test-models"))
        })?;
    let path = dir.join("SmolLM2-135M-Instruct.Q4_K_M.gguf");
    path.is_file().then_some(path)
}

/// The test model loaded, or `None` after saying why the test is skipped.
fn loaded_test_model() -> Option<LoadedModel> {
    let Some(path) = test_model() else {
        eprintln!("skipped: no SmolLM2-135M-Instruct.Q4_K_M.gguf (run scripts/test-models)");
        return None;
    };
    Some(LoadedModel::load(&path, &ModelOptions::default()).unwrap())
}

/// Decodes `tokens[i]` at position `depth[i]` of sequence `i` (slices of one length), all in
/// one step; returns each row's logits and removes the decoded cells again.
fn step(e: &mut LlamaEngine<'_>, tokens: &[Token], depth: &[i32]) -> Result<Vec<Vec<f32>>> {
    e.batch.clear();
    e.logit_rows.clear();
    for (i, (&t, &pos)) in tokens.iter().zip(depth).enumerate() {
        e.batch.add(LlamaToken(t), pos, &[i as i32], true)?;
        e.logit_rows.push(i as i32);
    }
    e.decode_batch()?;
    let logits = (0..tokens.len())
        .map(|i| e.logits(i).map(<[f32]>::to_vec))
        .collect::<Result<Vec<_>>>()?;
    for (i, &pos) in depth.iter().enumerate() {
        e.ctx
            .clear_kv_cache_seq(Some(i as u32), Some(pos as u32), None)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    Ok(logits)
}

/// Rows (of the first `rows.len()`) whose logits differ in any bit from `full`'s.
fn differing(rows: &[Vec<f32>], full: &[Vec<f32>]) -> Vec<usize> {
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    (0..rows.len())
        .filter(|&i| !same(&rows[i], &full[i]))
        .collect()
}

/// An engine with `ROWS` sequences of `cells` KV cells each, in streams of their own, as
/// evaluation makes it on the CPU (flash attention off), and the tokens of a sentence to
/// feed it.
fn engine_and_text(model: &LoadedModel, cells: u32) -> (LlamaEngine<'_>, Vec<Token>) {
    let e = model
        .new_engine(&ContextOptions {
            n_ctx: (ROWS as u32 + 1) * cells,
            n_seq_max: ROWS as u32,
            stream_per_seq: true,
            threads: 2,
            flash_attn: FlashAttn::Auto.for_decoding(true),
            ..ContextOptions::default()
        })
        .unwrap();
    let text = e
        .tokenize(
            "The committee met on Tuesday to review the budget, and after a long discussion \
             about roads, schools and water it agreed to meet again next month.",
            false,
        )
        .unwrap();
    (e, text)
}

#[test]
fn step_rows_other_tokens_never_matter_the_row_count_may() {
    let Some(model) = loaded_test_model() else {
        return;
    };
    let (mut e, text) = engine_and_text(&model, 256);
    let token = |i: usize| text[i % text.len()];
    // Sequence i holds 2 to 4 tokens (decoded alone), then gets one more in each step.
    let mut depth = Vec::new();
    for seq in 0..ROWS {
        let prompt: Vec<Token> = (0..2 + seq % 3).map(|k| token(seq + k)).collect();
        e.decode(&prompt, 0, seq as i32, Logits::None).unwrap();
        depth.push(prompt.len() as i32);
    }
    let next: Vec<Token> = (0..ROWS).map(|seq| token(seq + 7)).collect();
    let full = step(&mut e, &next, &depth).unwrap();

    // The same step again, and with the second half's tokens changed: the first half's
    // logits stay bit for bit (what makes an item's result its own).
    assert_eq!(
        differing(&step(&mut e, &next, &depth).unwrap(), &full),
        Vec::<usize>::new()
    );
    let mut other = next.clone();
    other[ROWS / 2..].fill(token(3));
    let changed = step(&mut e, &other, &depth).unwrap();
    assert_eq!(differing(&changed[..ROWS / 2], &full), Vec::<usize>::new());

    for r in 1..ROWS {
        let part = step(&mut e, &next[..r], &depth[..r]).unwrap();
        let largest = (0..r)
            .flat_map(|i| part[i].iter().zip(&full[i]).map(|(a, b)| (a - b).abs()))
            .fold(0f32, f32::max);
        eprintln!(
            "step of {r} rows: rows whose logits differ from a step of {ROWS}: {:?} (by up to {largest:.2})",
            differing(&part, &full)
        );
    }
}

/// A generation batch attends over as many cells as its deepest sequence holds (the rest
/// masked), so this is what lets an item's result ignore how long its neighbours' prompts
/// and outputs are: sequence 0's row of a 4-row step, with the other three sequences 1 to
/// 900 cells deep (past one and two of llama.cpp's 256-cell steps of attended depth).
#[test]
fn step_rows_other_sequences_depth_never_matters() {
    let Some(model) = loaded_test_model() else {
        return;
    };
    let (mut e, text) = engine_and_text(&model, 1024);
    let token = |i: usize| text[i % text.len()];
    for depth in [40usize, 300] {
        let mut rows = Vec::new();
        for others in [[1, 1, 1], [600, 1, 1], [1, 20, 900]] {
            for seq in 0..4 {
                e.clear_seq(seq).unwrap();
            }
            let mut depths = vec![depth];
            depths.extend(others);
            for (seq, &d) in depths.iter().enumerate() {
                let prompt: Vec<Token> = (0..d).map(|i| token(i + 5 * seq)).collect();
                e.decode(&prompt, 0, seq as i32, Logits::None).unwrap();
            }
            let next: Vec<Token> = (0..4).map(|k| token(depth + k)).collect();
            let at: Vec<i32> = depths.iter().map(|&d| d as i32).collect();
            rows.push(step(&mut e, &next, &at).unwrap().swap_remove(0));
        }
        for (others, row) in [[600, 1, 1], [1, 20, 900]].iter().zip(&rows[1..]) {
            assert_eq!(
                differing(std::slice::from_ref(row), &rows[..1]),
                Vec::<usize>::new(),
                "a row {depth} deep: the others at {others:?} changed its logits"
            );
        }
    }
}
