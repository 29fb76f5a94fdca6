//! Which Python interpreter the sandbox runs, resolved once when a sandbox is made, and
//! which of its directories must be bound back in under the hidden home directories.
//!
//! `python3` on PATH may be a shim (pyenv, asdf) whose real interpreter lives under a home
//! directory, e.g. `/root/.pyenv/versions/3.11.7`, which the sandbox hides with a tmpfs.
//! We ask the interpreter for `sys.executable`, `sys.prefix` and `sys.base_prefix`:
//!
//! * if none of them is under a hidden directory, that interpreter is used as it is;
//! * otherwise the system interpreter `/usr/bin/python3` is preferred when it exists. This is
//!   the robust choice: it is visible through the read-only root with no extra binds, it is
//!   readable by the unprivileged uid the sandbox drops to (bwrap then runs without
//!   privileges and cannot even reach a bind source under `/root`, which is mode 0700), and
//!   binding a home-directory prefix back in would also expose whatever else lives there
//!   (user site-packages, caches). HumanEval programs need only the standard library;
//! * only when there is no system interpreter are the prefixes bound back in read-only, and
//!   the self-test in `detect.rs` tells whether that works.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The system interpreter preferred over one hidden under a home directory.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Prints executable, prefix, base prefix and version, one per line.
const QUERY: &str = "import sys\nprint(sys.executable)\nprint(sys.prefix)\nprint(sys.base_prefix)\nprint(sys.version.split()[0])";

/// The interpreter a sandbox runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    pub executable: PathBuf,
    /// Directories to bind back in, read-only, after the home directories are hidden.
    pub binds: Vec<PathBuf>,
    /// How it was chosen, for the report.
    pub note: String,
}

/// What an interpreter says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    executable: PathBuf,
    prefix: PathBuf,
    base_prefix: PathBuf,
    version: String,
}

impl Answer {
    fn is_under_any(&self, hidden: &[PathBuf]) -> bool {
        [&self.executable, &self.prefix, &self.base_prefix]
            .iter()
            .any(|p| hidden.iter().any(|h| p.starts_with(h)))
    }
}

/// The top-level directories the bwrap backend replaces with an empty tmpfs.
pub(crate) const STANDARD_HIDDEN: [&str; 4] = ["/home", "/root", "/tmp", "/run"];

/// The directories every sandbox hides: the standard ones, and `$HOME` when it is
/// somewhere else (and not `/`).
pub(crate) fn hidden_dirs(home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = STANDARD_HIDDEN.iter().map(PathBuf::from).collect();
    if let Some(extra) = extra_home(home) {
        dirs.push(extra);
    }
    dirs
}

/// `$HOME` when it must be hidden on its own: absolute, not `/`, and not already under
/// one of the standard hidden directories.
pub(crate) fn extra_home(home: Option<&Path>) -> Option<PathBuf> {
    let home = home?;
    let is_covered = STANDARD_HIDDEN.iter().any(|s| home.starts_with(s));
    if !home.is_absolute() || home == Path::new("/") || is_covered || !home.is_dir() {
        return None;
    }
    Some(home.to_path_buf())
}

/// Resolve the interpreter as the module docs explain.
pub(crate) fn resolve(hidden: &[PathBuf]) -> Result<Interpreter> {
    let on_path = ask(Path::new("python3"));
    let system = Path::new(SYSTEM_PYTHON);
    match on_path {
        Ok(answer) if !answer.is_under_any(hidden) => Ok(Interpreter {
            note: format!("Python {}, python3 on PATH", answer.version),
            executable: answer.executable,
            binds: Vec::new(),
        }),
        Ok(answer) => {
            if let Some(sys_answer) = ask(system).ok().filter(|a| !a.is_under_any(hidden)) {
                return Ok(Interpreter {
                    note: format!(
                        "Python {}, the system interpreter: python3 on PATH resolves to {}, \
                         under a directory the sandbox hides",
                        sys_answer.version,
                        answer.executable.display()
                    ),
                    executable: system.to_path_buf(),
                    binds: Vec::new(),
                });
            }
            let mut binds = vec![answer.prefix.clone()];
            if answer.base_prefix != answer.prefix {
                binds.push(answer.base_prefix.clone());
            }
            Ok(Interpreter {
                note: format!(
                    "Python {} from PATH, its prefix bound back in read-only",
                    answer.version
                ),
                executable: answer.executable,
                binds,
            })
        }
        Err(path_err) => match ask(system) {
            Ok(sys_answer) => Ok(Interpreter {
                note: format!(
                    "Python {}, the system interpreter (python3 on PATH: {path_err:#})",
                    sys_answer.version
                ),
                executable: system.to_path_buf(),
                binds: Vec::new(),
            }),
            Err(sys_err) => {
                bail!("no usable Python 3: python3 on PATH: {path_err:#}; {SYSTEM_PYTHON}: {sys_err:#}")
            }
        },
    }
}

/// Run `python` once to learn where it lives.
fn ask(python: &Path) -> Result<Answer> {
    let output = Command::new(python)
        .args(["-S", "-c", QUERY])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{} exited with {}: {}",
            python.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_answer(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("unexpected answer from {}", python.display()))
}

fn parse_answer(text: &str) -> Result<Answer> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let [executable, prefix, base_prefix, version] = lines.as_slice() else {
        bail!("expected 4 lines, got {:?}", text);
    };
    if executable.is_empty() {
        bail!("sys.executable is empty");
    }
    Ok(Answer {
        executable: PathBuf::from(executable),
        prefix: PathBuf::from(prefix),
        base_prefix: PathBuf::from(base_prefix),
        version: version.to_string(),
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn answer_under_root_is_hidden() {
        let answer = parse_answer(
            "/root/.pyenv/versions/3.11.7/bin/python3\n/root/.pyenv/versions/3.11.7\n/root/.pyenv/versions/3.11.7\n3.11.7\n",
        )
        .unwrap();
        assert!(answer.is_under_any(&hidden_dirs(None)));
        let system = parse_answer("/usr/bin/python3\n/usr\n/usr\n3.11.2\n").unwrap();
        assert!(!system.is_under_any(&hidden_dirs(None)));
    }

    #[test]
    fn odd_answers_are_errors() {
        assert!(parse_answer("").is_err());
        assert!(parse_answer("a\nb\n").is_err());
    }

    #[test]
    fn home_slash_is_never_hidden() {
        assert_eq!(extra_home(Some(Path::new("/"))), None);
        assert_eq!(extra_home(Some(Path::new("/root"))), None);
        assert_eq!(extra_home(Some(Path::new("relative"))), None);
        assert_eq!(
            extra_home(Some(Path::new("/usr"))),
            Some(PathBuf::from("/usr"))
        );
    }

    #[test]
    fn resolves_something_that_runs() {
        let interp = resolve(&hidden_dirs(None)).unwrap();
        assert!(interp.executable.exists(), "{interp:?}");
    }
}
