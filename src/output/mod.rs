//! Output for people: progress bars (only on a terminal) and text tables.

pub mod progress;
pub mod table;

use std::io::Write;

/// Writes to stdout and flushes, returning the error (a closed pipe: `frontier … | head`)
/// instead of panicking as `print!` does; `main` ends quietly with 0 on a broken pipe.
pub fn print(text: impl AsRef<str>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref().as_bytes())?;
    out.flush()
}

/// Whether an error is a write to a closed pipe (the reader, e.g. `head`, has had enough).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
