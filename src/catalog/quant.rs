//! Finding a quantization among a repo's file names: case-insensitive, as a whole token
//! (`Q4_K_M` in `model.q4_k_m.gguf`, `F16` also as `fp16` but never inside `bf16`), with
//! split files (`-00001-of-00003.gguf`) kept together.

/// The names a quant is written as in file names.
fn aliases(quant: &str) -> Vec<String> {
    let q = quant.to_ascii_lowercase();
    match q.as_str() {
        "f16" => vec!["f16".into(), "fp16".into()],
        "f32" => vec!["f32".into(), "fp32".into()],
        _ => vec![q],
    }
}

/// Whether `needle` occurs in `hay` with no letter or digit right before or after it.
fn has_token(hay: &str, needle: &str) -> bool {
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let after_ok = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
    }
    false
}

/// The GGUF file(s) of `quant` among `files` (repo paths): one file, or every part of a
/// split model in order. Empty when the repo does not have it.
pub fn match_quant(files: &[String], quant: &str) -> Vec<String> {
    let names = aliases(quant);
    let mut hits: Vec<String> = files
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".gguf"))
        .filter(|f| {
            let base = f.rsplit('/').next().unwrap_or(f).to_ascii_lowercase();
            names.iter().any(|n| has_token(&base, n))
        })
        .cloned()
        .collect();
    hits.sort();
    // Several unsplit matches (e.g. two publishers' names in one repo): the shortest name,
    // which carries the least extra qualifiers.
    let split: Vec<String> = hits
        .iter()
        .filter(|h| split_part(h).is_some())
        .cloned()
        .collect();
    if !split.is_empty() && split.len() == hits.len() {
        return split;
    }
    hits.retain(|h| split_part(h).is_none());
    hits.sort_by_key(|h| h.len());
    hits.truncate(1);
    hits
}

/// `(part, of)` for a split file name like `model-00002-of-00003.gguf`.
pub fn split_part(name: &str) -> Option<(u32, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    let (rest, total) = stem.rsplit_once("-of-")?;
    let (_, part) = rest.rsplit_once('-')?;
    Some((part.parse().ok()?, total.parse().ok()?))
}

/// The quants a repo seems to offer (for "missing quant" messages): known names found in
/// its GGUF file names.
pub fn available(files: &[String]) -> Vec<String> {
    let mut out: Vec<String> = frontier_gguf::types::FILE_TYPES
        .iter()
        .map(|t| t.name.to_string())
        .filter(|q| !match_quant(files, q).is_empty())
        .collect();
    out.dedup();
    out
}

/// GGUF files whose names carry no known quantization (`gemma-2b-it.gguf`): a repo may
/// hold a model in them, but no quant can be asked for by name.
pub fn untagged(files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".gguf"))
        .filter(|f| available(std::slice::from_ref(f)).is_empty())
        .cloned()
        .collect()
}

/// `SmolLM2-135M-Instruct.Q8_0` → `SmolLM2-135M-Instruct`: a local file's model name.
pub fn strip_quant_suffix(stem: &str) -> String {
    for t in frontier_gguf::types::FILE_TYPES {
        for alias in aliases(t.name) {
            for sep in ['.', '-', '_'] {
                let suffix = format!("{sep}{alias}");
                if stem.to_ascii_lowercase().ends_with(&suffix) {
                    return stem[..stem.len() - suffix.len()].to_string();
                }
            }
        }
    }
    stem.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_case_insensitively_as_a_token() {
        let f = files(&[
            "phi-2.Q4_K_M.gguf",
            "phi-2.Q4_K_S.gguf",
            "phi-2.Q8_0.gguf",
            "README.md",
        ]);
        assert_eq!(match_quant(&f, "q4_k_m"), ["phi-2.Q4_K_M.gguf"]);
        assert_eq!(match_quant(&f, "Q8_0"), ["phi-2.Q8_0.gguf"]);
        assert!(match_quant(&f, "F16").is_empty());
        assert_eq!(available(&f), ["Q8_0", "Q4_K_S", "Q4_K_M"]);
        assert!(untagged(&f).is_empty());
        let f = files(&["gemma-2b-it.gguf", "README.md", "m-Q8_0.gguf"]);
        assert_eq!(untagged(&f), ["gemma-2b-it.gguf"]);
    }

    #[test]
    fn f16_is_not_bf16_and_fp16_counts() {
        let f = files(&["m-bf16.gguf", "m-fp16.gguf"]);
        assert_eq!(match_quant(&f, "F16"), ["m-fp16.gguf"]);
        assert_eq!(match_quant(&f, "BF16"), ["m-bf16.gguf"]);
        let f = files(&["m-bf16.gguf"]);
        assert!(match_quant(&f, "F16").is_empty());
    }

    #[test]
    fn split_files_come_together_in_order() {
        let f = files(&[
            "qwen2.5-3b-instruct-fp16-00002-of-00002.gguf",
            "qwen2.5-3b-instruct-fp16-00001-of-00002.gguf",
            "qwen2.5-3b-instruct-q4_k_m.gguf",
        ]);
        assert_eq!(
            match_quant(&f, "F16"),
            [
                "qwen2.5-3b-instruct-fp16-00001-of-00002.gguf",
                "qwen2.5-3b-instruct-fp16-00002-of-00002.gguf"
            ]
        );
        assert_eq!(split_part("a-00002-of-00003.gguf"), Some((2, 3)));
    }

    #[test]
    fn local_names_lose_their_quant() {
        assert_eq!(
            strip_quant_suffix("SmolLM2-135M-Instruct.Q4_K_M"),
            "SmolLM2-135M-Instruct"
        );
        assert_eq!(strip_quant_suffix("gemma-3-270m-q4_k_m"), "gemma-3-270m");
        assert_eq!(strip_quant_suffix("model-f16"), "model");
        assert_eq!(strip_quant_suffix("plain"), "plain");
    }
}
