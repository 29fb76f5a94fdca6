//! Converting a GGUF model to another quantization through llama.cpp's
//! `llama_model_quantize` (there is no safe wrapper, so this is the one other place that
//! calls llama.cpp: through llama-cpp-sys-2, after our reader has validated the source).

use std::ffi::CString;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::error::bad_input;
use crate::gguf::types::{file_type_by_name, FileType};

/// Targets llama.cpp can produce without an importance matrix.
pub const QUANTIZE_TARGETS: &[&str] = &[
    "F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S",
    "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_NL", "IQ4_XS",
];

/// File types that hold full-precision weights (quantizing from them loses nothing twice).
pub fn is_full_precision(file_type: &str) -> bool {
    matches!(file_type, "F32" | "F16" | "BF16")
}

/// Resolves a quantization target name, case-insensitively.
pub fn parse_target(name: &str) -> Result<&'static FileType> {
    file_type_by_name(name)
        .filter(|t| QUANTIZE_TARGETS.contains(&t.name))
        .ok_or_else(|| {
            bad_input(format!(
                "unknown quantization type '{name}' (known: {})",
                QUANTIZE_TARGETS.join(", ")
            ))
        })
}

/// The GGUF key where frontier records what a file was quantized from.
pub const QUANTIZED_FROM_KEY: &str = "frontier.quantized_from";

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
    crate::engine::ensure_backend()?;
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
        let said =
            crate::logging::last_llama_error().unwrap_or_else(|| format!("return code {rc}"));
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

    #[test]
    fn targets_resolve() {
        assert_eq!(parse_target("q4_k_m").unwrap().id, 15);
        assert_eq!(parse_target("F16").unwrap().id, 1);
        let e = parse_target("Q9_X").unwrap_err();
        assert!(crate::error::exit_code(&e) == 2);
        assert!(e.to_string().contains("Q9_X"));
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
