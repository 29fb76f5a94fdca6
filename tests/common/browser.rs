//! A headless Chromium driven over the DevTools protocol (one websocket, JSON commands), for
//! testing the HTML report in a real browser. `Browser::start` returns None, after printing
//! why, where no Chromium is installed (`scripts/setup` installs Debian's).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
    /// Console errors and uncaught exceptions seen so far.
    pub errors: Vec<String>,
    /// Events not yet looked at.
    events: Vec<Value>,
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .filter_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
        .next()
}

impl Browser {
    pub fn start() -> Option<Browser> {
        let Some(exe) = chromium() else {
            eprintln!("skipping: no chromium on PATH (scripts/setup installs Debian's chromium)");
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(i) = l.find("ws://") {
                        break l[i..].trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("skipping: chromium did not start its DevTools endpoint");
                    return None;
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let (ws, _) = tungstenite::connect(url).unwrap();
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: None,
            _profile: profile,
            errors: Vec::new(),
            events: Vec::new(),
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().map(String::from);
        b.call("Runtime.enable", json!({}));
        b.call("Log.enable", json!({}));
        b.call("Page.enable", json!({}));
        Some(b)
    }

    fn note(&mut self, v: &Value) {
        let method = v["method"].as_str().unwrap_or("");
        match method {
            "Runtime.exceptionThrown" => self
                .errors
                .push(v["params"]["exceptionDetails"].to_string()),
            "Runtime.consoleAPICalled" if v["params"]["type"] == "error" => {
                self.errors.push(v["params"]["args"].to_string())
            }
            "Log.entryAdded" if v["params"]["entry"]["level"] == "error" => {
                self.errors.push(v["params"]["entry"]["text"].to_string())
            }
            _ => {}
        }
    }

    /// Sends a command (to the page's session once attached) and waits for its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.ws.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.note(&v);
            self.events.push(v);
        }
    }

    /// Waits for an event by name (up to `secs`).
    pub fn wait_for(&mut self, method: &str, secs: u64) {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            self.events.remove(i);
            return;
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            let Message::Text(text) = self.ws.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            self.note(&v);
            if v["method"] == method {
                return;
            }
        }
        panic!("no {method} within {secs} s");
    }

    pub fn open(&mut self, file: &Path) {
        self.call(
            "Page.navigate",
            json!({"url": format!("file://{}", file.display())}),
        );
        self.wait_for("Page.loadEventFired", 30);
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// A PNG of the page.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
