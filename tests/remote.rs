//! The remote engine against a real llama-server on 127.0.0.1 serving the test model (built
//! by scripts/llama-tools from the crate's llama.cpp sources): the same items scored and
//! generated as the local engine, retries through a proxy that drops connections, answers
//! 503 and stalls, resume after SIGTERM, and the API key kept out of everything written.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{frontier, model, SMOLLM_F16, SMOLLM_Q4_K_M};

/// One llama-server at a time: on two cores, servers and evaluations side by side starve
/// each other's threads.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The folder holding llama-server, or why there is none.
fn tools_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("FRONTIER_LLAMA_TOOLS_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/llama-tools"))
        .arg("--print-only")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct LlamaServer {
    child: Child,
    port: u16,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LlamaServer {
    /// llama-server with `slots` parallel sequences of 4096 tokens each; `None` (with the
    /// reason printed) where it is not built.
    fn start(file: &Path, slots: u32) -> Option<LlamaServer> {
        let bin = match tools_bin() {
            Ok(b) => b.join("llama-server"),
            Err(why) => {
                eprintln!("skipped: no llama-server ({why}); scripts/llama-tools builds it");
                return None;
            }
        };
        let port = free_port();
        let child = Command::new(&bin)
            .arg("-m")
            .arg(file)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &(4096 * slots).to_string(), "-np", &slots.to_string()])
            .args(["-t", "2", "--no-webui"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let server = LlamaServer { child, port };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if ureq::get(&format!("{}/health", server.url()))
                .call()
                .is_ok()
            {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("llama-server did not become healthy in 120 s");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// What each stored item came out as: output (or, for MMLU, the choice) and verdict.
fn items(out: &Path) -> BTreeMap<String, (String, Option<String>, bool)> {
    let store = frontier::store::Store::open(&out.join("results.sqlite")).unwrap();
    let mut all = BTreeMap::new();
    for t in store.task_runs(None).unwrap() {
        for i in store.items(t.id).unwrap() {
            all.insert(
                format!("{}/{}", t.task, i.item_id),
                (i.output, i.extracted, i.correct),
            );
        }
    }
    all
}

fn eval(out: &Path, backend: Option<&str>, extra: &[&str]) -> std::process::Output {
    eval_file(SMOLLM_Q4_K_M, out, backend, extra)
}

fn eval_file(
    file: &str,
    out: &Path,
    backend: Option<&str>,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = frontier();
    cmd.arg("eval").arg(model(file)).arg("--out").arg(out);
    if let Some(b) = backend {
        cmd.args(["--backend", b]);
    }
    cmd.args(extra).output().unwrap()
}

const TASKS: [&str; 8] = [
    "--tasks",
    "mmlu,gsm8k",
    "--subjects",
    "astronomy,college_biology",
    "--limit",
    "mmlu=6,gsm8k=4",
    "--format",
    "raw",
];

#[test]
fn remote_scores_and_generates_the_same_items_as_local() {
    let _one = serial();
    // F16: llama.cpp builds agree best there (at Q4_K_M near-ties part more often).
    let Some(server) = LlamaServer::start(&model(SMOLLM_F16), 4) else {
        return;
    };
    // What the server can do.
    let probe = frontier()
        .args(["probe", &server.url(), "--json"])
        .output()
        .unwrap();
    common::assert_success(&probe);
    let caps: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(caps["kind"], "llama_server");
    assert_eq!(caps["tokenizer"], true);
    assert_eq!(caps["slots"], 4);
    assert_eq!(caps["n_vocab"], 49152);

    let dir = tempfile::tempdir().unwrap();
    let (local, remote) = (dir.path().join("local"), dir.path().join("remote"));
    common::assert_success(&eval_file(SMOLLM_F16, &local, None, &TASKS));
    let backend = format!("openai:{}", server.url());
    let o = eval_file(SMOLLM_F16, &remote, Some(&backend), &TASKS);
    common::assert_success(&o);
    let (l, r) = (items(&local), items(&remote));
    assert_eq!(l.len(), 2 * 6 + 4);
    assert_eq!(l.keys().collect::<Vec<_>>(), r.keys().collect::<Vec<_>>());
    // The same llama.cpp sources on both sides, different batch shapes: MMLU choices agree
    // and their log-probabilities are close; a generation may part at a near-tie.
    let mmlu_same = l
        .iter()
        .filter(|(k, v)| k.starts_with("mmlu") && r[*k].1 == v.1)
        .count();
    assert!(mmlu_same >= 11, "local {l:?}\nremote {r:?}");
    for (k, v) in l.iter().filter(|(k, _)| k.starts_with("mmlu")) {
        for (a, b) in letter_logprobs(&v.0).iter().zip(letter_logprobs(&r[k].0)) {
            assert!((a - b).abs() < 0.1, "{k}: local {} remote {}", v.0, r[k].0);
        }
    }
    let gsm_same = l
        .iter()
        .filter(|(k, v)| k.starts_with("gsm8k") && r[*k].0 == v.0)
        .count();
    assert!(gsm_same >= 3, "local {l:?}\nremote {r:?}");
    // The cell says where it ran and keeps no secret.
    let store = frontier::store::Store::open(&remote.join("results.sqlite")).unwrap();
    let cells = store.cells().unwrap();
    let config = &cells[0].info.config;
    assert_eq!(config["remote"]["server"], "llama-server");
    assert_eq!(config["remote"]["url"], server.url());
    assert!(cells[0].info.model.ends_with("(remote)"));
}

/// A proxy in front of the server that answers 503 (Retry-After: 1), drops the connection or
/// stalls, in turn, on some of the requests; the rest it forwards.
fn faulty_proxy(upstream: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let faults = Arc::new(AtomicUsize::new(0));
    let counter = Arc::new(AtomicUsize::new(0));
    let f = faults.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let f = f.clone();
            std::thread::spawn(move || serve_one(conn, upstream, n, &f));
        }
    });
    (port, faults)
}

fn serve_one(mut client: TcpStream, upstream: u16, n: usize, faults: &AtomicUsize) {
    let Some(request) = read_request(&mut client) else {
        return;
    };
    let is_work = request.starts_with(b"POST /completion");
    match n % 6 {
        1 if is_work => {
            faults.fetch_add(1, Ordering::SeqCst);
            let _ = client.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 62\r\nConnection: close\r\n\r\n{\"error\":{\"message\":\"Loading model\",\"code\":503,\"type\":\"x\"}}  ",
            );
            return;
        }
        3 if is_work => {
            faults.fetch_add(1, Ordering::SeqCst);
            return; // dropped: the client sees the connection close with no answer
        }
        5 if is_work => {
            faults.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(2));
        }
        _ => {}
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let _ = server.write_all(&with_connection_close(&request));
    let mut response = Vec::new();
    let _ = server.read_to_end(&mut response);
    let _ = client.write_all(&response);
}

/// One HTTP request: headers and a Content-Length body.
fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = conn.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
    }
}

fn with_connection_close(request: &[u8]) -> Vec<u8> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&request[..end]);
    let mut out: Vec<u8> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes();
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(&request[end + 4..]);
    out
}

#[test]
fn faults_are_retried_and_a_stopped_run_resumes() {
    let _one = serial();
    // One slot: requests decoded together change each other's arithmetic in the last bits,
    // and a near-tie then parts; alone, the same request gives the same answer every time.
    let Some(server) = LlamaServer::start(&model(SMOLLM_Q4_K_M), 1) else {
        return;
    };
    let (port, faults) = faulty_proxy(server.port);
    let dir = tempfile::tempdir().unwrap();
    let (direct, proxied) = (dir.path().join("direct"), dir.path().join("proxied"));
    let tasks = ["--tasks", "gsm8k", "--limit", "6", "--format", "raw"];
    common::assert_success(&eval(
        &direct,
        Some(&format!("openai:{}", server.url())),
        &tasks,
    ));

    // Through the proxy, stopped by SIGTERM once two items are stored, then resumed.
    let backend = format!("openai:http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontier"))
        .arg("eval")
        .arg(model(SMOLLM_Q4_K_M))
        .args(["--backend", &backend, "--out"])
        .arg(&proxied)
        .args(tasks)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let stored = |p: &Path| {
        frontier::store::Store::open(&p.join("results.sqlite"))
            .ok()
            .and_then(|s| {
                let runs = s.task_runs(None).ok()?;
                Some(
                    runs.iter()
                        .map(|t| s.items(t.id).map_or(0, |i| i.len()))
                        .sum::<usize>(),
                )
            })
            .unwrap_or(0)
    };
    while stored(&proxied) < 2 && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let before = stored(&proxied);
    assert!((2..6).contains(&before), "{before}");

    let o = eval(&proxied, Some(&backend), &tasks);
    let stderr2 = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr2}");
    assert!(
        stderr2.contains(&format!(
            "{} items scored now, {before} already stored",
            6 - before
        )),
        "{stderr2}"
    );
    assert!(
        faults.load(Ordering::SeqCst) >= 2,
        "the proxy injected faults"
    );
    assert!(
        stderr2.contains("requests sent again"),
        "retries are said: {stderr2}"
    );
    // Every item the same as without faults.
    let (d, p) = (items(&direct), items(&proxied));
    assert_eq!(d, p);
}

#[test]
fn bad_servers_and_keys_are_clear_errors_and_the_key_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listening: one line, exit 1, at once.
    let port = free_port();
    let start = Instant::now();
    let o = eval(
        dir.path(),
        Some(&format!("openai:http://127.0.0.1:{port}")),
        &["--tasks", "gsm8k", "--limit", "1"],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // A scheme that is not a server, and a key variable that is not set: exit 2.
    for (backend, extra, words) in [
        ("openai:ftp://x", vec![], "http:// or https://"),
        ("vllm", vec![], "unknown backend"),
        (
            "openai:http://127.0.0.1:1",
            vec!["--api-key-env", "FRONTIER_TEST_UNSET_KEY"],
            "FRONTIER_TEST_UNSET_KEY: the variable is not set",
        ),
    ] {
        let mut args = vec!["--tasks", "gsm8k", "--limit", "1"];
        args.extend(extra);
        let o = eval(dir.path(), Some(backend), &args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{backend}: {stderr}");
        assert!(stderr.contains(words), "{backend}: {stderr}");
    }

    // The key goes to the server and nowhere else.
    let _one = serial();
    let Some(server) = LlamaServer::start(&model(SMOLLM_Q4_K_M), 1) else {
        return;
    };
    let secret = "sk-frontier-test-5ec2e7";
    let out = dir.path().join("keyed");
    let o = frontier()
        .env("FRONTIER_TEST_KEY", secret)
        .arg("eval")
        .arg(model(SMOLLM_Q4_K_M))
        .args(["--backend", &format!("openai:{}", server.url())])
        .args(["--api-key-env", "FRONTIER_TEST_KEY", "-v", "--out"])
        .arg(&out)
        .args(["--tasks", "mmlu", "--subjects", "anatomy", "--limit", "2"])
        .output()
        .unwrap();
    common::assert_success(&o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains(secret));
    for entry in walk(&out) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the key",
            entry.display()
        );
    }
}

/// "A: -0.95, B: -1.83, …" → the four numbers.
fn letter_logprobs(output: &str) -> Vec<f64> {
    output
        .split(", ")
        .filter_map(|p| p.split(": ").nth(1)?.parse().ok())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn speed_measures_a_server_from_outside_at_each_concurrency() {
    let _one = serial();
    let Some(server) = LlamaServer::start(&model(SMOLLM_Q4_K_M), 2) else {
        return;
    };
    let o = frontier()
        .args(["speed", "--backend", &format!("openai:{}", server.url())])
        .args([
            "-p",
            "64",
            "-n",
            "16",
            "-r",
            "2",
            "--concurrency",
            "1,2",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    common::assert_success(&o);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    for (r, c) in rows.iter().zip([1, 2]) {
        assert_eq!(r["concurrency"], c);
        assert_eq!(r["n_prompt"], 64);
        assert!(r["ttft_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["tg_ts_per_request"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["tg_ts_total"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["ttft_source"], "server prompt time");
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("llama-server"), "{stderr}");
}
