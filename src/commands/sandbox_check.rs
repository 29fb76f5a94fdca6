//! `frontier sandbox-check`: which protections the HumanEval sandbox has here.

use anyhow::Result;

use crate::cli::SandboxCheckArgs;
use crate::sandbox::{Protections, Sandbox, SandboxPolicy};

pub fn run(args: &SandboxCheckArgs) -> Result<i32> {
    let policy = SandboxPolicy::default();
    let protections = Protections::detect(&policy);
    let mut text = format!("{}\n", protections.report());
    if protections.is_strong() {
        text.push_str("verdict: strong; HumanEval runs without --allow-weak-sandbox\n");
    } else {
        text.push_str(&format!(
            "verdict: weak (missing: {}); HumanEval refuses to run unless --allow-weak-sandbox\n",
            protections.missing().join(", ")
        ));
    }
    crate::output::print(text)?;
    if args.run {
        let sandbox = Sandbox::new(SandboxPolicy {
            allow_weak: true,
            ..policy
        })?;
        let outcome =
            sandbox.run_python("import sys\nprint('hello from', sys.version.split()[0])\n")?;
        crate::output::print(format!(
            "test run: {:?}, {} ({} ms): {}\n",
            outcome.verdict,
            outcome.reason,
            outcome.duration_ms,
            outcome.stdout_tail.trim()
        ))?;
    }
    Ok(0)
}
