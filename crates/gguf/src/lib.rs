//! Our own reader of GGUF files: validates a model file before llama.cpp touches it and
//! tells what it holds (architecture, parameters, quantization, context, chat template).

pub mod chat_template;
mod reader;
mod summary;
pub mod types;
pub mod writer;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Result;

pub use reader::{parse, Array, GgufError, GgufHeader, TensorInfo, Value, GGUF_MAGIC};
pub use summary::{ChatTemplateInfo, ModelSummary, TypeShare};

use frontier_core::BadInput;

/// Opens and validates a local GGUF file, header and tensor data extent. Every failure is a
/// [`BadInput`] naming the file and the problem.
pub fn read_file(path: &Path) -> Result<GgufHeader> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BadInput::new(format!("{shown}: no such file")),
        _ => BadInput::new(format!("{shown}: cannot read: {e}")),
    })?;
    if meta.is_dir() {
        return Err(BadInput::new(format!("{shown}: is a directory, not a GGUF file")).into());
    }
    let file = File::open(path).map_err(|e| BadInput::new(format!("{shown}: cannot open: {e}")))?;
    let header = parse(BufReader::with_capacity(1 << 16, file), meta.len(), true)
        .map_err(|e| BadInput::new(format!("{shown}: {e}")))?;
    Ok(header)
}

/// Reads and validates a local GGUF file and describes the model it holds.
pub fn read_summary(path: &Path) -> Result<ModelSummary> {
    Ok(ModelSummary::from_header(&read_file(path)?))
}
