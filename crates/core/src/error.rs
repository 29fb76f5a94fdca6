//! The two kinds of failure `main` tells apart: bad input from the user (exit code 2) and
//! everything that goes wrong while doing valid work (exit code 1).

use std::fmt;

/// A problem with what the user gave us: a missing or corrupt file, an unknown name, a value
/// out of range. Its message names the thing and the problem, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(String);

impl BadInput {
    pub fn new(msg: impl Into<String>) -> BadInput {
        BadInput(msg.into())
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand for returning a [`BadInput`] as an `anyhow::Error`.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    BadInput::new(msg).into()
}

pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;

/// The process exit code for an error: 2 when any cause in its chain is bad input.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<BadInput>()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_anywhere_in_the_chain_exits_2() {
        let e = Err::<(), _>(bad_input("x.gguf: no such file"))
            .context("loading model")
            .unwrap_err();
        assert_eq!(exit_code(&e), EXIT_BAD_INPUT);
        assert_eq!(exit_code(&anyhow::anyhow!("decode failed")), EXIT_FAILURE);
    }
}
