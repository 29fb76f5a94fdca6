//! A local stand-in for the Hugging Face Hub, for frontier's tests (a dev-only crate): repo
//! info and paginated tree listings, resolve URLs with HEAD, Range and the Hub's headers,
//! commits (a push moves `main`, old commits stay resolvable), gated and private repos, the
//! Hub's error codes, and switches for the real Hub's shapes — a relative 307 to
//! `/api/resolve-cache/...`, a 302 to a CDN on another host name that refuses
//! `Authorization`, weak ETags, short pages, truncated siblings — and faults (429 with
//! `Retry-After`, 5xx, cut connections, corrupt bytes).

mod routes;
mod state;
mod wire;

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use routes::Bases;
use state::{commit_id, Commit, Fault, FaultAnswer, MockFile, MockRepo, Source, State};

/// A Hub on `127.0.0.1:<free port>` and its CDN on `localhost:<another port>`, served from
/// background threads until dropped.
pub struct MockHub {
    hub_addr: SocketAddr,
    cdn_addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    bases: Bases,
}

#[derive(Clone, Copy)]
enum Host {
    Hub,
    Cdn,
}

impl MockHub {
    pub fn start() -> MockHub {
        let hub = TcpListener::bind("127.0.0.1:0").expect("binding the mock Hub");
        // The CDN is addressed as `localhost`: another host name than the Hub's, as a real
        // CDN is, so a client's same-host rules apply. Bound on 127.0.0.1, which is what
        // `localhost` resolves to first or after ::1 (clients try each address).
        let cdn = TcpListener::bind("127.0.0.1:0").expect("binding the mock CDN");
        let hub_addr = hub.local_addr().expect("mock Hub address");
        let cdn_addr = cdn.local_addr().expect("mock CDN address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            bases: Bases {
                hub: format!("http://{hub_addr}"),
                cdn: format!("http://localhost:{}", cdn_addr.port()),
            },
        });
        let threads = vec![
            accept(hub, Arc::clone(&shared), Host::Hub),
            accept(cdn, Arc::clone(&shared), Host::Cdn),
        ];
        MockHub {
            hub_addr,
            cdn_addr,
            shared,
            threads,
        }
    }

    /// A mock that answers the way huggingface.co does today: resolve → relative 307 to
    /// `/api/resolve-cache/...` → (LFS files) 302 to a signed CDN URL on `localhost`, weak
    /// ETags, tree listings in pages of 2, and a siblings list cut after one file.
    pub fn start_like_hub() -> MockHub {
        let mock = MockHub::start();
        mock.use_cdn(true);
        mock.use_resolve_cache(true);
        mock.use_weak_etags(true);
        mock.set_page_size(2);
        mock.truncate_siblings(Some(1));
        mock
    }

    /// `http://127.0.0.1:PORT`, to use as `HF_ENDPOINT`.
    pub fn url(&self) -> String {
        self.shared.bases.hub.clone()
    }

    /// `http://localhost:PORT`: where CDN redirects point.
    pub fn cdn_url(&self) -> String {
        self.shared.bases.cdn.clone()
    }

    /// The commit `main` of `repo` points to now.
    pub fn commit(&self, repo: &str) -> String {
        let state = self.lock();
        state
            .repos
            .iter()
            .find(|((_, id), _)| id == repo)
            .map_or_else(|| commit_id(repo, 0), |(_, entry)| entry.head().id.clone())
    }

    /// Adds (or replaces, in the current commit) an LFS file: listed with its size and
    /// sha256, served with the sha256 as ETag.
    pub fn add_file(&self, kind: &str, repo: &str, path: &str, bytes: Vec<u8>) {
        self.insert(kind, repo, path, lfs_file(bytes));
    }

    /// Adds a small plain-git file (like `config.json`): no `lfs` entry in the listing, a
    /// 40-hex ETag.
    pub fn add_small_file(&self, kind: &str, repo: &str, path: &str, bytes: Vec<u8>) {
        self.insert(kind, repo, path, small_file(bytes));
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
            etag: hex::encode(sha2::Digest::finalize(hasher)),
            lfs: true,
        };
        self.insert(kind, repo, path, file);
    }

    /// A new commit on `main` that replaces (or adds) a file, of the same kind as the one
    /// it replaces (an LFS file when new); earlier commits keep their files and stay
    /// resolvable by id.
    pub fn push(&self, repo: &str, path: &str, bytes: Vec<u8>) {
        let mut state = self.lock();
        let file = state.replacement(repo, path, bytes);
        state.push(repo, vec![(path.to_string(), file)]);
    }

    /// Like [`MockHub::push`], done by the mock itself right after it has served the last
    /// page of `repo`'s next tree listing: a push between a client's listing and its
    /// download.
    pub fn push_after_listing(&self, repo: &str, path: &str, bytes: Vec<u8>) {
        let mut state = self.lock();
        let file = state.replacement(repo, path, bytes);
        state
            .pushes
            .entry(repo.to_string())
            .or_default()
            .push((path.to_string(), file));
    }

    /// Makes `revision` (a branch or `refs/...` name) resolve to the head commit too;
    /// `main` and commit ids always do.
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

    /// `repo` is seen only with `Authorization: Bearer <token>`: anything else gets the
    /// answer for a repo that does not exist (401 `RepoNotFound` without a token, 404 with
    /// another one).
    pub fn set_private(&self, repo: &str, token: &str) {
        self.lock()
            .private
            .insert(repo.to_string(), token.to_string());
    }

    /// The next `count` requests whose target contains `pattern` get a 429 with
    /// `Retry-After: seconds` and `RateLimit: "api";r=0;t=seconds`.
    pub fn rate_limit_next(&self, pattern: &str, count: u32, seconds: u64) {
        self.queue(pattern, count, 429, Some(seconds), Some(seconds));
    }

    /// Like [`MockHub::rate_limit_next`] with only the `RateLimit` header (no
    /// `Retry-After`): the used-up window is the only word on how long to wait.
    pub fn rate_limit_window_next(&self, pattern: &str, count: u32, seconds: u64) {
        self.queue(pattern, count, 429, None, Some(seconds));
    }

    /// The next `count` requests whose target contains `pattern` get `status` (with
    /// `Retry-After` when given).
    pub fn fail_next(&self, pattern: &str, count: u32, status: u16, retry_after: Option<u64>) {
        self.queue(pattern, count, status, retry_after, None);
    }

    fn queue(
        &self,
        pattern: &str,
        count: u32,
        status: u16,
        retry_after: Option<u64>,
        reset: Option<u64>,
    ) {
        self.lock().faults.push(Fault {
            pattern: pattern.to_string(),
            count,
            answer: FaultAnswer {
                status,
                retry_after,
                reset,
            },
        });
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

    /// LFS files: resolve answers a 302 to a signed URL on the CDN host, carrying
    /// `X-Linked-Etag`, `X-Linked-Size` and `X-Repo-Commit`, as the real Hub does.
    pub fn use_cdn(&self, on: bool) {
        self.lock().modes.cdn = on;
    }

    /// resolve answers a relative 307 to `/api/resolve-cache/{plural}/{repo}/{commit}/...`
    /// first (for every file, then the CDN hop for LFS files when that is on).
    pub fn use_resolve_cache(&self, on: bool) {
        self.lock().modes.resolve_cache = on;
    }

    /// `ETag` and `X-Linked-Etag` as weak validators, `W/"..."`.
    pub fn use_weak_etags(&self, on: bool) {
        self.lock().modes.weak_etags = on;
    }

    /// Items per page of tree listings (the Hub's: 1000).
    pub fn set_page_size(&self, items: usize) {
        self.lock().modes.page_size = items;
    }

    /// The repo info's `siblings` list stops after `files` (the Hub's is cut too).
    pub fn truncate_siblings(&self, files: Option<usize>) {
        self.lock().modes.siblings_limit = files;
    }

    /// Body bytes sent for that file so far (all GETs on either host, cut ones included).
    pub fn bytes_served(&self, repo: &str, path: &str) -> u64 {
        self.lock()
            .served
            .get(&key(repo, path))
            .copied()
            .unwrap_or(0)
    }

    /// Every request so far as `"METHOD target range"` (`-` when there was no Range); the
    /// CDN's targets start with `/cdn/`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Requests that reached the CDN host with an `Authorization` header (it refused them).
    pub fn cdn_auth_attempts(&self) -> usize {
        self.lock().cdn_auth_attempts
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
                commits: vec![Commit {
                    id: commit_id(repo, 0),
                    files: Default::default(),
                }],
                revisions: vec!["main".to_string()],
            });
        entry
            .commits
            .last_mut()
            .expect("a mock repo has a commit")
            .files
            .insert(path.to_string(), file);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loops so they see the flag.
        let _ = TcpStream::connect(self.hub_addr);
        let _ = TcpStream::connect(self.cdn_addr);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>, host: Host) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || serve(stream, &shared, host));
        }
    })
}

fn serve(stream: TcpStream, shared: &Shared, host: Host) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = wire::read_request(&stream) else {
        return;
    };
    let range = request.header("range").unwrap_or("-").to_string();
    let response = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .requests
            .push(format!("{} {} {range}", request.method, request.target));
        match host {
            Host::Hub => routes::hub(&mut state, &request, &shared.bases),
            Host::Cdn => routes::cdn(&mut state, &request),
        }
    };
    let head_only = request.method == "HEAD";
    let _ = wire::write_response(stream, &shared.state, response, head_only);
}

/// A plain git file: its ETag is a 40-hex blob id.
fn small_file(bytes: Vec<u8>) -> MockFile {
    MockFile {
        etag: sha256_hex(&[b"blob ".as_slice(), &bytes].concat())[..40].to_string(),
        size: bytes.len() as u64,
        source: Source::Memory(Arc::new(bytes)),
        lfs: false,
    }
}

fn lfs_file(bytes: Vec<u8>) -> MockFile {
    MockFile {
        etag: sha256_hex(&bytes),
        size: bytes.len() as u64,
        source: Source::Memory(Arc::new(bytes)),
        lfs: true,
    }
}

fn key(repo: &str, path: &str) -> (String, String) {
    (repo.to_string(), path.to_string())
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
