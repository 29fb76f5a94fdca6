//! Progress bars (indicatif) on stderr, hidden when stderr is not a terminal or with --quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars should be drawn at all.
pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn hidden_unless(bar: ProgressBar, quiet: bool) -> ProgressBar {
    if !enabled(quiet) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// A bar counting bytes.
pub fn bytes_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(message.to_string());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    hidden_unless(bar, quiet)
}

/// A bar counting items (tensors, questions).
pub fn count_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(message.to_string());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    hidden_unless(bar, quiet)
}
