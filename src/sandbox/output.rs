//! Draining a child's stdout and stderr on their own threads, keeping only the last bytes
//! of each and telling the supervisor when the run has printed more than it may; and what
//! the supervisor hears about a run ([`Event`]).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result};

/// What the supervisor hears about a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The spawned process has exited (it is a zombie until we reap it).
    Exited,
    /// stdout plus stderr passed the output limit.
    OutputLimit,
    /// One output stream reached end-of-file.
    Drained,
}

/// Bytes read per `read` call.
const CHUNK: usize = 64 * 1024;

/// The last `cap` bytes of a stream.
#[derive(Debug)]
pub(crate) struct Tail {
    bytes: VecDeque<u8>,
    cap: usize,
}

impl Tail {
    pub(crate) fn new(cap: usize) -> Tail {
        Tail {
            bytes: VecDeque::with_capacity(cap),
            cap,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    /// The tail as text, starting at a character boundary; invalid UTF-8 becomes U+FFFD.
    pub(crate) fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        let start = bytes
            .iter()
            .take(3)
            .take_while(|b| (0x80..0xC0).contains(*b))
            .count();
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

/// A tail that a drain thread fills and the supervisor reads.
pub(crate) type SharedTail = Arc<Mutex<Tail>>;

/// Read `reader` to its end on a new thread. Every byte counts toward `total`; the thread
/// that takes `total` past `limit` sends [`Event::OutputLimit`] once. Reading goes on after
/// that (the child is being killed and must not block on a full pipe), but only the tail is
/// kept, so memory stays bounded whatever the child prints. Sends [`Event::Drained`] at EOF.
pub(crate) fn drain<R: Read + Send + 'static>(
    name: &str,
    mut reader: R,
    tail_bytes: usize,
    total: Arc<AtomicU64>,
    limit: u64,
    events: Sender<Event>,
) -> Result<SharedTail> {
    let tail = Arc::new(Mutex::new(Tail::new(tail_bytes)));
    let thread_tail = Arc::clone(&tail);
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                lock(&thread_tail).push(&buf[..n]);
                let before = total.fetch_add(n as u64, Ordering::SeqCst);
                if before <= limit && before + n as u64 > limit {
                    let _ = events.send(Event::OutputLimit);
                }
            }
            let _ = events.send(Event::Drained);
        })
        .with_context(|| format!("could not start the {name} thread"))?;
    Ok(tail)
}

/// Lock a tail; a panic while holding it cannot leave it inconsistent, so poisoning is ignored.
pub(crate) fn lock(tail: &SharedTail) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn keeps_only_the_last_bytes() {
        let mut tail = Tail::new(4);
        tail.push(b"ab");
        tail.push(b"cdef");
        assert_eq!(tail.text(), "cdef");
        tail.push(b"0123456789");
        assert_eq!(tail.text(), "6789");
    }

    #[test]
    fn starts_at_a_character_boundary() {
        let mut tail = Tail::new(4);
        tail.push("aé€".as_bytes()); // a, c3 a9, e2 82 ac: the last 4 bytes split "é"
        assert_eq!(tail.text(), "€");
    }

    #[test]
    fn drain_reports_the_limit_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let total = Arc::new(AtomicU64::new(0));
        let data = vec![b'x'; 300_000];
        let tail = drain(
            "test-drain",
            io::Cursor::new(data),
            16,
            total.clone(),
            1000,
            tx,
        )
        .unwrap();
        let events: Vec<Event> = rx.iter().take(2).collect();
        assert_eq!(events, vec![Event::OutputLimit, Event::Drained]);
        assert_eq!(total.load(Ordering::SeqCst), 300_000);
        assert_eq!(lock(&tail).text(), "x".repeat(16));
    }
}
