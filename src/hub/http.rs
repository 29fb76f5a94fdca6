//! Every request the Hub client sends: the token only to the endpoint's own origin, redirects
//! followed by hand (the token never follows one to another origin, such as a CDN), tries
//! again as [`super::retry`] says, and the first failed DNS lookup or connection marks the
//! Hub unreachable for the rest of the run.

use std::time::Duration;

use url::Url;

use super::client::Hub;
use super::error::{transport_cause, Failed, Unreachable};
use super::retry::{backoff, is_retryable, is_unreachable, server_wait, MAX_SERVER_WAIT};

const MAX_REDIRECTS: usize = 10;

/// How far a request follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// To the end, wherever it leads.
    All,
    /// Within the origin it started at: a redirect to another origin (the CDN) is the
    /// answer, its headers are the metadata (the metadata HEAD, as `huggingface_hub`).
    SameOrigin,
}

/// A response and the URL that gave it (after redirects).
pub(crate) struct Answer {
    pub url: String,
    pub response: ureq::Response,
}

impl Hub {
    /// `method url` (with `Range` when given), following redirects as `follow` says and
    /// trying again after a 408, 429, 5xx or a broken connection.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        range: Option<&str>,
        follow: Follow,
    ) -> Result<Answer, Failed> {
        let mut attempt = 0;
        loop {
            let failed = match self.send_once(method, url, range, follow) {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            let Failed::Http { url: at, error } = &failed else {
                return Err(failed);
            };
            if attempt >= self.retries || !is_retryable(error) {
                return Err(failed);
            }
            attempt += 1;
            let asked = match error.as_ref() {
                ureq::Error::Status(status, response) => server_wait(*status, response),
                ureq::Error::Transport(_) => None,
            };
            let wait = match asked {
                Some(seconds) if Duration::from_secs(seconds) > MAX_SERVER_WAIT => {
                    return Err(Failed::RateLimited {
                        url: at.clone(),
                        seconds,
                    })
                }
                Some(seconds) => {
                    tracing::warn!(
                        "{}: waiting {seconds} s as the Hub asks (Retry-After/RateLimit), then trying again ({attempt}/{})",
                        short(method, at, error),
                        self.retries
                    );
                    Duration::from_secs(seconds)
                }
                None => {
                    let wait = backoff(attempt);
                    tracing::warn!(
                        "{}: trying again in {} ms ({attempt}/{})",
                        short(method, at, error),
                        wait.as_millis(),
                        self.retries
                    );
                    wait
                }
            };
            std::thread::sleep(wait);
        }
    }

    /// One try, redirects included.
    fn send_once(
        &self,
        method: &str,
        url: &str,
        range: Option<&str>,
        follow: Follow,
    ) -> Result<Answer, Failed> {
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let to_hub = self.is_hub_origin(&current);
            if to_hub {
                if let Some(known) = self.unreachable.get() {
                    return Err(Failed::Unreachable(known.clone()));
                }
            }
            let mut request = self
                .agent
                .request(method, &current)
                .set("Accept-Encoding", "identity");
            if let (true, Some(token)) = (to_hub, &self.config.token) {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            if let Some(range) = range {
                request = request.set("Range", range);
            }
            let response = match request.call() {
                Ok(response) => response,
                Err(e) if to_hub && is_unreachable(&e) => {
                    let ureq::Error::Transport(t) = &e else {
                        unreachable!("is_unreachable holds for transport errors only")
                    };
                    let found = Unreachable {
                        endpoint: self.config.endpoint.clone(),
                        cause: transport_cause(t),
                        detail: None,
                    };
                    let _ = self.unreachable.set(found.clone());
                    return Err(Failed::Unreachable(found));
                }
                Err(e) => {
                    return Err(Failed::Http {
                        url: current,
                        error: Box::new(e),
                    })
                }
            };
            let status = response.status();
            let location = response.header("location").map(str::to_string);
            let (true, Some(location)) = ((300..400).contains(&status), location) else {
                return Ok(Answer {
                    url: current,
                    response,
                });
            };
            let next = join(&current, &location).ok_or_else(|| Failed::Protocol {
                url: current.clone(),
                message: format!("redirects to '{location}', which is not an http(s) URL"),
            })?;
            if follow == Follow::SameOrigin && !same_origin(&current, &next) {
                return Ok(Answer {
                    url: current,
                    response,
                });
            }
            current = next;
        }
        Err(Failed::Protocol {
            url: current,
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn is_hub_origin(&self, url: &str) -> bool {
        same_origin(url, &self.config.endpoint)
    }
}

/// `Location` resolved against the URL that answered (relative, absolute-path or absolute).
pub(crate) fn join(base: &str, location: &str) -> Option<String> {
    let next = Url::parse(base).ok()?.join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then(|| next.to_string())
}

/// Same scheme, host and port: where a token may go.
pub(crate) fn same_origin(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// "GET url: HTTP 503" for the retry messages.
fn short(method: &str, url: &str, error: &ureq::Error) -> String {
    match error {
        ureq::Error::Status(429, _) => format!("{method} {url}: rate limited (HTTP 429)"),
        ureq::Error::Status(status, _) => format!("{method} {url}: HTTP {status}"),
        ureq::Error::Transport(t) => format!("{method} {url}: {}", transport_cause(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_join_like_a_browser() {
        let base = "http://127.0.0.1:5/org/m/resolve/abc/a%20b.gguf";
        assert_eq!(
            join(base, "/api/resolve-cache/models/org/m/abc/x.gguf?q=1").as_deref(),
            Some("http://127.0.0.1:5/api/resolve-cache/models/org/m/abc/x.gguf?q=1")
        );
        assert_eq!(
            join(base, "http://localhost:7/cdn/ff?Signature=s").as_deref(),
            Some("http://localhost:7/cdn/ff?Signature=s")
        );
        assert_eq!(
            join(base, "//cdn.example/x").as_deref(),
            Some("http://cdn.example/x")
        );
        assert_eq!(join(base, "file:///etc/passwd"), None);
    }

    #[test]
    fn origins_differ_by_scheme_host_or_port() {
        let hub = "http://127.0.0.1:5";
        assert!(same_origin(hub, "http://127.0.0.1:5/api/x"));
        assert!(!same_origin(hub, "http://localhost:5/api/x"));
        assert!(!same_origin(hub, "http://127.0.0.1:6/api/x"));
        assert!(!same_origin(hub, "https://127.0.0.1:5/api/x"));
        assert!(same_origin(
            "https://huggingface.co",
            "https://huggingface.co:443/x"
        ));
    }
}
