//! The Hub client against the mock Hub's imitations of the real Hub, one behaviour at a
//! time: the relative 307 to `/api/resolve-cache/...` and the 302 to a CDN on another host
//! name that refuses `Authorization`, weak ETags, `RepoNotFound` 401s, tree listings in
//! pages, 429 with `Retry-After`, and a push between listing and download.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use frontier::catalog::quant::match_quant;
use frontier::hub::{Hub, HubConfig, Listing, RepoFile, RepoKind};
use frontier_core::error::{exit_code, EXIT_BAD_INPUT};
use frontier_gguf::writer::GgufBuilder;
use frontier_mock_hub::{sha256_hex, MockHub};

fn hub_for(mock: &MockHub, cache: &Path, token: Option<&str>) -> Hub {
    Hub::new(HubConfig {
        endpoint: mock.url(),
        token: token.map(str::to_string),
        cache_dir: cache.to_path_buf(),
        offline: false,
        listings_dir: None,
    })
    .unwrap()
}

/// Deterministic bytes that do not repeat early.
fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn get(hub: &Hub, listing: &Listing, path: &str) -> anyhow::Result<std::path::PathBuf> {
    let file: &RepoFile = listing.file(path).expect("listed");
    hub.download(listing, file, &mut |_, _| {})
}

/// Requests whose line starts with `prefix`.
fn requests_starting(mock: &MockHub, prefix: &str) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter(|r| r.starts_with(prefix))
        .collect()
}

// --- the relative 307 hop and the CDN on another host ------------------------------------

/// resolve → 307 (relative) → /api/resolve-cache/... → 302 → http://localhost:PORT/cdn/...:
/// the token opens the gated repo on the Hub's host and never reaches the CDN's.
#[test]
fn a_download_follows_the_307_and_the_302_and_the_token_stays_on_the_hub() {
    let mock = MockHub::start_like_hub();
    let bytes = payload(300_000, 1);
    let sha = sha256_hex(&bytes);
    mock.add_file("model", "org/gated", "m.Q4_K_M.gguf", bytes.clone());
    mock.add_small_file("model", "org/gated", "config.json", b"{}".to_vec());
    mock.set_gated("org/gated", "hf_secret");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), Some("hf_secret"));
    let listing = hub.list(RepoKind::Model, "org/gated", "main").unwrap();
    let commit = listing.commit.clone();

    let path = get(&hub, &listing, "m.Q4_K_M.gguf").unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        fs::canonicalize(&path).unwrap().file_name().unwrap(),
        sha.as_str()
    );
    let requests = mock.requests();
    let hops: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("m.Q4_K_M.gguf") || r.contains("/cdn/"))
        .collect();
    assert_eq!(hops.len(), 3, "{requests:#?}");
    assert_eq!(
        hops[0],
        &format!("HEAD /org/gated/resolve/{commit}/m.Q4_K_M.gguf -")
    );
    assert!(
        hops[1].starts_with(&format!(
            "HEAD /api/resolve-cache/models/org/gated/{commit}/m.Q4_K_M.gguf?"
        )),
        "{}",
        hops[1]
    );
    assert!(
        hops[2].starts_with(&format!("GET /cdn/{sha}?Expires=")) && hops[2].ends_with(" -"),
        "{}",
        hops[2]
    );
    assert_eq!(mock.cdn_auth_attempts(), 0, "the token reached the CDN");
    assert_eq!(mock.bytes_served("org/gated", "m.Q4_K_M.gguf"), 300_000);

    // A small file is served by the Hub itself after the hop: the token goes there.
    let config = get(&hub, &listing, "config.json").unwrap();
    assert_eq!(fs::read(config).unwrap(), b"{}");
    assert!(
        requests_starting(&mock, "GET /api/resolve-cache/models/org/gated/")
            .iter()
            .any(|r| r.contains("/config.json"))
    );
    assert_eq!(mock.cdn_auth_attempts(), 0);
}

/// The same CDN refuses a request that carries `Authorization`: the assertion above can
/// fail.
#[test]
fn the_cdn_refuses_a_request_with_authorization() {
    let mock = MockHub::start_like_hub();
    let bytes = payload(1000, 2);
    mock.add_file("model", "org/m", "m.gguf", bytes.clone());
    let url = format!(
        "{}/cdn/{}?Expires=1&Signature=x",
        mock.cdn_url(),
        sha256_hex(&bytes)
    );
    assert!(url.starts_with("http://localhost:"));
    let with_token = ureq::get(&url)
        .set("Authorization", "Bearer hf_secret")
        .call();
    assert!(matches!(with_token, Err(ureq::Error::Status(400, _))));
    assert_eq!(mock.cdn_auth_attempts(), 1);
    let signed = ureq::get(&url).set("Range", "bytes=0-9").call().unwrap();
    assert_eq!(signed.status(), 206);
    let unsigned = ureq::get(url.split('?').next().unwrap()).call();
    assert!(matches!(unsigned, Err(ureq::Error::Status(403, _))));
}

/// A broken transfer from the CDN resumes there with a Range request, still without the
/// token.
#[test]
fn a_cut_cdn_download_resumes_with_range_on_the_cdn() {
    let mock = MockHub::start_like_hub();
    let bytes = payload(200_000, 3);
    mock.add_file("model", "org/m", "m.gguf", bytes.clone());
    mock.set_gated("org/m", "hf_secret");
    mock.cut_next_download("org/m", "m.gguf", 50_000);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), Some("hf_secret"));
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let path = get(&hub, &listing, "m.gguf").unwrap();
    assert_eq!(fs::read(path).unwrap(), bytes);
    let cdn = requests_starting(&mock, "GET /cdn/");
    assert_eq!(cdn.len(), 2, "{cdn:?}");
    assert!(cdn[1].ends_with(" bytes=50000-"), "{cdn:?}");
    assert_eq!(mock.cdn_auth_attempts(), 0);
    assert_eq!(mock.bytes_served("org/m", "m.gguf"), 200_000);
}

// --- weak ETags ------------------------------------------------------------------------

/// `W/"…"` ETags (on the 302's `X-Linked-Etag` and on a direct answer's `ETag`) name the
/// blob without their `W/` and quotes.
#[test]
fn weak_etags_name_blobs_by_their_value() {
    let mock = MockHub::start();
    mock.use_weak_etags(true);
    let lfs = payload(5000, 4);
    mock.add_file("model", "org/m", "a.gguf", lfs.clone());
    mock.add_small_file("model", "org/m", "README.md", b"# hi\n".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let a = get(&hub, &listing, "a.gguf").unwrap();
    let readme = get(&hub, &listing, "README.md").unwrap();
    let blob = |p: &Path| {
        fs::canonicalize(p)
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(blob(&a), sha256_hex(&lfs));
    let readme_blob = blob(&readme);
    assert_eq!(readme_blob.len(), 40, "a git blob id: {readme_blob}");
    assert!(readme_blob.bytes().all(|b| b.is_ascii_hexdigit()));
    mock.use_cdn(true);
    mock.add_file("model", "org/m", "b.gguf", payload(700, 5));
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let b = get(&hub, &listing, "b.gguf").unwrap();
    assert_eq!(blob(&b), sha256_hex(&payload(700, 5)));
}

// --- 401 with X-Error-Code: RepoNotFound ---------------------------------------------------

#[test]
fn a_401_repo_not_found_says_not_found_or_private_and_set_hf_token() {
    let mock = MockHub::start_like_hub();
    mock.add_file("model", "org/private", "m.Q8_0.gguf", payload(100, 6));
    mock.set_private("org/private", "hf_owner");
    let dir = tempfile::tempdir().unwrap();
    let url = mock.url();
    for repo in ["org/private", "org/absent"] {
        let err = hub_for(&mock, dir.path(), None)
            .list(RepoKind::Model, repo, "main")
            .unwrap_err();
        assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
        assert_eq!(
            format!("{err:#}"),
            format!("model repo {repo} not found on {url}, or private/gated: set HF_TOKEN")
        );
    }
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.starts_with("GET /api/models/org/")));
    let owner = hub_for(&mock, dir.path(), Some("hf_owner"));
    let listing = owner.list(RepoKind::Model, "org/private", "main").unwrap();
    get(&owner, &listing, "m.Q8_0.gguf").unwrap();
}

// --- paginated tree listings --------------------------------------------------------------

/// 2,500 files in pages of 1000 (the Hub's size) and a siblings list cut at 1000: the file
/// on the last page is found, so the quant it holds is not "missing".
#[test]
fn a_listing_of_2500_files_finds_a_file_on_the_last_page() {
    let mock = MockHub::start();
    mock.set_page_size(1000);
    mock.truncate_siblings(Some(1000));
    let repo = "org/huge-GGUF";
    for i in 0..2499 {
        mock.add_small_file("model", repo, &format!("shards/part-{i:04}.bin"), vec![1]);
    }
    let last = "zz/huge.Q4_K_M.gguf";
    mock.add_file("model", repo, last, payload(64, 7));
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);

    let listing = hub.list(RepoKind::Model, repo, "main").unwrap();
    assert_eq!(listing.files.len(), 2500);
    assert_eq!(listing.files.last().unwrap().path, last);
    assert_eq!(match_quant(&listing.paths(), "Q4_K_M"), [last]);
    let pages = requests_starting(&mock, "GET /api/models/org/huge-GGUF/tree/");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[1].contains("&cursor=") && pages[2].contains("&cursor="));
    // The repo info's siblings, which a client could be tempted to use, miss it.
    let info: serde_json::Value = serde_json::from_reader(
        ureq::get(&format!(
            "{}/api/models/{repo}/revision/main?blobs=true",
            mock.url()
        ))
        .call()
        .unwrap()
        .into_reader(),
    )
    .unwrap();
    let siblings = info["siblings"].as_array().unwrap();
    assert_eq!(siblings.len(), 1000);
    assert!(siblings.iter().all(|s| s["rfilename"] != last));
}

#[test]
fn a_failed_page_fails_the_listing_instead_of_shortening_it() {
    let mock = MockHub::start();
    mock.set_page_size(2);
    for i in 0..5 {
        mock.add_file("model", "org/m", &format!("f{i}.gguf"), payload(10, i));
    }
    mock.fail_next("cursor=", 10, 500, None);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None).with_retries(1);
    let err = hub.list(RepoKind::Model, "org/m", "main").unwrap_err();
    assert_ne!(exit_code(&err), EXIT_BAD_INPUT);
    assert!(format!("{err:#}").contains("HTTP 500"), "{err:#}");
}

// --- rate limits ---------------------------------------------------------------------------

/// A 429 with `Retry-After: 2` on the metadata HEAD: the client waits 2 s, tries again and
/// succeeds.
#[test]
fn a_429_with_retry_after_2_waits_and_succeeds() {
    let mock = MockHub::start_like_hub();
    let bytes = payload(10_000, 8);
    mock.add_file("model", "org/m", "m.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    mock.rate_limit_next("/resolve/", 1, 2);
    let started = Instant::now();
    let path = get(&hub, &listing, "m.gguf").unwrap();
    let waited = started.elapsed();
    assert_eq!(fs::read(path).unwrap(), bytes);
    assert!(
        waited >= Duration::from_secs(2),
        "did not wait as asked: {waited:?}"
    );
    let heads = requests_starting(&mock, "HEAD /org/m/resolve/");
    assert_eq!(heads.len(), 2, "the limited HEAD was sent again: {heads:?}");
}

/// A 429 whose only word on the wait is `RateLimit: "api";r=0;t=2` (a used-up window, no
/// `Retry-After`): the client waits for the window's reset, not its own short backoff.
#[test]
fn a_429_with_only_a_ratelimit_header_waits_for_the_reset() {
    let mock = MockHub::start_like_hub();
    mock.add_file("model", "org/m", "m.gguf", payload(100, 12));
    mock.rate_limit_window_next("/tree/", 1, 2);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let started = Instant::now();
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let waited = started.elapsed();
    assert_eq!(listing.files.len(), 1);
    assert!(
        waited >= Duration::from_secs(2),
        "did not wait for the reset: {waited:?}"
    );
    let pages = requests_starting(&mock, "GET /api/models/org/m/tree/");
    assert_eq!(pages.len(), 2, "{pages:?}");
}

/// Listing pages are limited too; a 503 with `Retry-After` is honoured the same way.
#[test]
fn rate_limits_and_busy_servers_on_listings_are_waited_out() {
    let mock = MockHub::start_like_hub();
    for i in 0..3 {
        mock.add_file("model", "org/m", &format!("f{i}.gguf"), payload(10, i));
    }
    mock.rate_limit_next("cursor=", 1, 1);
    mock.fail_next("/revision/main", 1, 503, Some(1));
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let started = Instant::now();
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    assert_eq!(listing.files.len(), 3);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

/// A wait longer than the bound is not waited: the request fails at once, saying so.
#[test]
fn a_retry_after_beyond_the_bound_fails_at_once() {
    let mock = MockHub::start();
    mock.add_file("model", "org/m", "m.gguf", payload(10, 9));
    mock.rate_limit_next("/api/", 1, 3600);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let err = hub.list(RepoKind::Model, "org/m", "main").unwrap_err();
    assert_ne!(exit_code(&err), EXIT_BAD_INPUT);
    assert!(
        format!("{err:#}")
            .contains("rate limited by the Hub (HTTP 429), which asks to wait 3600 s"),
        "{err:#}"
    );
    // Failed at the first answer: not sent again, so not waited for.
    assert_eq!(mock.requests().len(), 1, "{:?}", mock.requests());
}

// --- a push between listing and download ------------------------------------------------

/// The mock pushes a new version of the file right after serving the listing: the
/// download still gets the listed version (its sha256 checks), from the listed commit.
#[test]
fn a_push_after_the_listing_does_not_change_what_is_downloaded() {
    let mock = MockHub::start_like_hub();
    let old = payload(40_000, 10);
    let new = payload(41_000, 11);
    mock.add_file("model", "org/m", "m.Q4_K_M.gguf", old.clone());
    mock.push_after_listing("org/m", "m.Q4_K_M.gguf", new.clone());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    assert_ne!(mock.commit("org/m"), listing.commit, "the mock pushed");

    let path = get(&hub, &listing, "m.Q4_K_M.gguf").unwrap();
    assert_eq!(fs::read(&path).unwrap(), old);
    assert!(path.starts_with(
        dir.path()
            .join("models--org--m/snapshots")
            .join(&listing.commit)
    ));
    let resolves: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| r.contains("/resolve/") || r.contains("/resolve-cache/"))
        .collect();
    assert!(!resolves.is_empty());
    assert!(
        resolves.iter().all(|r| r.contains(&listing.commit)),
        "every request names the listed commit: {resolves:?}"
    );
    // Listing again sees the push.
    let newer = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    assert_eq!(newer.commit, mock.commit("org/m"));
    assert_eq!(
        fs::read(get(&hub, &newer, "m.Q4_K_M.gguf").unwrap()).unwrap(),
        new
    );
}

/// The same with a small plain-git file, which has no sha256 to catch a mix-up: it is
/// stored under the listed commit with the listed commit's bytes.
#[test]
fn a_push_after_the_listing_leaves_a_small_file_at_the_listed_commit() {
    let mock = MockHub::start_like_hub();
    mock.add_small_file("model", "org/m", "config.json", b"{\"v\": 1}".to_vec());
    mock.push_after_listing("org/m", "config.json", b"{\"v\": 2}".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    assert_eq!(listing.file("config.json").unwrap().sha256, None);
    assert_ne!(mock.commit("org/m"), listing.commit, "the mock pushed");

    let path = get(&hub, &listing, "config.json").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{\"v\": 1}");
    let snapshot = dir.path().join("models--org--m/snapshots");
    assert_eq!(path, snapshot.join(&listing.commit).join("config.json"));
    assert!(!snapshot.join(mock.commit("org/m")).exists());
    let resolves = requests_starting(&mock, "HEAD /org/m/resolve/");
    assert_eq!(
        resolves,
        [format!(
            "HEAD /org/m/resolve/{}/config.json -",
            listing.commit
        )]
    );
}

// --- ranged header reads through both redirects -------------------------------------------

/// A GGUF whose header is about 1 KiB in front of 2 MiB of weights.
fn small_header_gguf() -> Vec<u8> {
    GgufBuilder::new()
        .str("general.architecture", "llama")
        .str("general.name", "ranged")
        .u32("general.file_type", 15)
        .u32("llama.context_length", 4096)
        .u32("llama.block_count", 2)
        .u32("llama.embedding_length", 1024)
        .u32("llama.attention.head_count", 8)
        .u32("llama.attention.head_count_kv", 8)
        .tensor("token_embd.weight", &[1024, 2048], 12)
        .tensor("blk.0.attn_q.weight", &[1024, 1024], 12)
        .build()
}

/// `plan`'s header read: resolve → 307 → resolve-cache → 302 → CDN with Range, a few KiB
/// of a 1.7 MiB file, without the token at the CDN.
#[test]
fn a_ranged_header_read_costs_a_few_kib_through_both_redirects() {
    let mock = MockHub::start_like_hub();
    let bytes = small_header_gguf();
    assert!(bytes.len() > 1 << 20);
    mock.add_file("model", "org/m", "m.Q4_K_M.gguf", bytes.clone());
    mock.set_gated("org/m", "hf_secret");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), Some("hf_secret"));
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let file = listing.file("m.Q4_K_M.gguf").unwrap();
    let (header, fetched) = frontier::memory::remote::read_header(&hub, &listing, file).unwrap();
    assert_eq!(header.tensors.len(), 2);
    let served = mock.bytes_served("org/m", "m.Q4_K_M.gguf");
    assert_eq!(served, fetched);
    assert!(served <= 8 << 10, "{served} bytes for the header");
    let commit = &listing.commit;
    let chain: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET /api/models/"))
        .collect();
    assert_eq!(chain.len(), 3, "{chain:#?}");
    assert_eq!(
        chain[0],
        format!("GET /org/m/resolve/{commit}/m.Q4_K_M.gguf bytes=0-8191")
    );
    assert!(chain[1].starts_with(&format!("GET /api/resolve-cache/models/org/m/{commit}/")));
    assert!(chain[1].ends_with(" bytes=0-8191"));
    assert!(chain[2].starts_with("GET /cdn/") && chain[2].ends_with(" bytes=0-8191"));
    assert_eq!(mock.cdn_auth_attempts(), 0);
    assert!(hub
        .cached(RepoKind::Model, "org/m", commit, "m.Q4_K_M.gguf")
        .is_none());
}
