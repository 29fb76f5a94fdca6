//! GGML tensor types and llama.cpp file types: names, block sizes and bytes per block.
//!
//! Kept as plain tables so the GGUF reader needs nothing from llama.cpp; a test in
//! `frontier-llama` checks the table against llama.cpp's own `ggml_type_size` /
//! `ggml_blck_size`. Also: which file types llama.cpp's quantizer can make, and the metadata
//! key frontier records a quantized file's origin under.

/// One GGML tensor element type, as stored in a GGUF tensor info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    pub id: u32,
    pub name: &'static str,
    /// Elements per block.
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
}

const fn t(id: u32, name: &'static str, block_size: u64, type_size: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        type_size,
    }
}

/// Every tensor type a current llama.cpp can store in a GGUF file.
pub const GGML_TYPES: &[GgmlType] = &[
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 18),
    t(3, "Q4_1", 32, 20),
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    t(8, "Q8_0", 32, 34),
    t(9, "Q8_1", 32, 36),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    t(39, "MXFP4", 32, 17),
];

pub fn ggml_type(id: u32) -> Option<&'static GgmlType> {
    GGML_TYPES.iter().find(|t| t.id == id)
}

/// A llama.cpp file type (`general.file_type`, `enum llama_ftype`): what `quantize` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    pub id: u32,
    /// The name people use (and llama-quantize accepts): `Q4_K_M`, `F16`, ...
    pub name: &'static str,
}

const fn f(id: u32, name: &'static str) -> FileType {
    FileType { id, name }
}

pub const FILE_TYPES: &[FileType] = &[
    f(0, "F32"),
    f(1, "F16"),
    f(2, "Q4_0"),
    f(3, "Q4_1"),
    f(7, "Q8_0"),
    f(8, "Q5_0"),
    f(9, "Q5_1"),
    f(10, "Q2_K"),
    f(11, "Q3_K_S"),
    f(12, "Q3_K_M"),
    f(13, "Q3_K_L"),
    f(14, "Q4_K_S"),
    f(15, "Q4_K_M"),
    f(16, "Q5_K_S"),
    f(17, "Q5_K_M"),
    f(18, "Q6_K"),
    f(19, "IQ2_XXS"),
    f(20, "IQ2_XS"),
    f(21, "Q2_K_S"),
    f(22, "IQ3_XS"),
    f(23, "IQ3_XXS"),
    f(24, "IQ1_S"),
    f(25, "IQ4_NL"),
    f(26, "IQ3_S"),
    f(27, "IQ3_M"),
    f(28, "IQ2_S"),
    f(29, "IQ2_M"),
    f(30, "IQ4_XS"),
    f(31, "IQ1_M"),
    f(32, "BF16"),
    f(36, "TQ1_0"),
    f(37, "TQ2_0"),
    f(38, "MXFP4_MOE"),
];

pub fn file_type(id: u32) -> Option<&'static FileType> {
    FILE_TYPES.iter().find(|t| t.id == id)
}

/// Looks a file type up by name, case-insensitively (`q4_k_m`, `Q4_K_M`, `f16`).
pub fn file_type_by_name(name: &str) -> Option<&'static FileType> {
    FILE_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Bytes taken by `n_elements` elements of type `ty`, or `None` when the count is not a
/// whole number of blocks (a corrupt tensor info) or overflows.
pub fn tensor_bytes(ty: &GgmlType, n_elements: u64) -> Option<u64> {
    if !n_elements.is_multiple_of(ty.block_size) {
        return None;
    }
    (n_elements / ty.block_size).checked_mul(ty.type_size)
}

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
pub fn parse_quantize_target(name: &str) -> anyhow::Result<&'static FileType> {
    file_type_by_name(name)
        .filter(|t| QUANTIZE_TARGETS.contains(&t.name))
        .ok_or_else(|| {
            frontier_core::bad_input(format!(
                "unknown quantization type '{name}' (known: {})",
                QUANTIZE_TARGETS.join(", ")
            ))
        })
}

/// The GGUF key where frontier records what a file was quantized from.
pub const QUANTIZED_FROM_KEY: &str = "frontier.quantized_from";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_case_insensitively() {
        assert_eq!(file_type_by_name("q4_k_m").unwrap().id, 15);
        assert_eq!(file_type_by_name("F16").unwrap().id, 1);
        assert!(file_type_by_name("Q9_9").is_none());
    }

    #[test]
    fn quantize_targets_resolve() {
        assert_eq!(parse_quantize_target("q4_k_m").unwrap().id, 15);
        assert_eq!(parse_quantize_target("F16").unwrap().id, 1);
        let e = parse_quantize_target("Q9_X").unwrap_err();
        assert_eq!(frontier_core::exit_code(&e), 2);
        assert!(e.to_string().contains("Q9_X"));
    }

    #[test]
    fn partial_blocks_are_rejected() {
        let q8 = ggml_type(8).unwrap();
        assert_eq!(tensor_bytes(q8, 64), Some(68));
        assert_eq!(tensor_bytes(q8, 65), None);
    }
}
