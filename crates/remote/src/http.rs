//! JSON over HTTP to the server: timeouts, the API key as a bearer token, and retries with
//! backoff on what a busy or restarting server answers (429, 502, 503, 504, a refused or
//! reset connection), honouring `Retry-After`. Other errors come back at once with the
//! server's own message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::spec::RemoteSpec;

/// Attempts per request before giving up.
const ATTEMPTS: u32 = 8;
/// The longest single wait between attempts, including a server's `Retry-After`.
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    spec: RemoteSpec,
    key: Option<String>,
    retries: Arc<AtomicU64>,
}

/// A request that did not succeed: its HTTP status when the server answered.
#[derive(Debug)]
pub struct HttpError {
    pub status: Option<u16>,
    pub message: String,
    /// The wait a 429/503 asked for in `Retry-After` (seconds form).
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

impl Http {
    pub fn new(spec: &RemoteSpec) -> Result<Http> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(spec.timeout_s))
            .timeout_write(Duration::from_secs(60))
            .build();
        Ok(Http {
            agent,
            key: spec.api_key()?,
            spec: spec.clone(),
            retries: Arc::default(),
        })
    }

    /// Requests that were tried again, so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.call("GET", path, None, true)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call("POST", path, Some(body), true)
    }

    /// The first request to a server: a refused connection fails at once (nothing is
    /// listening), while 503 (still loading the model) and 429 are waited out.
    pub fn first_contact(&self, path: &str) -> Result<Value> {
        self.call("GET", path, None, false)
    }

    /// One attempt only: for probing endpoints that may not exist.
    pub fn try_once(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, HttpError> {
        self.attempt(method, path, body)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        retry_transport: bool,
    ) -> Result<Value> {
        let mut wait = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            match self.attempt(method, path, body) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let retryable = match e.status {
                        None => retry_transport,
                        Some(code) => matches!(code, 429 | 502 | 503 | 504),
                    };
                    if !retryable || attempt == ATTEMPTS {
                        return Err(anyhow!(
                            "{method} {}{path}: {e}{}",
                            self.spec.display_url(),
                            if attempt > 1 {
                                format!(" (after {attempt} attempts)")
                            } else {
                                String::new()
                            }
                        ));
                    }
                    let advised = e.retry_after;
                    let pause = advised.unwrap_or(wait).min(MAX_WAIT);
                    tracing::warn!(
                        "{method} {}{path}: {e}; trying again in {:.1} s{} ({attempt}/{})",
                        self.spec.display_url(),
                        pause.as_secs_f64(),
                        if advised.is_some() {
                            ", as the server asks"
                        } else {
                            ""
                        },
                        ATTEMPTS - 1
                    );
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(pause);
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    fn attempt(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, HttpError> {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.spec.url));
        if let Some(key) = &self.key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let response = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match response {
            Ok(r) => {
                let text = r.into_string().map_err(|e| HttpError {
                    status: None,
                    message: format!("reading the response: {e}"),
                    retry_after: None,
                })?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&text).map_err(|e| HttpError {
                    status: Some(200),
                    message: format!("the response is not JSON ({e}): {}", snippet(&text)),
                    retry_after: None,
                })
            }
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = r
                    .header("retry-after")
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .map(|s| Duration::from_secs_f64(s.max(0.0)));
                let text = r.into_string().unwrap_or_default();
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/error/message")
                            .or_else(|| v.get("message"))
                            .or_else(|| v.get("detail"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| snippet(&text));
                Err(HttpError {
                    status: Some(code),
                    message: format!(
                        "HTTP {code}{}{detail}",
                        if detail.is_empty() { "" } else { ": " },
                    ),
                    retry_after,
                })
            }
            Err(ureq::Error::Transport(t)) => Err(HttpError {
                status: None,
                message: format!("cannot reach the server ({t})"),
                retry_after: None,
            }),
        }
    }
}

fn snippet(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}
