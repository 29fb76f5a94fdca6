//! Recognises which family a model's embedded (Jinja) chat template belongs to, from the
//! markers its text uses; rendering lives with the prompt templates.

/// The family of a chat template text: `chatml`, `gemma`, `llama3`, `phi3`, `mistral`,
/// `zephyr`, `deepseek`, or `unknown`.
pub fn identify(template: &str) -> &'static str {
    let has = |s: &str| template.contains(s);
    if has("<|im_start|>") {
        "chatml"
    } else if has("<start_of_turn>") {
        "gemma"
    } else if has("<|start_header_id|>") {
        "llama3"
    } else if has("<|user|>") && has("<|end|>") {
        "phi3"
    } else if has("[INST]") {
        "mistral"
    } else if has("<|user|>") && has("<|assistant|>") {
        "zephyr"
    } else if has("<｜User｜>") {
        "deepseek"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::identify;

    #[test]
    fn recognises_common_families() {
        assert_eq!(
            identify("{% for m in messages %}<|im_start|>{{ m.role }}"),
            "chatml"
        );
        assert_eq!(identify("{{ '<start_of_turn>user\n' }}"), "gemma");
        assert_eq!(
            identify("<|start_header_id|>system<|end_header_id|>"),
            "llama3"
        );
        assert_eq!(identify("{{ messages }}"), "unknown");
    }
}
