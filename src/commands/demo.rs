//! `frontier demo reasoning|code|chat --models A,B`: the same prompts on several models one
//! after another, each answer shown with its speed, so people can compare models by eye.

use std::io::Write;

use anyhow::Result;

use super::interactive::Talker;
use crate::cli::{DemoArgs, DemoKind};
use crate::prompts::Message;
use frontier_engine::Tokenizer;

/// The canned conversations: each is the user turns, asked in order.
fn canned(kind: DemoKind) -> Vec<&'static str> {
    match kind {
        DemoKind::Reasoning => vec![
            "A bakery sells muffins for $3 each and cookies for $2 each. Maria buys 4 muffins and 5 cookies, and pays with a $30 bill. How much change does she get? Think step by step.",
        ],
        DemoKind::Code => vec![
            "Write a Python function `is_palindrome(s: str) -> bool` that ignores case, spaces and punctuation. Include two example calls.",
        ],
        DemoKind::Chat => vec![
            "Hi! I'm planning a weekend trip to Lisbon. What are three things I shouldn't miss?",
            "Which of those is best on a rainy day, and why?",
        ],
    }
}

pub fn run(args: &DemoArgs) -> Result<i32> {
    let turns: Vec<String> = match &args.prompt {
        Some(p) => vec![p.clone()],
        None => canned(args.kind).into_iter().map(str::to_string).collect(),
    };
    // Find and check every model file before loading any.
    let mut paths = Vec::new();
    for m in &args.models {
        let path = crate::sweep::model_file(m, false)?;
        frontier_gguf::read_summary(&path)?;
        paths.push(path);
    }
    let mut out = std::io::stdout();
    for path in &paths {
        let talker = Talker::load(path, &args.interactive)?;
        let mut engine = talker
            .model
            .new_engine(&talker.context_options(&args.interactive))?;
        writeln!(
            out,
            "=== {} ({} {}, template {})",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            talker.summary.architecture,
            talker.summary.file_type,
            talker.style.template_name
        )?;
        let mut history = Vec::new();
        let system = talker.default_system();
        for turn in &turns {
            writeln!(out, "> {turn}")?;
            history.push(Message::new("user", turn.clone()));
            let mut messages = Vec::new();
            if !system.is_empty() {
                messages.push(Message::new("system", system.clone()));
            }
            messages.extend(history.iter().cloned());
            let prompt = engine.tokenize(&talker.style.render(&messages)?, talker.add_bos)?;
            let reply = engine.stream(
                &prompt,
                args.interactive.max_tokens,
                &talker.style.stop,
                &mut |piece| {
                    // A closed pipe shows at the next writeln below.
                    let mut o = std::io::stdout();
                    let _ = o.write_all(piece.as_bytes()).and_then(|_| o.flush());
                },
            )?;
            writeln!(
                out,
                "\n[{} tokens, {:.1} tokens/s, {:.2} s; prompt {} tokens in {:.2} s]",
                reply.generated,
                reply.generated as f64 / (reply.generation_ms / 1e3).max(1e-9),
                (reply.prompt_ms + reply.generation_ms) / 1e3,
                reply.prompt_decoded,
                reply.prompt_ms / 1e3
            )?;
            history.push(Message::new("assistant", reply.text.trim().to_string()));
        }
        writeln!(out)?;
    }
    Ok(0)
}
