//! `frontier chat MODEL`: an interactive chat in the terminal with streamed replies, the
//! model's own template, and the history kept within the context window.
//!
//! Commands: `/reset` forgets the conversation, `/system TEXT` sets the system prompt,
//! `/stats` shows the last reply's speed and the context used, `/quit` (or end of input)
//! exits. A line ending in `\` continues on the next line; `"""` starts and ends a block.

use std::io::{BufRead, Write};

use anyhow::Result;

use super::interactive::Talker;
use crate::cli::ChatArgs;
use crate::prompts::Message;
use frontier_engine::Tokenizer;
use frontier_llama::StreamedReply;

pub fn run(args: &ChatArgs) -> Result<i32> {
    let model = crate::sweep::model_file(&args.model, false)?;
    let talker = Talker::load(&model, &args.interactive)?;
    let mut engine = talker
        .model
        .new_engine(&talker.context_options(&args.interactive))?;
    let n_ctx = engine.options().n_ctx as usize;
    let mut system = args
        .system
        .clone()
        .unwrap_or_else(|| talker.default_system());
    let mut history: Vec<Message> = Vec::new();
    let mut last: Option<StreamedReply> = None;
    let mut used = 0usize;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    eprintln!(
        "chatting with {} ({}, template {}); /reset, /system TEXT, /stats, /quit",
        model.display(),
        talker.summary.file_type,
        talker.style.template_name
    );
    loop {
        eprint!("> ");
        let Some(input) = read_message(&mut lines)? else {
            break;
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            continue;
        }
        match trimmed
            .split_once(' ')
            .map_or((trimmed, ""), |(c, r)| (c, r))
        {
            ("/quit" | "/exit", _) => break,
            ("/reset", _) => {
                history.clear();
                engine.reset_stream()?;
                used = 0;
                eprintln!("(conversation cleared)");
                continue;
            }
            ("/system", text) => {
                system = text.trim().to_string();
                history.clear();
                engine.reset_stream()?;
                eprintln!("(system prompt set; conversation cleared)");
                continue;
            }
            ("/stats", _) => {
                match &last {
                    Some(r) => eprintln!(
                        "last reply: {} tokens in {:.2} s ({:.1} tokens/s); prompt {} new tokens in {:.2} s; context {used}/{n_ctx} tokens",
                        r.generated,
                        r.generation_ms / 1e3,
                        r.generated as f64 / (r.generation_ms / 1e3).max(1e-9),
                        r.prompt_decoded,
                        r.prompt_ms / 1e3,
                    ),
                    None => eprintln!("no reply yet; context {used}/{n_ctx} tokens"),
                }
                continue;
            }
            (cmd, _) if cmd.starts_with('/') => {
                eprintln!("unknown command {cmd} (/reset, /system TEXT, /stats, /quit)");
                continue;
            }
            _ => {}
        }
        history.push(Message::new("user", input.clone()));
        // Drop the oldest exchanges until the conversation and a reply fit the context.
        let prompt = loop {
            let mut messages = Vec::new();
            if !system.is_empty() {
                messages.push(Message::new("system", system.clone()));
            }
            messages.extend(history.iter().cloned());
            let text = talker.style.render(&messages)?;
            let tokens = engine.tokenize(&text, talker.add_bos)?;
            if tokens.len() + args.interactive.max_tokens <= n_ctx || history.len() <= 1 {
                break tokens;
            }
            history.drain(..2.min(history.len() - 1));
        };
        let reply = engine.stream(
            &prompt,
            args.interactive.max_tokens,
            &talker.style.stop,
            &mut |piece| {
                let mut o = std::io::stdout();
                let _ = o.write_all(piece.as_bytes()).and_then(|_| o.flush());
            },
        )?;
        writeln!(out)?;
        used = prompt.len() + reply.generated;
        history.push(Message::new("assistant", reply.text.trim().to_string()));
        last = Some(reply);
    }
    eprintln!();
    Ok(0)
}

/// One message from the input: a line, lines joined while they end in `\`, or a block
/// between `"""` lines. `None` at the end of input.
fn read_message(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> Result<Option<String>> {
    let Some(first) = lines.next().transpose()? else {
        return Ok(None);
    };
    if first.trim() == "\"\"\"" {
        let mut block = Vec::new();
        for line in lines.by_ref() {
            let line = line?;
            if line.trim() == "\"\"\"" {
                break;
            }
            block.push(line);
        }
        return Ok(Some(block.join("\n")));
    }
    let mut text = first;
    while text.ends_with('\\') {
        text.pop();
        text.push('\n');
        match lines.next().transpose()? {
            Some(next) => text.push_str(&next),
            None => break,
        }
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::read_message;

    #[test]
    fn multi_line_input() {
        let input = ["a \\", "b", "\"\"\"", "x", "y", "\"\"\"", "/reset"];
        let mut it = input.iter().map(|s| Ok(s.to_string()));
        assert_eq!(read_message(&mut it).unwrap().as_deref(), Some("a \nb"));
        assert_eq!(read_message(&mut it).unwrap().as_deref(), Some("x\ny"));
        assert_eq!(read_message(&mut it).unwrap().as_deref(), Some("/reset"));
        assert_eq!(read_message(&mut it).unwrap(), None);
    }
}
