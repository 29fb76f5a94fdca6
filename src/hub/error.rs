//! What a failed Hub request means for the user, on one line: gated, private or missing repos,
//! revisions and files are bad input (exit 2); network trouble and server errors are plain
//! failures that name the URL (exit 1).

use std::error::Error as _;
use std::io::Read;

use super::repo::{web_url, RepoKind};
use frontier_core::error::bad_input;

/// What a request was about, for the messages.
pub(crate) struct Target<'a> {
    pub endpoint: &'a str,
    pub kind: RepoKind,
    pub repo: &'a str,
    pub revision: &'a str,
    /// The file, for resolve requests; `None` for the repo listing.
    pub path: Option<&'a str>,
    pub had_token: bool,
}

/// The Hub's answer, sorted by what the user has to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Gated,
    RepoNotFound,
    RevisionNotFound,
    EntryNotFound,
    /// 401/403 that is not about a gate: the token is refused or lacks access.
    Denied,
    /// Anything else (5xx, 429, ...).
    Other,
}

/// Sorts a status and `X-Error-Code` the way `huggingface_hub` does.
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
        (_, 401) if !had_token => Failure::Gated,
        (_, 401 | 403) => Failure::Denied,
        (_, 404) if has_path => Failure::EntryNotFound,
        (_, 404) => Failure::RepoNotFound,
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
        Failure::RepoNotFound => {
            let hint = if had_token {
                ""
            } else {
                " (if it is private, set HF_TOKEN)"
            };
            bad_input(format!(
                "{} repo {repo} not found on {endpoint}{hint}",
                kind.as_str()
            ))
        }
        Failure::RevisionNotFound => bad_input(format!("{repo}: revision '{revision}' not found")),
        Failure::EntryNotFound => bad_input(format!(
            "{repo}: file '{}' not found at revision '{revision}'",
            path.unwrap_or("")
        )),
        Failure::Denied => bad_input(format!(
            "{repo}: access denied (HTTP {status}); set HF_TOKEN to a token with read access to it"
        )),
        Failure::Other => {
            let detail = server_message.map(|m| format!(": {m}")).unwrap_or_default();
            anyhow::anyhow!("{method} {url}: HTTP {status}{detail}")
        }
    }
}

/// Turns a ureq error into the user's error: statuses through [`status_error`], network
/// problems as a plain error naming the URL.
pub(crate) fn request_error(
    target: &Target,
    method: &str,
    url: &str,
    err: ureq::Error,
) -> anyhow::Error {
    match err {
        ureq::Error::Status(status, response) => {
            let code = response.header("x-error-code").map(str::to_string);
            let header_message = response.header("x-error-message").map(str::to_string);
            let message = header_message.or_else(|| body_message(response));
            status_error(
                target,
                method,
                url,
                status,
                code.as_deref(),
                message.as_deref(),
            )
        }
        ureq::Error::Transport(transport) => {
            let mut msg = format!("{method} {url}: {}", transport.kind());
            if let Some(detail) = transport.message() {
                msg.push_str(&format!(": {detail}"));
            }
            if let Some(source) = transport.source() {
                msg.push_str(&format!(": {source}"));
            }
            anyhow::anyhow!(msg)
        }
    }
}

/// Worth trying again: the network broke, or the server is busy or failing.
pub(crate) fn is_retryable(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Status(status, _) => *status == 429 || *status >= 500,
        ureq::Error::Transport(t) => !matches!(
            t.kind(),
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme
        ),
    }
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
