//! Logging for the process: our messages and llama.cpp's (routed into `tracing` by
//! `frontier-llama`) on stderr, llama.cpp's only with `-v`.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Sets up logging for the process: `verbosity` 0 shows our warnings only, 1 adds
/// llama.cpp's info lines and our own, 2 debug, 3 trace.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let llama_level = if verbosity == 0 {
        LevelFilter::OFF
    } else {
        level
    };
    let shown = frontier_llama::LOG_TARGETS
        .iter()
        .fold(Targets::new(), |t, target| {
            t.with_target(*target, llama_level)
        })
        .with_default(level);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_ansi(std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal());
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(shown)
        .try_init();
}
