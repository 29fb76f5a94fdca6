//! Model files for the scripted engine (`--backend fake`): small valid GGUFs whose
//! `frontier.fake.*` metadata says how the fake behaves (see `src/fake.rs`).

use std::path::{Path, PathBuf};

use frontier_gguf::writer::GgufBuilder;

/// Writes `DIR/NAME.gguf`: a llama-shaped Q4_K_M model (2 layers, 64 wide, 4 KiB of
/// weights) with a 4096-token context and these script entries.
pub fn fake_model(dir: &Path, name: &str, script: &[(&str, &str)]) -> PathBuf {
    let mut b = GgufBuilder::new()
        .str("general.architecture", "llama")
        .str("general.name", name)
        .u32("general.file_type", 15)
        .u32("llama.context_length", 4096)
        .u32("llama.block_count", 2)
        .u32("llama.embedding_length", 64)
        .u32("llama.attention.head_count", 4)
        .u32("llama.attention.head_count_kv", 2)
        .tensor("token_embd.weight", &[256, 64], 12);
    for (key, value) in script {
        b = b.str(&format!("frontier.fake.{key}"), value);
    }
    let path = dir.join(format!("{name}.gguf"));
    std::fs::write(&path, b.build()).unwrap();
    path
}
