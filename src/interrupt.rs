//! Stopping a long run cleanly: the first SIGINT (Ctrl-C) or SIGTERM (`kill`, a Slurm time
//! limit, a container stop) sets a flag that long runs check between units of work and
//! that ends the running worker, so everything stored stays stored and reports are written;
//! a second signal exits at once. Signals are handled by `signal-hook`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

struct Flags {
    stop: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

fn flags() -> &'static Flags {
    FLAGS.get_or_init(|| Flags {
        stop: Arc::new(AtomicBool::new(false)),
        signal: Arc::new(AtomicUsize::new(0)),
    })
}

/// Installs the handlers for SIGINT and SIGTERM (once is enough; later calls add nothing).
pub fn install() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let f = flags();
    for sig in [SIGINT, SIGTERM] {
        // The second signal: exit now, as the shell reports a death by that signal.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, f.stop.clone());
        let _ = signal_hook::flag::register_usize(sig, f.signal.clone(), sig as usize);
        let _ = signal_hook::flag::register(sig, f.stop.clone());
    }
}

/// The flag a stop request sets (worker runners watch it to end their worker).
pub fn stop_flag() -> Arc<AtomicBool> {
    flags().stop.clone()
}

pub fn interrupted() -> bool {
    flags().stop.load(Ordering::SeqCst)
}

/// The exit code of a run stopped by a signal: 128 + its number (130 for Ctrl-C, 143 for
/// SIGTERM).
pub fn exit_code() -> i32 {
    match flags().signal.load(Ordering::SeqCst) {
        0 => 130,
        sig => 128 + sig as i32,
    }
}
