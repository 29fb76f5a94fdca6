//! llama.cpp's own chat-template matcher: the fallback for embedded templates minijinja
//! cannot render.

use std::ffi::CString;

use anyhow::{anyhow, Result};

/// Renders (role, content) turns with llama.cpp's `llama_chat_apply_template`, which is not
/// Jinja: it recognises ~50 known template formats by pattern and fails on others.
pub fn apply_chat_template(
    source: &str,
    turns: &[(&str, &str)],
    add_generation_prompt: bool,
) -> Result<String> {
    let tmpl = CString::new(source)?;
    let roles: Vec<CString> = turns
        .iter()
        .map(|(role, _)| CString::new(*role))
        .collect::<Result<_, _>>()?;
    let contents: Vec<CString> = turns
        .iter()
        .map(|(_, content)| CString::new(*content))
        .collect::<Result<_, _>>()?;
    let chat: Vec<llama_cpp_sys_2::llama_chat_message> = roles
        .iter()
        .zip(&contents)
        .map(|(r, c)| llama_cpp_sys_2::llama_chat_message {
            role: r.as_ptr(),
            content: c.as_ptr(),
        })
        .collect();
    let mut buf = vec![
        0u8;
        4096 + source.len()
            + contents
                .iter()
                .map(|c| c.as_bytes().len() * 2)
                .sum::<usize>()
    ];
    for _ in 0..2 {
        // SAFETY: every pointer is valid for the call; buf has the length passed.
        let n = unsafe {
            llama_cpp_sys_2::llama_chat_apply_template(
                tmpl.as_ptr(),
                chat.as_ptr(),
                chat.len(),
                add_generation_prompt,
                buf.as_mut_ptr().cast(),
                buf.len() as i32,
            )
        };
        if n < 0 {
            return Err(anyhow!("not a template llama.cpp recognises"));
        }
        let n = n as usize;
        if n <= buf.len() {
            return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        buf.resize(n, 0);
    }
    Err(anyhow!("llama.cpp's template output kept growing"))
}
