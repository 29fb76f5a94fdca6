//! Rendering a conversation into prompt text: with the model's own chat template (Jinja, as
//! Hugging Face renders it: minijinja with Python string methods, trim_blocks and
//! lstrip_blocks, `raise_exception`, `strftime_now`), falling back to llama.cpp's built-in
//! template matcher, or with a family file's turn strings.

use anyhow::{anyhow, Result};
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::ChatSpec;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// How a conversation becomes text.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatRenderer {
    /// The model's own Jinja template, with its special token texts.
    Jinja {
        source: String,
        bos: String,
        eos: String,
    },
    /// A family file's turn strings.
    Turns(ChatSpec),
}

impl ChatRenderer {
    /// A Jinja renderer; fails now (with the reason) if neither minijinja nor llama.cpp's
    /// matcher can render a probe conversation with this template.
    pub fn jinja(source: &str, bos: &str, eos: &str) -> Result<ChatRenderer> {
        let r = ChatRenderer::Jinja {
            source: source.to_string(),
            bos: bos.to_string(),
            eos: eos.to_string(),
        };
        r.render(&[Message::new("user", "Hello")], true)?;
        Ok(r)
    }

    pub fn turns(spec: ChatSpec) -> ChatRenderer {
        ChatRenderer::Turns(spec)
    }

    /// The conversation as prompt text, ending with the assistant's generation prompt when
    /// `add_generation_prompt`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        match self {
            ChatRenderer::Turns(spec) => Ok(render_turns(spec, messages, add_generation_prompt)),
            ChatRenderer::Jinja { source, bos, eos } => {
                match render_jinja(source, messages, add_generation_prompt, bos, eos) {
                    Ok(text) => Ok(text),
                    Err(jinja_error) => llama_cpp_render(source, messages, add_generation_prompt).map_err(|e| {
                        anyhow!(
                            "the model's chat template cannot be rendered: Jinja: {jinja_error}; llama.cpp's matcher: {e}"
                        )
                    }),
                }
            }
        }
    }
}

fn render_turns(spec: &ChatSpec, messages: &[Message], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    let mut pending_system: Option<&str> = None;
    for m in messages {
        let content = match (m.role.as_str(), pending_system.take()) {
            ("system", _) if spec.merge_system_into_user || spec.system.is_empty() => {
                pending_system = Some(&m.content);
                continue;
            }
            ("user", Some(system)) => format!("{system}\n\n{}", m.content),
            (_, Some(system)) => {
                // A system prompt not followed by a user turn: keep it as a user turn.
                out.push_str(&spec.user.replace("{content}", system));
                m.content.clone()
            }
            _ => m.content.clone(),
        };
        let template = match m.role.as_str() {
            "system" => &spec.system,
            "assistant" => &spec.assistant,
            _ => &spec.user,
        };
        out.push_str(&template.replace("{content}", &content));
    }
    if let Some(system) = pending_system {
        out.push_str(&spec.user.replace("{content}", system));
    }
    if add_generation_prompt {
        out.push_str(&spec.generation_prompt);
    }
    out
}

/// `strftime_now(format)` for the common directives, in UTC.
fn strftime_now(format: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stamp = frontier_core::units::utc_timestamp(secs); // YYYY-MM-DDTHH:MM:SSZ
    let (y, mo, d) = (&stamp[0..4], &stamp[5..7], &stamp[8..10]);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = MONTHS[mo.parse::<usize>().unwrap_or(1).clamp(1, 12) - 1];
    format
        .replace("%Y", y)
        .replace("%y", &y[2..])
        .replace("%m", mo)
        .replace("%d", d)
        .replace("%B", month)
        .replace("%b", &month[..3])
        .replace("%H", &stamp[11..13])
        .replace("%M", &stamp[14..16])
}

fn render_jinja(
    source: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos: &str,
    eos: &str,
) -> Result<String> {
    let mut env = Environment::new();
    // Hugging Face compiles chat templates with trim_blocks and lstrip_blocks.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", strftime_now);
    let template = env
        .template_from_str(source)
        .map_err(|e| anyhow!("{e:#}"))?;
    let ctx = minijinja::context! {
        messages => minijinja::value::Value::from(minijinja::value::Serde(messages)),
        add_generation_prompt => add_generation_prompt,
        bos_token => bos,
        eos_token => eos,
    };
    template.render(ctx).map_err(|e| anyhow!("{e:#}"))
}

/// llama.cpp's template matcher, for templates minijinja cannot render.
fn llama_cpp_render(
    source: &str,
    messages: &[Message],
    add_generation_prompt: bool,
) -> Result<String> {
    let turns: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    frontier_llama::apply_chat_template(source, &turns, add_generation_prompt)
}
