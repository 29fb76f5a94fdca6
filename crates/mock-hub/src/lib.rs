//! A local stand-in for the Hugging Face Hub, for frontier's tests (a dev-only crate): repo
//! listings, resolve URLs with HEAD, Range and the Hub's headers, gated repos, 404 codes, an
//! optional CDN redirect, and fault injection (cut connections, corrupt bytes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// A Hub on `127.0.0.1:<free port>`, served from a background thread until dropped.
pub struct MockHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Keyed by (kind, repo id).
    repos: BTreeMap<(String, String), MockRepo>,
    /// repo id → the token that opens it.
    gated: HashMap<String, String>,
    cuts: HashMap<(String, String), u64>,
    corrupt: HashSet<(String, String)>,
    served: HashMap<(String, String), u64>,
    requests: Vec<String>,
    cdn: bool,
}

struct MockRepo {
    commit: String,
    revisions: Vec<String>,
    files: BTreeMap<String, MockFile>,
}

#[derive(Clone)]
struct MockFile {
    source: Source,
    size: u64,
    /// sha256 for LFS files, a 40-hex id for plain git files.
    etag: String,
    lfs: bool,
}

#[derive(Clone)]
enum Source {
    Memory(Arc<Vec<u8>>),
    Disk(PathBuf),
}

impl MockHub {
    pub fn start() -> MockHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the mock Hub");
        let addr = listener.local_addr().expect("mock Hub address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let base = format!("http://{addr}");
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept_shared);
                let base = base.clone();
                std::thread::spawn(move || serve(stream, &shared, &base));
            }
        });
        MockHub {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, to use as `HF_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The commit every revision of `repo` resolves to.
    pub fn commit(&self, repo: &str) -> String {
        commit_of(repo)
    }

    /// Adds (or replaces) an LFS file: listed with its size and sha256, served with the
    /// sha256 as ETag.
    pub fn add_file(&self, kind: &str, repo: &str, path: &str, bytes: Vec<u8>) {
        let etag = sha256_hex(&bytes);
        let file = MockFile {
            size: bytes.len() as u64,
            source: Source::Memory(Arc::new(bytes)),
            etag,
            lfs: true,
        };
        self.insert(kind, repo, path, file);
    }

    /// Adds a small plain-git file (like `config.json`): no `lfs` entry in the listing, a
    /// 40-hex ETag.
    pub fn add_small_file(&self, kind: &str, repo: &str, path: &str, bytes: Vec<u8>) {
        let etag = sha256_hex(&[b"blob ".as_slice(), &bytes].concat())[..40].to_string();
        let file = MockFile {
            size: bytes.len() as u64,
            source: Source::Memory(Arc::new(bytes)),
            etag,
            lfs: false,
        };
        self.insert(kind, repo, path, file);
    }

    /// Adds an LFS file served from disk in chunks, never held in memory (it is hashed once,
    /// here).
    pub fn add_file_from_disk(&self, kind: &str, repo: &str, path: &str, file: &Path) {
        let mut reader = File::open(file).expect("opening a file for the mock Hub");
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .expect("reading a file for the mock Hub");
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut hasher, &buf[..n]);
            size += n as u64;
        }
        let file = MockFile {
            source: Source::Disk(file.to_path_buf()),
            size,
            etag: hex(&sha2::Digest::finalize(hasher)),
            lfs: true,
        };
        self.insert(kind, repo, path, file);
    }

    /// Makes `revision` (a branch or `refs/...` name) resolve to the repo's commit too; `main`
    /// and the commit itself always do.
    pub fn add_revision(&self, repo: &str, revision: &str) {
        let mut state = self.lock();
        for ((_, id), entry) in state.repos.iter_mut() {
            if id == repo {
                entry.revisions.push(revision.to_string());
            }
        }
    }

    /// Files of `repo` answer 401 (no token) or 403 (another token) with
    /// `X-Error-Code: GatedRepo` unless `Authorization: Bearer <token>` is sent.
    pub fn set_gated(&self, repo: &str, token: &str) {
        self.lock()
            .gated
            .insert(repo.to_string(), token.to_string());
    }

    /// The next GET of that file that would send more than `after_bytes` body bytes closes the
    /// connection after sending exactly `after_bytes`.
    pub fn cut_next_download(&self, repo: &str, path: &str, after_bytes: u64) {
        self.lock().cuts.insert(key(repo, path), after_bytes);
    }

    /// Serves other bytes than the listed sha256 for that file (every byte flipped).
    pub fn corrupt(&self, repo: &str, path: &str) {
        self.lock().corrupt.insert(key(repo, path));
    }

    /// Answers resolve requests of LFS files with a 302 to `/cdn/...` carrying
    /// `X-Linked-Etag`, `X-Linked-Size` and `X-Repo-Commit`, as the real Hub does.
    pub fn use_cdn(&self, on: bool) {
        self.lock().cdn = on;
    }

    /// Body bytes sent for that file so far (all GETs, cut ones included).
    pub fn bytes_served(&self, repo: &str, path: &str) -> u64 {
        self.lock()
            .served
            .get(&key(repo, path))
            .copied()
            .unwrap_or(0)
    }

    /// Every request so far as `"METHOD target range"` (`-` when there was no Range).
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn insert(&self, kind: &str, repo: &str, path: &str, file: MockFile) {
        assert!(
            kind == "model" || kind == "dataset",
            "mock Hub kind must be \"model\" or \"dataset\", not {kind:?}"
        );
        let mut state = self.lock();
        let entry = state
            .repos
            .entry((kind.to_string(), repo.to_string()))
            .or_insert_with(|| MockRepo {
                commit: commit_of(repo),
                revisions: vec!["main".to_string()],
                files: BTreeMap::new(),
            });
        entry.files.insert(path.to_string(), file);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn key(repo: &str, path: &str) -> (String, String) {
    (repo.to_string(), path.to_string())
}

fn commit_of(repo: &str) -> String {
    sha256_hex(format!("commit of {repo}").as_bytes())[..40].to_string()
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Body {
    Empty,
    Bytes(Vec<u8>),
    File {
        key: (String, String),
        source: Source,
        start: u64,
        len: u64,
        corrupt: bool,
        cut: Option<u64>,
    },
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn json(self, body: String) -> Response {
        let mut response = self.header("Content-Type", "application/json");
        response.body = Body::Bytes(body.into_bytes());
        response
    }

    fn error(status: u16, code: &str, message: &str) -> Response {
        Response::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
            .json(format!("{{\"error\":{}}}", json_string(message)))
    }
}

fn serve(stream: TcpStream, shared: &Shared, base: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&stream) else {
        return;
    };
    let range = request.header("range").unwrap_or("-").to_string();
    let response = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .requests
            .push(format!("{} {} {range}", request.method, request.target));
        route(&mut state, &request, base)
    };
    let head_only = request.method == "HEAD";
    let _ = write_response(stream, shared, response, head_only);
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Some(Request {
        method,
        target,
        headers,
    })
}

fn write_response(
    mut stream: TcpStream,
    shared: &Shared,
    response: Response,
    head_only: bool,
) -> std::io::Result<()> {
    let length = match &response.body {
        Body::Empty => 0,
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::File { len, .. } => *len,
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes())?;
    if head_only {
        return stream.flush();
    }
    match response.body {
        Body::Empty => {}
        Body::Bytes(bytes) => stream.write_all(&bytes)?,
        Body::File {
            key,
            source,
            start,
            len,
            corrupt,
            cut,
        } => {
            let limit = cut.map_or(len, |c| c.min(len));
            send_file(&mut stream, shared, &key, &source, start, limit, corrupt)?;
            if cut.is_some() {
                stream.flush()?;
                return stream.shutdown(Shutdown::Both);
            }
        }
    }
    stream.flush()
}

fn send_file(
    stream: &mut TcpStream,
    shared: &Shared,
    key: &(String, String),
    source: &Source,
    start: u64,
    len: u64,
    corrupt: bool,
) -> std::io::Result<()> {
    let mut reader: Box<dyn Read> = match source {
        Source::Memory(bytes) => {
            let from = start as usize;
            let to = (start + len) as usize;
            Box::new(std::io::Cursor::new(bytes[from..to].to_vec()))
        }
        Source::Disk(path) => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(start))?;
            Box::new(file.take(len))
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if corrupt {
            buf[..n].iter_mut().for_each(|b| *b ^= 0xff);
        }
        // Counted before the write so a client that has read everything sees the total.
        add_served(shared, key, n as i64);
        if let Err(e) = stream.write_all(&buf[..n]) {
            add_served(shared, key, -(n as i64));
            return Err(e);
        }
        left -= n as u64;
    }
    Ok(())
}

fn add_served(shared: &Shared, key: &(String, String), n: i64) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let served = state.served.entry(key.clone()).or_insert(0);
    *served = served.saturating_add_signed(n);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Other",
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

fn route(state: &mut State, request: &Request, base: &str) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::error(405, "MethodNotAllowed", "only GET and HEAD");
    }
    let path = request.target.split('?').next().unwrap_or("");
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["api", plural, rest @ ..] => match kind_of_plural(plural) {
            Some(kind) => info(state, kind, rest),
            None => Response::error(404, "NotFound", "no such API"),
        },
        ["cdn", kind, repo, file] => cdn(state, request, kind, repo, file),
        ["datasets", rest @ ..] => resolve(state, request, base, "dataset", rest),
        rest => resolve(state, request, base, "model", rest),
    }
}

fn kind_of_plural(plural: &str) -> Option<&'static str> {
    match plural {
        "models" => Some("model"),
        "datasets" => Some("dataset"),
        _ => None,
    }
}

/// `GET /api/{models|datasets}/{repo}[/revision/{rev}]`.
fn info(state: &State, kind: &str, rest: &[&str]) -> Response {
    let (repo, revision) = match rest {
        [repo @ .., "revision", rev] if !repo.is_empty() => (repo.join("/"), rev.to_string()),
        repo if !repo.is_empty() => (repo.join("/"), "main".to_string()),
        _ => return Response::error(404, "RepoNotFound", "Repository not found"),
    };
    let Some(entry) = state.repos.get(&(kind.to_string(), repo.clone())) else {
        return Response::error(404, "RepoNotFound", "Repository not found");
    };
    if !knows_revision(entry, &revision) {
        return Response::error(
            404,
            "RevisionNotFound",
            &format!("Invalid rev id: {revision}"),
        );
    }
    let siblings: Vec<String> = entry
        .files
        .iter()
        .map(|(path, file)| {
            let blob_id = &sha256_hex(file.etag.as_bytes())[..40];
            let lfs = if file.lfs {
                format!(
                    ",\"lfs\":{{\"sha256\":\"{}\",\"size\":{},\"pointerSize\":134}}",
                    file.etag, file.size
                )
            } else {
                String::new()
            };
            format!(
                "{{\"rfilename\":{},\"size\":{},\"blobId\":\"{blob_id}\"{lfs}}}",
                json_string(path),
                file.size
            )
        })
        .collect();
    Response::new(200).json(format!(
        "{{\"_id\":\"{}\",\"id\":{},\"private\":false,\"sha\":\"{}\",\"siblings\":[{}]}}",
        &entry.commit[..24],
        json_string(&repo),
        entry.commit,
        siblings.join(",")
    ))
}

/// `GET|HEAD /[datasets/]{repo}/resolve/{rev}/{path}`.
fn resolve(
    state: &mut State,
    request: &Request,
    base: &str,
    kind: &str,
    rest: &[&str],
) -> Response {
    let Some(at) = rest.iter().position(|s| *s == "resolve") else {
        return Response::error(404, "NotFound", "no such page");
    };
    if at == 0 || at > 2 || rest.len() < at + 3 {
        return Response::error(404, "NotFound", "no such page");
    }
    let repo = rest[..at].join("/");
    let revision = rest[at + 1];
    let path = rest[at + 2..].join("/");
    let Some(entry) = state.repos.get(&(kind.to_string(), repo.clone())) else {
        return Response::error(404, "RepoNotFound", "Repository not found");
    };
    if let Some(token) = state.gated.get(&repo) {
        let auth = request.header("authorization");
        if auth != Some(format!("Bearer {token}").as_str()) {
            let status = if auth.is_some() { 403 } else { 401 };
            let message = format!(
                "Access to {kind} {repo} is restricted. You must have access to it and be authenticated to access it. Please log in."
            );
            return Response::error(status, "GatedRepo", &message);
        }
    }
    if !knows_revision(entry, revision) {
        return Response::error(
            404,
            "RevisionNotFound",
            &format!("Invalid rev id: {revision}"),
        );
    }
    let commit = entry.commit.clone();
    let Some(file) = entry.files.get(&path).cloned() else {
        return Response::error(404, "EntryNotFound", &format!("{path} does not exist"))
            .header("X-Repo-Commit", commit);
    };
    if state.cdn && file.lfs {
        let location = format!(
            "{base}/cdn/{kind}/{}/{}",
            percent_encode(&repo),
            percent_encode(&path)
        );
        let pointer_oid = &sha256_hex(file.etag.as_bytes())[..40];
        return Response::new(302)
            .header("Location", location)
            .header("ETag", format!("\"{pointer_oid}\""))
            .header("X-Linked-Etag", format!("\"{}\"", file.etag))
            .header("X-Linked-Size", file.size.to_string())
            .header("X-Repo-Commit", commit);
    }
    serve_file(state, request, &repo, &path, &file).header("X-Repo-Commit", commit)
}

/// `GET|HEAD /cdn/{kind}/{repo}/{path}`: the redirect target, like a signed CDN URL.
fn cdn(state: &mut State, request: &Request, kind: &str, repo: &str, path: &str) -> Response {
    let file = state
        .repos
        .get(&(kind.to_string(), repo.to_string()))
        .and_then(|entry| entry.files.get(path).cloned());
    match file {
        Some(file) => serve_file(state, request, repo, path, &file),
        None => Response::error(404, "NotFound", "no such object"),
    }
}

fn serve_file(
    state: &mut State,
    request: &Request,
    repo: &str,
    path: &str,
    file: &MockFile,
) -> Response {
    let size = file.size;
    let range = match request.header("range").map(|r| parse_range(r, size)) {
        Some(Err(())) => {
            return Response::error(416, "RangeNotSatisfiable", "Range Not Satisfiable")
                .header("Content-Range", format!("bytes */{size}"))
        }
        Some(Ok(range)) => range,
        None => None,
    };
    let (status, start, len) = match range {
        Some((start, end)) => (206, start, end - start + 1),
        None => (200, 0, size),
    };
    let mut response = Response::new(status)
        .header("Content-Type", "application/octet-stream")
        .header("Accept-Ranges", "bytes")
        .header("ETag", format!("\"{}\"", file.etag));
    if status == 206 {
        let end = start + len - 1;
        response = response.header("Content-Range", format!("bytes {start}-{end}/{size}"));
    }
    if request.method == "GET" {
        let key = key(repo, path);
        let cut = match state.cuts.get(&key) {
            Some(&after) if len > after => state.cuts.remove(&key),
            _ => None,
        };
        response.body = Body::File {
            corrupt: state.corrupt.contains(&key),
            key,
            source: file.source.clone(),
            start,
            len,
            cut,
        };
    } else {
        // HEAD: announce the length without sending anything.
        response.body = Body::File {
            key: key(repo, path),
            source: file.source.clone(),
            start,
            len,
            corrupt: false,
            cut: None,
        };
    }
    response
}

fn knows_revision(entry: &MockRepo, revision: &str) -> bool {
    revision == entry.commit || entry.revisions.iter().any(|r| r == revision)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive (start, end); `Ok(None)` for a header we
/// ignore (serve everything), `Err` when the start is past the end.
fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((from, to)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (from, to) = (from.trim(), to.trim());
    if from.is_empty() {
        let Ok(n) = to.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(());
        }
        return Ok(Some((size.saturating_sub(n), size - 1)));
    }
    let Ok(start) = from.parse::<u64>() else {
        return Ok(None);
    };
    if start >= size {
        return Err(());
    }
    let end = match to.parse::<u64>() {
        Ok(end) if end >= start => end.min(size - 1),
        Ok(_) => return Ok(None),
        Err(_) if to.is_empty() => size - 1,
        Err(_) => return Ok(None),
    };
    Ok(Some((start, end)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
