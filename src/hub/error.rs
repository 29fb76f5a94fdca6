//! What a failed Hub request means for the user, on one line, in three distinct classes:
//! the Hub cannot be reached (a failure, exit 1, and no reason to try again in this run);
//! no such repo, revision or file, or a gate or token problem (bad input, exit 2); and other
//! trouble (server errors, rate limits, broken transfers: failures that name the URL).

use std::error::Error as _;
use std::fmt;
use std::io::Read;

use super::repo::{web_url, RepoKind};
use frontier_core::error::bad_input;

/// The Hub could not be reached: its name did not resolve, or nothing answered (refused or
/// timed-out connection). Found once, it holds for the rest of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub endpoint: String,
    /// What failed, e.g. `Dns Failed: failed to lookup address information: ...`.
    pub cause: String,
    /// What could not be had because of it (a file not in the cache, ...).
    pub detail: Option<String>,
}

impl Unreachable {
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Unreachable {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot reach the Hub at {} ({})",
            self.endpoint, self.cause
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unreachable {}

/// The unreachable Hub behind an error, if that is what it is.
pub fn unreachable_cause(err: &anyhow::Error) -> Option<&Unreachable> {
    err.chain().find_map(|e| e.downcast_ref::<Unreachable>())
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub(crate) enum Failed {
    /// Now or earlier in this run.
    Unreachable(Unreachable),
    /// An HTTP status or a broken connection, at `url` (after any redirects).
    Http {
        url: String,
        error: Box<ureq::Error>,
    },
    /// A 429 whose wait is longer than we are willing to wait.
    RateLimited { url: String, seconds: u64 },
    /// An answer that breaks the protocol (a bad redirect, too many of them).
    Protocol { url: String, message: String },
}

impl Failed {
    /// The HTTP status, if the server answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Failed::Http { error, .. } => match error.as_ref() {
                ureq::Error::Status(status, _) => Some(*status),
                ureq::Error::Transport(_) => None,
            },
            Failed::RateLimited { .. } => Some(429),
            Failed::Unreachable(_) | Failed::Protocol { .. } => None,
        }
    }
}

/// What a request was about, for the messages.
pub(crate) struct Target<'a> {
    pub endpoint: &'a str,
    pub kind: RepoKind,
    pub repo: &'a str,
    pub revision: &'a str,
    /// The file, for resolve requests; `None` for listings.
    pub path: Option<&'a str>,
    pub had_token: bool,
}

/// The Hub's answer, sorted by what the user has to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Gated,
    /// No such repo as far as this request can tell: it may also be private or gated (the
    /// Hub answers an anonymous request that way).
    RepoNotFound,
    RevisionNotFound,
    EntryNotFound,
    /// 401/403 that is not about a gate: the token is refused or lacks access.
    Denied,
    RateLimited,
    /// Anything else (5xx, ...).
    Other,
}

/// Sorts a status and `X-Error-Code` the way `huggingface_hub` does; a bare 401 to a
/// request without a token is the Hub's answer for a repo it will not show.
pub(crate) fn classify(
    status: u16,
    error_code: Option<&str>,
    had_token: bool,
    has_path: bool,
) -> Failure {
    match (error_code, status) {
        (Some("GatedRepo"), _) => Failure::Gated,
        (Some("RepoNotFound"), _) => Failure::RepoNotFound,
        (Some("RevisionNotFound"), _) => Failure::RevisionNotFound,
        (Some("EntryNotFound"), _) => Failure::EntryNotFound,
        (_, 401) if !had_token => Failure::RepoNotFound,
        (_, 401 | 403) => Failure::Denied,
        (_, 404) if has_path => Failure::EntryNotFound,
        (_, 404) => Failure::RepoNotFound,
        (_, 429) => Failure::RateLimited,
        _ => Failure::Other,
    }
}

/// The message for a gated repo, pointing at the page where its license is accepted.
pub(crate) fn gated_message(endpoint: &str, kind: RepoKind, repo: &str) -> String {
    format!(
        "{repo} is gated: accept its license at {} while logged in, then set HF_TOKEN to a token with read access",
        web_url(endpoint, kind, repo)
    )
}

/// The error for an HTTP status the Hub answered with.
pub(crate) fn status_error(
    target: &Target,
    method: &str,
    url: &str,
    status: u16,
    error_code: Option<&str>,
    server_message: Option<&str>,
) -> anyhow::Error {
    let Target {
        endpoint,
        kind,
        repo,
        revision,
        path,
        had_token,
    } = *target;
    match classify(status, error_code, had_token, path.is_some()) {
        Failure::Gated => {
            let mut msg = gated_message(endpoint, kind, repo);
            if had_token {
                msg.push_str(" (the token sent was refused for it)");
            }
            bad_input(msg)
        }
        Failure::RepoNotFound if had_token => bad_input(format!(
            "{} repo {repo} not found on {endpoint} (or the token sent cannot see it)",
            kind.as_str()
        )),
        Failure::RepoNotFound => bad_input(format!(
            "{} repo {repo} not found on {endpoint}, or private/gated: set HF_TOKEN",
            kind.as_str()
        )),
        Failure::RevisionNotFound => bad_input(format!("{repo}: revision '{revision}' not found")),
        Failure::EntryNotFound => bad_input(format!(
            "{repo}: no such file '{}' at revision '{revision}'",
            path.unwrap_or("")
        )),
        Failure::Denied => bad_input(format!(
            "{repo}: access denied (HTTP {status}); set HF_TOKEN to a token with read access to it"
        )),
        Failure::RateLimited => anyhow::anyhow!(
            "{method} {url}: rate limited by the Hub (HTTP 429) after every retry; try again later"
        ),
        Failure::Other => {
            let detail = server_message.map(|m| format!(": {m}")).unwrap_or_default();
            anyhow::anyhow!("{method} {url}: HTTP {status}{detail}")
        }
    }
}

/// Turns a failed request into the user's error: unreachable as itself, statuses through
/// [`status_error`], broken connections as a plain error naming the URL.
pub(crate) fn request_error(target: &Target, method: &str, failed: Failed) -> anyhow::Error {
    match failed {
        Failed::Unreachable(u) => u.into(),
        Failed::RateLimited { url, seconds } => anyhow::anyhow!(
            "{method} {url}: rate limited by the Hub (HTTP 429), which asks to wait {seconds} s, more than the {} s frontier waits; try again later",
            super::retry::MAX_SERVER_WAIT.as_secs()
        ),
        Failed::Protocol { url, message } => anyhow::anyhow!("{method} {url}: {message}"),
        Failed::Http { url, error } => match *error {
            ureq::Error::Status(status, response) => {
                let code = response.header("x-error-code").map(str::to_string);
                let header_message = response.header("x-error-message").map(str::to_string);
                let message = header_message.or_else(|| body_message(response));
                status_error(
                    target,
                    method,
                    &url,
                    status,
                    code.as_deref(),
                    message.as_deref(),
                )
            }
            ureq::Error::Transport(transport) => {
                anyhow::anyhow!("{method} {url}: {}", transport_cause(&transport))
            }
        },
    }
}

/// A transport error without its URL: `kind: message: source`.
pub(crate) fn transport_cause(transport: &ureq::Transport) -> String {
    let mut msg = transport.kind().to_string();
    if let Some(detail) = transport.message() {
        msg.push_str(&format!(": {detail}"));
    }
    if let Some(source) = transport.source() {
        msg.push_str(&format!(": {source}"));
    }
    msg
}

/// The `"error"` field of a JSON error body, or the body's first line (at most 300 bytes).
fn body_message(response: ureq::Response) -> Option<String> {
    let mut body = String::new();
    response
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut body)
        .ok()?;
    let from_json = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
    let text = from_json.unwrap_or(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    let mut end = line.len().min(300);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_string())
}
