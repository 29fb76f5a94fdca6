//! When a failed request is worth another try and how long to wait first: a 408, 429 or
//! 5xx waits as long as the server's `RateLimit` (on a 429 with nothing left) or
//! `Retry-After` (delay-seconds) asks, within a bound, else a short backoff; a broken
//! connection is retried; a failed DNS lookup or connection is not (the Hub is unreachable).

use std::time::Duration;

/// The longest wait a server may ask for; longer, and the request fails at once. The Hub's
/// rate-limit windows are 5 minutes: waiting out one is worth it (`huggingface_hub` waits
/// without a bound).
pub(crate) const MAX_SERVER_WAIT: Duration = Duration::from_secs(300);

/// No address for the host, or nothing accepted the connection.
pub(crate) fn is_unreachable(err: &ureq::Error) -> bool {
    matches!(
        err,
        ureq::Error::Transport(t) if matches!(
            t.kind(),
            ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::ProxyConnect
        )
    )
}

/// Worth trying again: the connection broke, or the server is busy, limiting or failing.
pub(crate) fn is_retryable(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Status(status, _) => matches!(status, 408 | 429 | 500..=599),
        ureq::Error::Transport(t) => matches!(
            t.kind(),
            ureq::ErrorKind::Io | ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader
        ),
    }
}

/// Seconds the server asks us to wait before the next request, if it says: on a 429, the
/// `RateLimit` reset when no request is left, else `Retry-After` (as `huggingface_hub`).
pub(crate) fn server_wait(status: u16, response: &ureq::Response) -> Option<u64> {
    if status == 429 {
        if let Some((0, reset)) = response.header("ratelimit").and_then(parse_ratelimit) {
            return Some(reset);
        }
    }
    response.header("retry-after").and_then(parse_retry_after)
}

/// `Retry-After: 120` → 120. The HTTP-date form is not used by the Hub and is ignored.
pub(crate) fn parse_retry_after(value: &str) -> Option<u64> {
    let value = value.trim();
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

/// `RateLimit: "api";r=0;t=55` → (remaining 0, reset in 55 s) (IETF draft 09, the subset
/// the Hub sends).
pub(crate) fn parse_ratelimit(value: &str) -> Option<(u64, u64)> {
    let mut remaining = None;
    let mut reset = None;
    for part in value.split(';').skip(1) {
        let (key, number) = part.split_once('=')?;
        let number: u64 = number.trim().parse().ok()?;
        match key.trim() {
            "r" => remaining = Some(number),
            "t" => reset = Some(number),
            _ => {}
        }
    }
    Some((remaining?, reset?))
}

/// 250 ms, 500 ms, 1 s, ... at most 4 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt.saturating_sub(1).min(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_delay_seconds_only() {
        assert_eq!(parse_retry_after("2"), Some(2));
        assert_eq!(parse_retry_after(" 120 "), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn ratelimit_header_gives_remaining_and_reset() {
        assert_eq!(parse_ratelimit("\"api\";r=0;t=55"), Some((0, 55)));
        assert_eq!(
            parse_ratelimit("\"resolvers\";r=2999;t=172"),
            Some((2999, 172))
        );
        assert_eq!(parse_ratelimit("\"api\"; r = 0 ; t = 7"), Some((0, 7)));
        assert_eq!(parse_ratelimit("\"api\";r=0"), None);
        assert_eq!(parse_ratelimit("garbage"), None);
    }

    #[test]
    fn backoff_grows_and_stops_at_four_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(9), Duration::from_secs(4));
    }
}
