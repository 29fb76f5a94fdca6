//! Incremental detokenized text with stop-string detection: token pieces arrive as bytes
//! (possibly split inside a UTF-8 character), and generation stops at the first stop string.

/// Collects generated pieces and finds the first stop string.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    longest_stop: usize,
    text: String,
    pending: Vec<u8>,
    stopped_at: Option<usize>,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> StopMatcher {
        let stops: Vec<String> = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        StopMatcher {
            longest_stop: stops.iter().map(String::len).max().unwrap_or(0),
            stops,
            ..StopMatcher::default()
        }
    }

    /// Adds a token's bytes; returns true once a stop string has appeared.
    pub fn push(&mut self, piece: &[u8]) -> bool {
        if self.stopped_at.is_some() {
            return true;
        }
        let before = self.text.len();
        self.pending.extend_from_slice(piece);
        self.drain_valid_utf8(false);
        self.find_stop_from(before)
    }

    /// The text so far, cut before the stop string if one appeared. Bytes of an unfinished
    /// UTF-8 character at the very end are rendered as U+FFFD.
    pub fn finish(mut self) -> String {
        self.drain_valid_utf8(true);
        let mut text = self.text;
        if let Some(at) = self.stopped_at {
            text.truncate(at);
        }
        text
    }

    pub fn stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    fn find_stop_from(&mut self, before: usize) -> bool {
        if self.stops.is_empty() || self.text.len() == before {
            return false;
        }
        // A stop string may straddle the old text and the new piece.
        let mut start = before.saturating_sub(self.longest_stop.saturating_sub(1));
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let window = &self.text[start..];
        let first = self
            .stops
            .iter()
            .filter_map(|s| window.find(s.as_str()))
            .min();
        if let Some(pos) = first {
            self.stopped_at = Some(start + pos);
        }
        self.stopped_at.is_some()
    }

    fn drain_valid_utf8(&mut self, at_end: bool) {
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    self.text.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    self.text
                        .push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Invalid bytes: replace them and go on.
                        Some(bad) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        // An incomplete character at the end: wait for the next piece.
                        None if !at_end => {
                            self.pending.drain(..valid);
                            return;
                        }
                        None => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.clear();
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stop_across_pieces_is_cut() {
        let mut m = StopMatcher::new(&stops(&["\nQuestion:"]));
        assert!(!m.push(b"The answer is 4."));
        assert!(!m.push(b"\nQues"));
        assert!(m.push(b"tion: next"));
        assert_eq!(m.finish(), "The answer is 4.");
    }

    #[test]
    fn earliest_stop_wins() {
        let mut m = StopMatcher::new(&stops(&["\ndef", "\nclass"]));
        assert!(m.push(b"    return x\nclass A:\ndef f"));
        assert_eq!(m.finish(), "    return x");
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let euro = "€".as_bytes();
        let mut m = StopMatcher::new(&[]);
        m.push(&euro[..1]);
        m.push(&euro[1..]);
        m.push(b"!");
        assert_eq!(m.finish(), "€!");
    }

    #[test]
    fn invalid_bytes_become_replacement() {
        let mut m = StopMatcher::new(&[]);
        m.push(&[0xff, b'a']);
        assert_eq!(m.finish(), "\u{fffd}a");
    }
}
