//! The worker protocol, both sides: the parent writes one request as a JSON line on the
//! worker's stdin; the worker answers with one JSON line per [`Frame`] on its stdout — the
//! job's own events, and a [`Frame::Failed`] last if the job failed. The request and event
//! types are the job's; this module only frames them, so a worker need not share a host (or
//! a build of the job's types' internals) with anything but its parent's JSON.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use frontier_core::{exit_code, EXIT_BAD_INPUT};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One line a worker prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame<E> {
    /// An event of the job.
    Event(E),
    /// The job failed: nothing follows.
    Failed(Failure),
}

/// Why a job failed, as its worker reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    /// The cause was the input (a bad file, a bad value), not the work.
    pub bad_input: bool,
}

/// The worker's side: reads one request line from stdin, runs `job` with an emitter that
/// writes each event as a line on stdout (flushed), and reports a failure as the last line.
/// Returns the process exit code: 0, or the error's (2 for bad input, else 1).
///
/// Test hook: with `FRONTIER_WORKER_FAULT=abort:TEXT`, a worker whose request line contains
/// TEXT aborts as llama.cpp does on a failed assertion, so tests can show that one crashing
/// worker does not take the run down with it.
pub fn serve<R: DeserializeOwned, E: Serialize>(
    job: impl FnOnce(R, &mut dyn FnMut(E) -> Result<()>) -> Result<()>,
) -> Result<i32> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the job from stdin")?;
    inject_fault(&line);
    let request: R = serde_json::from_str(&line).context("parsing the job")?;
    // A full MMLU request line is tens of megabytes; it is not needed once parsed.
    drop(line);
    let stdout = std::io::stdout();
    let write = |frame: &Frame<E>| -> Result<()> {
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, frame)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    };
    let mut emit = |event: E| write(&Frame::Event(event));
    match job(request, &mut emit) {
        Ok(()) => Ok(0),
        Err(e) => {
            let code = exit_code(&e);
            write(&Frame::Failed(Failure {
                message: format!("{e:#}"),
                bad_input: code == EXIT_BAD_INPUT,
            }))?;
            Ok(code)
        }
    }
}

fn inject_fault(request_line: &str) {
    let Ok(spec) = std::env::var("FRONTIER_WORKER_FAULT") else {
        return;
    };
    if let Some(text) = spec.strip_prefix("abort:") {
        if request_line.contains(text) {
            eprintln!("GGML_ASSERT failed (injected by FRONTIER_WORKER_FAULT)");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_lines() {
        let event: Frame<u32> = Frame::Event(7);
        assert_eq!(serde_json::to_string(&event).unwrap(), r#"{"event":7}"#);
        let failed: Frame<u32> = Frame::Failed(Failure {
            message: "x.gguf: no such file".into(),
            bad_input: true,
        });
        let line = serde_json::to_string(&failed).unwrap();
        assert_eq!(serde_json::from_str::<Frame<u32>>(&line).unwrap(), failed);
    }
}
