//! The extraction rules family files choose, for the chat and tuned formats: numbers from
//! worked solutions (several rules tried in order) and code from replies (fenced blocks,
//! with the function signature re-attached when a reply holds only the body).

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A way to find the final number of a math answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberRule {
    /// `The answer is N` (also "The final answer is: $N").
    AnswerIs,
    /// `#### N`
    Hashes,
    /// `\boxed{N}`
    Boxed,
    /// The last number anywhere (lm-eval's flexible-extract).
    LastNumber,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid built-in regex"))
}

/// The first rule that finds a number, and the number (commas, `$` and a final `.` removed).
pub fn extract_number(text: &str, rules: &[NumberRule]) -> Option<(NumberRule, String)> {
    static ANSWER_IS: OnceLock<Regex> = OnceLock::new();
    static HASHES: OnceLock<Regex> = OnceLock::new();
    static BOXED: OnceLock<Regex> = OnceLock::new();
    for &rule in rules {
        let found = match rule {
            NumberRule::AnswerIs => re(
                &ANSWER_IS,
                r"(?i)the (?:final )?answer is[:\s]*\**\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)",
            )
            .captures_iter(text)
            .last()
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string()),
            NumberRule::Hashes => re(&HASHES, r"####\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)")
                .captures(text)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string()),
            NumberRule::Boxed => re(
                &BOXED,
                r"\\boxed\{\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*\}",
            )
            .captures_iter(text)
            .last()
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string()),
            NumberRule::LastNumber => super::lm_eval::gsm8k_flexible(text),
        };
        if let Some(n) = found {
            let clean = n.replace([',', '$'], "");
            let clean = clean.trim_end_matches('.').to_string();
            if !clean.is_empty() && clean != "-" {
                return Some((rule, clean));
            }
        }
    }
    None
}

/// How code is taken from a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeRule {
    /// The reply continues the prompt (lm-eval's raw HumanEval).
    Completion,
    /// The first fenced block (```python preferred), else the reply if it looks like code.
    CodeBlock,
}

/// The code in a reply, or `None` when there is none.
pub fn extract_code(reply: &str, rule: CodeRule) -> Option<String> {
    match rule {
        CodeRule::Completion => Some(reply.to_string()),
        CodeRule::CodeBlock => {
            static FENCE: OnceLock<Regex> = OnceLock::new();
            let fence = re(
                &FENCE,
                r"(?s)```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\z)",
            );
            let blocks: Vec<(String, String)> = fence
                .captures_iter(reply)
                .map(|c| (c[1].to_ascii_lowercase(), c[2].to_string()))
                .collect();
            let chosen = blocks
                .iter()
                .find(|(lang, _)| lang == "python" || lang == "py")
                .or_else(|| blocks.first())
                .map(|(_, code)| code.clone());
            match chosen {
                Some(code) if !code.trim().is_empty() => Some(code),
                Some(_) => None,
                // No fence: accept the reply when it already is code.
                None => {
                    let t = reply.trim_start();
                    (t.starts_with("def ")
                        || t.starts_with("import ")
                        || t.starts_with("from ")
                        || reply.starts_with("    "))
                    .then(|| reply.to_string())
                }
            }
        }
    }
}

/// The program to run for a HumanEval reply: when the extracted code defines the entry
/// point, the prompt's preamble (imports, helpers) + the code; otherwise the code is taken
/// as the function's body and re-attached to the prompt's signature.
pub fn assemble_program(
    prompt: &str,
    entry_point: &str,
    code: &str,
    test_and_check: &str,
) -> String {
    let def = format!("def {entry_point}(");
    let body = if code.contains(&def) {
        let preamble = prompt.find(&def).map_or("", |i| &prompt[..i]);
        format!("{preamble}{code}")
    } else {
        let mut indented = String::new();
        for line in code.lines() {
            if !line.trim().is_empty() && !line.starts_with(' ') && !line.starts_with('\t') {
                indented.push_str("    ");
            }
            indented.push_str(line);
            indented.push('\n');
        }
        format!("{prompt}{indented}")
    };
    format!("{body}\n{test_and_check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_by_rule_order() {
        let rules = [
            NumberRule::AnswerIs,
            NumberRule::Hashes,
            NumberRule::LastNumber,
        ];
        assert_eq!(
            extract_number("3+4=7. The answer is 7.", &rules),
            Some((NumberRule::AnswerIs, "7".into()))
        );
        assert_eq!(
            extract_number("So **the final answer is: $1,250**", &rules),
            Some((NumberRule::AnswerIs, "1250".into()))
        );
        assert_eq!(
            extract_number("work\n#### 42", &rules),
            Some((NumberRule::Hashes, "42".into()))
        );
        assert_eq!(
            extract_number("it costs 5 then 18", &rules),
            Some((NumberRule::LastNumber, "18".into()))
        );
        assert_eq!(extract_number("no idea", &rules), None);
        assert_eq!(
            extract_number("\\boxed{12}", &[NumberRule::Boxed]),
            Some((NumberRule::Boxed, "12".into()))
        );
    }

    #[test]
    fn code_blocks_prefer_python() {
        let r = "Here:\n```text\nnot code\n```\n```python\ndef f(x):\n    return x\n```\nDone.";
        assert_eq!(
            extract_code(r, CodeRule::CodeBlock).unwrap(),
            "def f(x):\n    return x\n"
        );
        assert_eq!(
            extract_code("```\nreturn 1\n", CodeRule::CodeBlock).unwrap(),
            "return 1\n"
        );
        assert_eq!(
            extract_code("I cannot help with that.", CodeRule::CodeBlock),
            None
        );
        assert!(extract_code("def f():\n    pass", CodeRule::CodeBlock).is_some());
    }

    #[test]
    fn programs_keep_the_preamble_or_reattach_the_signature() {
        let prompt =
            "from typing import List\n\ndef add(a: int, b: int) -> int:\n    \"\"\"Add.\"\"\"\n";
        let whole = assemble_program(
            prompt,
            "add",
            "def add(a, b):\n    return a + b\n",
            "check(add)",
        );
        assert!(whole.starts_with("from typing import List\n\ndef add(a, b):"));
        let body = assemble_program(prompt, "add", "return a + b", "check(add)");
        assert!(body.starts_with(prompt) && body.contains("    return a + b\n"));
        assert!(body.ends_with("\ncheck(add)"));
    }
}
