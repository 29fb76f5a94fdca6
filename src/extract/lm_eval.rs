//! Answer extraction and comparison as lm-evaluation-harness does it for GSM8K: the
//! `strict-match` and `flexible-extract` regex filters, and `exact_match` with
//! `ignore_case` and its `regexes_to_ignore`.

use std::sync::OnceLock;

use regex::Regex;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid built-in regex"))
}

/// lm-eval's `RegexFilter`: the first (`group_select` 0) or last (-1) match; for a pattern
/// with several groups, the first non-empty group; stripped. `None` = "[invalid]".
pub fn regex_filter(pattern: &Regex, text: &str, last: bool) -> Option<String> {
    let mut matches = pattern.captures_iter(text);
    let caps = if last { matches.last() } else { matches.next() }?;
    let value = if caps.len() > 1 {
        (1..caps.len()).find_map(|i| caps.get(i).map(|m| m.as_str()).filter(|s| !s.is_empty()))?
    } else {
        caps.get(0)?.as_str()
    };
    Some(value.trim().to_string())
}

/// `#### (\-?[0-9\.\,]+)`, first match: the GSM8K strict filter.
pub fn gsm8k_strict(text: &str) -> Option<String> {
    static R: OnceLock<Regex> = OnceLock::new();
    regex_filter(re(&R, r"#### (\-?[0-9\.\,]+)"), text, false)
}

/// `The answer is (\-?[0-9\.\,]+).`, first match: the gsm8k_cot strict filter.
pub fn gsm8k_cot_strict(text: &str) -> Option<String> {
    static R: OnceLock<Regex> = OnceLock::new();
    regex_filter(re(&R, r"The answer is (\-?[0-9\.\,]+)."), text, false)
}

/// `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last match: the flexible filter of both GSM8K tasks.
pub fn gsm8k_flexible(text: &str) -> Option<String> {
    static R: OnceLock<Regex> = OnceLock::new();
    regex_filter(re(&R, r"(-?[$0-9.,]{2,})|(-?[0-9]+)"), text, true)
}

/// lm-eval's `exact_match` for GSM8K: remove `,`, `$`, everything up to `#### `, and a
/// final `.` from both sides, lower-case, compare.
pub fn gsm8k_exact_match(prediction: &str, reference: &str) -> bool {
    normalize(prediction) == normalize(reference)
}

fn normalize(s: &str) -> String {
    static IGNORE: OnceLock<[Regex; 4]> = OnceLock::new();
    let ignore = IGNORE.get_or_init(|| {
        [r",", r"\$", r"(?s).*#### ", r"\.$"].map(|p| Regex::new(p).expect("valid built-in regex"))
    });
    let mut out = s.to_string();
    for r in ignore {
        out = r.replace_all(&out, "").into_owned();
    }
    out.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_flexible_like_lm_eval() {
        let out = "She has 3 + 4 = 7 apples.\n#### 1,234.";
        assert_eq!(gsm8k_strict(out).as_deref(), Some("1,234."));
        assert_eq!(gsm8k_flexible(out).as_deref(), Some("1,234."));
        assert!(gsm8k_exact_match("1,234.", "1234"));
        assert_eq!(gsm8k_strict("the answer is 5"), None);
        assert_eq!(gsm8k_flexible("the answer is 5").as_deref(), Some("5"));
        assert_eq!(gsm8k_flexible("costs $18 total").as_deref(), Some("$18"));
        assert!(gsm8k_exact_match("$18", "18"));
        assert_eq!(gsm8k_flexible("no digits here"), None);
    }

    #[test]
    fn cot_strict_behaves_like_python_re() {
        // Python: re.findall(r"The answer is (\-?[0-9\.\,]+).", s) gives '8', '18', '1'
        // (the final `.` is any character but a newline, and the group backtracks to leave one).
        assert_eq!(
            gsm8k_cot_strict("So 8. The answer is 8.\n\n").as_deref(),
            Some("8")
        );
        assert_eq!(gsm8k_cot_strict("The answer is 18.").as_deref(), Some("18"));
        assert_eq!(gsm8k_cot_strict("The answer is 18").as_deref(), Some("1"));
    }

    #[test]
    fn exact_match_ignores_case_and_leading_work() {
        assert!(gsm8k_exact_match("-3", "-3"));
        assert!(!gsm8k_exact_match("3", "-3"));
        assert!(gsm8k_exact_match("so #### 42", "42"));
    }
}
