//! Converting a GGUF model to another quantization through llama.cpp's
//! `llama_model_quantize` (there is no safe wrapper: this calls llama-cpp-sys-2 directly).

use std::ffi::CString;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use frontier_core::bad_input;
use frontier_gguf::types::{FileType, QUANTIZED_FROM_KEY};

use crate::backend::ensure_backend;
use crate::logs::last_llama_error;

/// Runs llama.cpp's quantizer. `quantized_from` (at most 127 bytes) is written into the new
/// file's metadata under [`QUANTIZED_FROM_KEY`], so its origin travels with it.
pub fn quantize(
    src: &Path,
    dst: &Path,
    target: &FileType,
    allow_requantize: bool,
    threads: u32,
    quantized_from: &str,
) -> Result<()> {
    ensure_backend()?;
    let c_src = path_cstring(src)?;
    let c_dst = path_cstring(dst)?;
    // SAFETY: plain struct returned by value.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.ftype = target.id as llama_cpp_sys_2::llama_ftype;
    params.allow_requantize = allow_requantize;
    params.nthread = threads as i32;
    let overrides = [provenance_override(quantized_from), end_of_overrides()];
    params.kv_overrides = overrides.as_ptr();
    // SAFETY: both paths are valid C strings and params lives across the call.
    let rc =
        unsafe { llama_cpp_sys_2::llama_model_quantize(c_src.as_ptr(), c_dst.as_ptr(), &params) };
    if rc != 0 {
        let said = last_llama_error().unwrap_or_else(|| format!("return code {rc}"));
        return Err(anyhow!(
            "llama.cpp could not quantize {}: {said}",
            src.display()
        ));
    }
    Ok(())
}

fn c_chars<const N: usize>(s: &str) -> [std::ffi::c_char; N] {
    let mut out = [0 as std::ffi::c_char; N];
    for (o, b) in out.iter_mut().zip(s.bytes().take(N - 1)) {
        *o = b as std::ffi::c_char;
    }
    out
}

fn provenance_override(value: &str) -> llama_cpp_sys_2::llama_model_kv_override {
    llama_cpp_sys_2::llama_model_kv_override {
        tag: llama_cpp_sys_2::LLAMA_KV_OVERRIDE_TYPE_STR,
        key: c_chars(QUANTIZED_FROM_KEY),
        __bindgen_anon_1: llama_cpp_sys_2::llama_model_kv_override__bindgen_ty_1 {
            val_str: c_chars(value),
        },
    }
}

/// llama.cpp reads overrides until one with an empty key.
fn end_of_overrides() -> llama_cpp_sys_2::llama_model_kv_override {
    llama_cpp_sys_2::llama_model_kv_override {
        tag: 0,
        key: [0; 128],
        __bindgen_anon_1: llama_cpp_sys_2::llama_model_kv_override__bindgen_ty_1 { val_i64: 0 },
    }
}

fn path_cstring(p: &Path) -> Result<CString> {
    let s = p
        .to_str()
        .ok_or_else(|| bad_input(format!("{}: path is not valid UTF-8", p.display())))?;
    CString::new(s).with_context(|| format!("{}: path contains a NUL byte", p.display()))
}

/// Parses llama.cpp's per-tensor progress line `[  12/ 272] name - ...` into (12, 272).
pub fn progress_of(line: &str) -> Option<(u64, u64)> {
    let inner = line.trim_start().strip_prefix('[')?;
    let (nums, _) = inner.split_once(']')?;
    let (done, total) = nums.split_once('/')?;
    Some((done.trim().parse().ok()?, total.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our GGUF reader's type table against llama.cpp's own sizes.
    #[test]
    fn gguf_type_table_matches_llama_cpp() {
        for ty in frontier_gguf::types::GGML_TYPES {
            let id = ty.id as llama_cpp_sys_2::ggml_type;
            // SAFETY: plain lookups in ggml's type table.
            let size = unsafe { llama_cpp_sys_2::ggml_type_size(id) } as u64;
            let block = unsafe { llama_cpp_sys_2::ggml_blck_size(id) } as u64;
            assert_eq!((ty.block_size, ty.type_size), (block, size), "{}", ty.name);
        }
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            progress_of("[  12/ 272]   blk.1.attn_k.weight - [576, 192]"),
            Some((12, 272))
        );
        assert_eq!(progress_of("llama_model_quantize_impl: model size"), None);
    }
}
