//! Every family file rendered against expected text, the test models' embedded templates
//! through Jinja, selection from metadata, and clear errors for broken templates.

use super::*;

fn convo() -> Vec<Message> {
    vec![
        Message::new("system", "Be brief."),
        Message::new("user", "Hi"),
        Message::new("assistant", "Hello!"),
        Message::new("user", "2+2?"),
    ]
}

fn turns(name: &str) -> String {
    let f = family_named(name).unwrap();
    ChatRenderer::turns(f.chat).render(&convo(), true).unwrap()
}

#[test]
fn every_family_renders_as_expected() {
    let expected = [
        ("smollm2", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"),
        ("smollm3", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"),
        ("qwen", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"),
        ("chatml", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"),
        ("gemma", "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n"),
        ("gemma-3", "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n"),
        ("gemma-base", "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n"),
        ("llama-3", "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
        ("phi-2", "Be brief.\nInstruct: Hi\nOutput: Hello!\nInstruct: 2+2?\nOutput:"),
        ("raw", "Be brief.\n\nHi\nHello!\n\n2+2?\n"),
    ];
    assert_eq!(
        expected.len(),
        families().len(),
        "a family without an expected rendering"
    );
    for (name, want) in expected {
        assert_eq!(turns(name), want, "{name}");
    }
}

/// SmolLM2's embedded template (from the test model's GGUF), rendered with Jinja, equals
/// the smollm2 family's turns.
#[test]
fn smollm2_embedded_template_renders_like_its_family() {
    let source = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    let jinja = ChatRenderer::jinja(source, "<|im_start|>", "<|im_end|>").unwrap();
    assert_eq!(jinja.render(&convo(), true).unwrap(), turns("smollm2"));
    // Without a system turn the template adds SmolLM's own, as the family file does.
    let user_only = [Message::new("user", "Hi")];
    let f = family_named("smollm2").unwrap();
    let mut with_default = vec![Message::new("system", f.chat.system_prompt.clone())];
    with_default.extend(user_only.iter().cloned());
    assert_eq!(
        jinja.render(&user_only, true).unwrap(),
        ChatRenderer::turns(f.chat)
            .render(&with_default, true)
            .unwrap()
    );
}

#[test]
fn hugging_face_jinja_features_work() {
    // raise_exception, Python string methods, namespace, loop controls, trim/lstrip blocks.
    let source = "{%- set ns = namespace(n=0) -%}\n{%- for m in messages %}\n  {%- if m.role not in ['user', 'assistant', 'system'] %}{{ raise_exception('bad role') }}{% endif %}\n  {%- set ns.n = ns.n + 1 %}\n  {{- m.role.upper() + ': ' + m.content.strip() + '\\n' }}\n{%- endfor %}\n{%- if add_generation_prompt %}{{ bos_token }}ASSISTANT{{ ns.n }}:{% endif %}";
    let r = ChatRenderer::jinja(source, "<s>", "</s>").unwrap();
    assert_eq!(
        r.render(&[Message::new("user", "  hi ")], true).unwrap(),
        "USER: hi\n<s>ASSISTANT1:"
    );
    let e = r.render(&[Message::new("tool", "x")], true).unwrap_err();
    assert!(e.to_string().contains("bad role"), "{e}");
}

#[test]
fn broken_templates_fail_clearly() {
    let e = ChatRenderer::jinja("{% for m in messages %}{{ m.content }", "", "").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cannot be rendered") && msg.contains("Jinja"),
        "{msg}"
    );
    // llama.cpp's matcher rescues a template minijinja cannot parse but llama.cpp knows.
    let chatml_with_odd_syntax = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{{ bad syntax here ) }}";
    let r = ChatRenderer::jinja(chatml_with_odd_syntax, "", "").unwrap();
    assert!(r
        .render(&[Message::new("user", "Hi")], true)
        .unwrap()
        .contains("<|im_start|>user\nHi<|im_end|>"));
}

#[test]
fn selection_follows_metadata() {
    let summary = |arch: &str, name: &str, template: Option<&str>| frontier_gguf::ModelSummary {
        architecture: arch.into(),
        name: Some(name.into()),
        gguf_version: 3,
        parameters: 0,
        file_type: "Q4_K_M".into(),
        file_type_guessed: false,
        tensor_count: 0,
        context_length: None,
        vocab_size: None,
        block_count: None,
        embedding_length: None,
        head_count: None,
        head_count_kv: None,
        key_length: None,
        value_length: None,
        sliding_window: None,
        chat_template: template.map(|f| frontier_gguf::ChatTemplateInfo {
            family: f.into(),
            sha256_16: String::new(),
            bytes: 0,
        }),
        chat_template_text: None,
        quantized_from: None,
        bos_text: None,
        eos_text: None,
        file_size: 0,
        tensor_data_bytes: 0,
        tensor_types: vec![],
    };
    // (architecture, GGUF name, embedded template family, file name, expected family)
    let cases = [
        (
            "llama",
            "Smollm2 135M 8k",
            Some("chatml"),
            "x.gguf",
            "smollm2",
        ),
        (
            "gemma3",
            "Gemma 3 270m",
            None,
            "gemma-3-270m-q4_k_m.gguf",
            "gemma-base",
        ),
        (
            "gemma3",
            "Gemma 3 270m It",
            Some("gemma"),
            "gemma-3-270m-it.gguf",
            "gemma-3",
        ),
        ("gemma", "gemma-2b-it", Some("gemma"), "x.gguf", "gemma"),
        (
            "gemma2",
            "Gemma 2 2b",
            None,
            "gemma-2-2b.gguf",
            "gemma-base",
        ),
        ("phi2", "Phi2", None, "phi-2.Q4_K_M.gguf", "phi-2"),
        (
            "llama",
            "Llama 3.2 1B Instruct",
            Some("llama3"),
            "x.gguf",
            "llama-3",
        ),
        (
            "qwen2",
            "Qwen2.5 0.5B Instruct",
            Some("chatml"),
            "x.gguf",
            "qwen",
        ),
        ("smollm3", "SmolLM3 3B", Some("chatml"), "x.gguf", "smollm3"),
        ("mystery", "Mystery", Some("chatml"), "x.gguf", "chatml"),
        ("mystery", "Mystery", None, "x.gguf", "raw"),
        (
            "llama",
            "TinyLlama 1.1B Chat",
            Some("chatml"),
            "x.gguf",
            "chatml",
        ),
    ];
    for (arch, name, template, file, want) in cases {
        let got = select_family(&summary(arch, name, template), file).name;
        assert_eq!(got, want, "{arch} {name} {template:?} {file}");
    }
}

#[test]
fn unknown_template_names_list_the_built_ins() {
    let e = family_named("vicuna").unwrap_err().to_string();
    assert!(
        e.contains("unknown template 'vicuna'") && e.contains("smollm2"),
        "{e}"
    );
}
