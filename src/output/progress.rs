//! Progress bars (indicatif) on stderr, hidden when stderr is not a terminal or with
//! --quiet; in their place a long run sent to a file prints a progress line a minute.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

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

/// Progress as plain lines for a run whose stderr is not a terminal (a log file, CI): at most
/// one line per interval with a bar's count, rate and time left, so a long run is not silent.
pub struct ProgressLines {
    last: Instant,
    every: Duration,
    enabled: bool,
}

impl ProgressLines {
    /// Lines every minute, only when bars are hidden for want of a terminal (not --quiet).
    pub fn new(quiet: bool) -> ProgressLines {
        ProgressLines {
            last: Instant::now(),
            every: Duration::from_secs(60),
            enabled: !quiet && !std::io::stderr().is_terminal(),
        }
    }

    /// Prints `bar`'s state as a line when the interval has passed since the last one.
    pub fn after_inc(&mut self, bar: &ProgressBar) {
        if self.enabled && self.last.elapsed() >= self.every {
            self.last = Instant::now();
            let (done, total) = (bar.position(), bar.length().unwrap_or(0));
            let secs = bar.elapsed().as_secs_f64();
            eprintln!("{}", line(&bar.message(), done, total, secs));
        }
    }
}

/// `label: 120/1319 items (9%), 0.21 items/s, about 1h 35m left`.
fn line(label: &str, done: u64, total: u64, elapsed_s: f64) -> String {
    let rate = done as f64 / elapsed_s.max(1e-9);
    let left = total.saturating_sub(done) as f64 / rate.max(1e-9);
    format!(
        "{label}: {done}/{total} items ({:.0}%), {rate:.2} items/s, about {} left",
        100.0 * done as f64 / total.max(1) as f64,
        frontier_core::units::duration(left)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_rate_and_time_left() {
        assert_eq!(
            line("mmlu", 250, 1000, 100.0),
            "mmlu: 250/1000 items (25%), 2.50 items/s, about 5m 00s left"
        );
    }
}
