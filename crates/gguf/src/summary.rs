//! What a person (and the rest of frontier) wants to know about a model, derived from its
//! GGUF header: architecture, size, quantization, shape of the attention, chat template.

use serde::Serialize;

use super::reader::GgufHeader;
use super::types::{file_type, ggml_type};
use crate::chat_template;

/// The model facts `frontier inspect` prints and results carry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelSummary {
    pub architecture: String,
    pub name: Option<String>,
    pub gguf_version: u32,
    pub parameters: u64,
    /// `general.file_type` by name, or a guess from the dominant tensor type (`guessed`).
    pub file_type: String,
    pub file_type_guessed: bool,
    pub tensor_count: usize,
    pub context_length: Option<u64>,
    pub vocab_size: Option<u64>,
    pub block_count: Option<u64>,
    pub embedding_length: Option<u64>,
    pub head_count: Option<u64>,
    pub head_count_kv: Option<u64>,
    pub key_length: Option<u64>,
    pub value_length: Option<u64>,
    pub sliding_window: Option<u64>,
    pub chat_template: Option<ChatTemplateInfo>,
    /// The embedded chat template itself (not printed: `chat_template` describes it).
    #[serde(skip)]
    pub chat_template_text: Option<String>,
    /// Text of the BOS and EOS tokens (for chat templates).
    pub bos_text: Option<String>,
    pub eos_text: Option<String>,
    /// What `frontier quantize` made this file from (`Q4_1 name.gguf sha256:…`), if it did.
    pub quantized_from: Option<String>,
    pub file_size: u64,
    /// Bytes of tensor data (weights) in the file.
    pub tensor_data_bytes: u64,
    /// Bytes per tensor type, largest first.
    pub tensor_types: Vec<TypeShare>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TypeShare {
    pub ggml_type: String,
    pub tensors: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatTemplateInfo {
    /// The template family recognised from its text (`chatml`, `gemma`, ...) or `unknown`.
    pub family: String,
    /// First 16 hex digits of the template text's sha256.
    pub sha256_16: String,
    pub bytes: usize,
}

impl ModelSummary {
    /// What the file was requantized from, when `frontier quantize` made it from an already
    /// quantized file: its quality is at most that source's.
    pub fn requantized_from(&self) -> Option<String> {
        let from = self.quantized_from.as_deref()?;
        let source_type = from.split_whitespace().next()?;
        (!super::types::is_full_precision(source_type)).then(|| from.to_string())
    }

    pub fn from_header(h: &GgufHeader) -> ModelSummary {
        let arch = h
            .get_str("general.architecture")
            .unwrap_or("unknown")
            .to_string();
        let key = |k: &str| format!("{arch}.{k}");
        // Some architectures store per-layer values as arrays; take the largest.
        let num = |k: &str| {
            h.get_u64(&key(k)).or_else(|| match h.get(&key(k)) {
                Some(super::reader::Value::Array(a)) => {
                    a.values.iter().filter_map(|v| v.as_u64()).max()
                }
                _ => None,
            })
        };

        let mut shares: Vec<TypeShare> = Vec::new();
        for t in &h.tensors {
            let name = ggml_type(t.ggml_type).map_or("?", |g| g.name).to_string();
            match shares.iter_mut().find(|s| s.ggml_type == name) {
                Some(s) => {
                    s.tensors += 1;
                    s.bytes += t.n_bytes;
                }
                None => shares.push(TypeShare {
                    ggml_type: name,
                    tensors: 1,
                    bytes: t.n_bytes,
                }),
            }
        }
        shares.sort_by_key(|s| std::cmp::Reverse(s.bytes));

        let declared = h
            .get_u64("general.file_type")
            .and_then(|id| u32::try_from(id).ok())
            .and_then(file_type);
        let (file_type, guessed) = match declared {
            Some(ft) => (ft.name.to_string(), false),
            None => (
                shares
                    .first()
                    .map_or("unknown".to_string(), |s| s.ggml_type.clone()),
                true,
            ),
        };

        let chat_template = h
            .get_str("tokenizer.chat_template")
            .map(|text| ChatTemplateInfo {
                family: chat_template::identify(text).to_string(),
                sha256_16: sha256_16(text),
                bytes: text.len(),
            });

        ModelSummary {
            name: h.get_str("general.name").map(str::to_string),
            gguf_version: h.version,
            parameters: h.tensors.iter().map(|t| t.n_elements).sum(),
            file_type,
            file_type_guessed: guessed,
            tensor_count: h.tensors.len(),
            context_length: num("context_length"),
            vocab_size: h
                .array_len("tokenizer.ggml.tokens")
                .or_else(|| num("vocab_size")),
            block_count: num("block_count"),
            embedding_length: num("embedding_length"),
            head_count: num("attention.head_count"),
            head_count_kv: num("attention.head_count_kv"),
            key_length: num("attention.key_length"),
            value_length: num("attention.value_length"),
            sliding_window: num("attention.sliding_window"),
            chat_template,
            chat_template_text: h.get_str("tokenizer.chat_template").map(str::to_string),
            quantized_from: h
                .get_str(super::types::QUANTIZED_FROM_KEY)
                .map(str::to_string),
            bos_text: token_text(h, "tokenizer.ggml.bos_token_id"),
            eos_text: token_text(h, "tokenizer.ggml.eos_token_id"),
            file_size: h.file_size,
            tensor_data_bytes: h.data_bytes(),
            tensor_types: shares,
            architecture: arch,
        }
    }
}

/// The text of the token whose id is stored under `id_key`.
fn token_text(h: &GgufHeader, id_key: &str) -> Option<String> {
    let id = h.get_u64(id_key)? as usize;
    match h.get("tokenizer.ggml.tokens")? {
        super::reader::Value::Array(a) => a.values.get(id)?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The first 16 hex digits of a text's sha256.
fn sha256_16(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
