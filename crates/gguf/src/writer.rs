//! A minimal GGUF writer (metadata and zero-filled tensors) for building test files:
//! well-formed ones, and malformed ones by editing the bytes it produces.

use super::types::{ggml_type, tensor_bytes};

/// Builds a GGUF v3 file in memory.
#[derive(Debug, Default, Clone)]
pub struct GgufBuilder {
    kv: Vec<(String, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>, u32)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufBuilder {
    pub fn new() -> GgufBuilder {
        GgufBuilder::default()
    }

    pub fn str(mut self, key: &str, value: &str) -> GgufBuilder {
        let mut v = 8u32.to_le_bytes().to_vec();
        put_str(&mut v, value);
        self.kv.push((key.into(), v));
        self
    }

    pub fn u32(mut self, key: &str, value: u32) -> GgufBuilder {
        let mut v = 4u32.to_le_bytes().to_vec();
        v.extend_from_slice(&value.to_le_bytes());
        self.kv.push((key.into(), v));
        self
    }

    /// An array of strings (e.g. a vocabulary).
    pub fn str_array(mut self, key: &str, values: &[&str]) -> GgufBuilder {
        let mut v = 9u32.to_le_bytes().to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for s in values {
            put_str(&mut v, s);
        }
        self.kv.push((key.into(), v));
        self
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], ggml_type: u32) -> GgufBuilder {
        self.tensors.push((name.into(), dims.to_vec(), ggml_type));
        self
    }

    /// The file's bytes: header, tensor table, padding, zero-filled tensor data.
    pub fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            put_str(&mut out, k);
            out.extend_from_slice(v);
        }
        let mut offset = 0u64;
        let mut data_len = 0u64;
        for (name, dims, ty) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            let n: u64 = dims.iter().product();
            let bytes = ggml_type(*ty).and_then(|t| tensor_bytes(t, n)).unwrap_or(0);
            data_len = offset + bytes;
            offset = (offset + bytes).div_ceil(32) * 32;
        }
        let pad = out.len().div_ceil(32) * 32 - out.len();
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend(std::iter::repeat_n(0u8, data_len as usize));
        out
    }
}
