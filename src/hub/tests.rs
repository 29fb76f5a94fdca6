//! Tests of the hub module against the mock Hub, each with its own server and temp cache.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{classify, Failure};
use super::{Hub, HubConfig, RepoFile, RepoKind};
use frontier_core::error::BadInput;
use frontier_mock_hub::{sha256_hex, MockHub};

fn hub_for(mock: &MockHub, cache: &Path, token: Option<&str>) -> Hub {
    Hub::new(HubConfig {
        endpoint: mock.url(),
        token: token.map(str::to_string),
        cache_dir: cache.to_path_buf(),
        offline: false,
    })
    .unwrap()
}

fn offline_hub(cache: &Path) -> Hub {
    Hub::new(HubConfig {
        // Nothing listens here: any request would fail loudly.
        endpoint: "http://127.0.0.1:9".to_string(),
        token: None,
        cache_dir: cache.to_path_buf(),
        offline: true,
    })
    .unwrap()
}

fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<BadInput>())
}

/// Deterministic bytes that do not repeat early.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn listed(hub: &Hub, kind: RepoKind, repo: &str, path: &str) -> RepoFile {
    hub.list_files(kind, repo, "main")
        .unwrap()
        .into_iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} not listed"))
}

fn download(hub: &Hub, kind: RepoKind, repo: &str, file: &RepoFile) -> anyhow::Result<PathBuf> {
    hub.download(kind, repo, "main", file, &mut |_, _| {})
}

/// GETs of file contents (resolve or CDN), as the mock logged them.
fn file_gets(mock: &MockHub) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter(|r| r.starts_with("GET ") && (r.contains("/resolve/") || r.contains("/cdn/")))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn download_lays_out_blobs_snapshots_and_refs_and_then_hits_the_cache() {
    let mock = MockHub::start();
    let bytes = payload(100_000);
    let sha = sha256_hex(&bytes);
    mock.add_file("model", "org/tiny", "model.gguf", bytes.clone());
    mock.add_small_file("model", "org/tiny", "config.json", b"{\"a\": 1}".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);

    let files = hub.list_files(RepoKind::Model, "org/tiny", "main").unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, "config.json");
    assert_eq!(files[0].size, 8);
    assert_eq!(files[0].sha256, None);
    assert_eq!(files[1].path, "model.gguf");
    assert_eq!(files[1].size, 100_000);
    assert_eq!(files[1].sha256.as_deref(), Some(sha.as_str()));

    let mut seen = Vec::new();
    let path = hub
        .download(
            RepoKind::Model,
            "org/tiny",
            "main",
            &files[1],
            &mut |d, t| seen.push((d, t)),
        )
        .unwrap();
    let commit = mock.commit("org/tiny");
    let root = dir.path().join("models--org--tiny");
    assert_eq!(
        path,
        root.join("snapshots").join(&commit).join("model.gguf")
    );
    assert_eq!(
        fs::read_link(&path).unwrap(),
        Path::new("../../blobs").join(&sha)
    );
    assert_eq!(fs::read(root.join("blobs").join(&sha)).unwrap(), bytes);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(fs::read_to_string(root.join("refs/main")).unwrap(), commit);
    assert_eq!(seen.last(), Some(&(100_000, 100_000)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");

    let config = download(&hub, RepoKind::Model, "org/tiny", &files[0]).unwrap();
    assert_eq!(fs::read(&config).unwrap(), b"{\"a\": 1}");
    let blobs = files_in(&root.join("blobs"));
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    assert!(blobs.contains(&sha));
    assert!(blobs.iter().all(|b| !b.ends_with(".incomplete")));

    let requests = mock.requests().len();
    assert_eq!(
        download(&hub, RepoKind::Model, "org/tiny", &files[1]).unwrap(),
        path
    );
    assert_eq!(
        mock.requests().len(),
        requests,
        "a cached file needs no request"
    );
    assert_eq!(
        hub.cached(RepoKind::Model, "org/tiny", "main", "model.gguf"),
        Some(path)
    );
    assert_eq!(file_gets(&mock).len(), 2);
}

#[test]
fn an_empty_file_downloads() {
    let mock = MockHub::start();
    mock.add_file("model", "org/e", "empty.bin", Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let file = listed(&hub, RepoKind::Model, "org/e", "empty.bin");
    let path = download(&hub, RepoKind::Model, "org/e", &file).unwrap();
    assert_eq!(fs::read(path).unwrap(), b"");
}

#[test]
fn an_interrupted_download_keeps_its_partial_and_resumes_with_a_range_request() {
    let mock = MockHub::start();
    let bytes = payload(200_000);
    let sha = sha256_hex(&bytes);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    mock.cut_next_download("org/m", "model.gguf", 30_000);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None).with_retries(0);
    let file = listed(&hub, RepoKind::Model, "org/m", "model.gguf");

    let err = download(&hub, RepoKind::Model, "org/m", &file).unwrap_err();
    let msg = format!("{err:#}");
    assert!(!is_bad_input(&err), "{msg}");
    assert!(msg.contains("/org/m/resolve/main/model.gguf"), "{msg}");
    assert!(msg.contains("30000 of 200000"), "{msg}");
    let partial = dir
        .path()
        .join("models--org--m/blobs")
        .join(format!("{sha}.incomplete"));
    assert_eq!(fs::metadata(&partial).unwrap().len(), 30_000);
    assert_eq!(
        hub.cached(RepoKind::Model, "org/m", "main", "model.gguf"),
        None
    );

    let path = download(&hub, RepoKind::Model, "org/m", &file).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(!partial.exists());
    let gets = file_gets(&mock);
    assert_eq!(
        gets,
        [
            "GET /org/m/resolve/main/model.gguf -",
            "GET /org/m/resolve/main/model.gguf bytes=30000-"
        ]
    );
    assert_eq!(mock.bytes_served("org/m", "model.gguf"), 200_000);
}

#[test]
fn a_cut_connection_is_resumed_within_one_call() {
    let mock = MockHub::start();
    let source = tempfile::NamedTempFile::new().unwrap();
    let bytes = payload(3 << 20);
    fs::write(source.path(), &bytes).unwrap();
    mock.add_file_from_disk("model", "org/big", "big.gguf", source.path());
    mock.cut_next_download("org/big", "big.gguf", 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let file = listed(&hub, RepoKind::Model, "org/big", "big.gguf");
    assert_eq!(file.sha256, Some(sha256_hex(&bytes)));

    let path = download(&hub, RepoKind::Model, "org/big", &file).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        file_gets(&mock),
        [
            "GET /org/big/resolve/main/big.gguf -",
            "GET /org/big/resolve/main/big.gguf bytes=1048576-"
        ]
    );
    assert_eq!(mock.bytes_served("org/big", "big.gguf"), 3 << 20);
}

#[test]
fn a_hash_mismatch_is_rejected_and_nothing_is_kept() {
    let mock = MockHub::start();
    let bytes = payload(50_000);
    let good = sha256_hex(&bytes);
    let served: Vec<u8> = bytes.iter().map(|b| b ^ 0xff).collect();
    let bad = sha256_hex(&served);
    mock.add_file("model", "org/m", "model.gguf", bytes);
    mock.corrupt("org/m", "model.gguf");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let file = listed(&hub, RepoKind::Model, "org/m", "model.gguf");

    let err = download(&hub, RepoKind::Model, "org/m", &file).unwrap_err();
    let msg = format!("{err:#}");
    assert!(!is_bad_input(&err), "{msg}");
    assert_eq!(
        msg,
        format!("org/m: model.gguf failed its sha256 check (expected {good}, got {bad}); the download was deleted, try again")
    );
    let root = dir.path().join("models--org--m");
    assert!(files_in(&root.join("snapshots")).is_empty());
    let blobs = files_in(&root.join("blobs"));
    assert!(blobs.is_empty(), "{blobs:?}");
    assert_eq!(
        hub.cached(RepoKind::Model, "org/m", "main", "model.gguf"),
        None
    );
}

#[test]
fn a_damaged_cached_blob_is_downloaded_again() {
    let mock = MockHub::start();
    let bytes = payload(20_000);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let file = listed(&hub, RepoKind::Model, "org/m", "model.gguf");
    let path = download(&hub, RepoKind::Model, "org/m", &file).unwrap();
    let blob = fs::canonicalize(&path).unwrap();
    fs::write(&blob, b"bit rot").unwrap();

    let again = download(&hub, RepoKind::Model, "org/m", &file).unwrap();
    assert_eq!(again, path);
    assert_eq!(fs::read(&again).unwrap(), bytes);
    assert_eq!(file_gets(&mock).len(), 2);
}

#[test]
fn a_gated_repo_needs_the_right_token() {
    let mock = MockHub::start();
    mock.add_file("model", "org/gated", "model.gguf", payload(1000));
    mock.add_file("dataset", "org/gated-ds", "data.parquet", payload(10));
    mock.set_gated("org/gated", "hf_good");
    mock.set_gated("org/gated-ds", "hf_good");
    let dir = tempfile::tempdir().unwrap();
    let anonymous = hub_for(&mock, dir.path(), None);
    let file = listed(&anonymous, RepoKind::Model, "org/gated", "model.gguf");

    let err = download(&anonymous, RepoKind::Model, "org/gated", &file).unwrap_err();
    assert!(is_bad_input(&err));
    let url = mock.url();
    assert_eq!(
        format!("{err:#}"),
        format!("org/gated is gated: accept its license at {url}/org/gated while logged in, then set HF_TOKEN to a token with read access")
    );
    let ds = listed(
        &anonymous,
        RepoKind::Dataset,
        "org/gated-ds",
        "data.parquet",
    );
    let err = download(&anonymous, RepoKind::Dataset, "org/gated-ds", &ds).unwrap_err();
    assert!(format!("{err:#}").contains(&format!("{url}/datasets/org/gated-ds while logged in")));

    let wrong = hub_for(&mock, dir.path(), Some("hf_bad"));
    let err = download(&wrong, RepoKind::Model, "org/gated", &file).unwrap_err();
    assert!(is_bad_input(&err));
    assert!(format!("{err:#}").starts_with("org/gated is gated: accept its license at"));
    assert!(format!("{err:#}").ends_with("(the token sent was refused for it)"));

    let right = hub_for(&mock, dir.path(), Some("hf_good"));
    let path = download(&right, RepoKind::Model, "org/gated", &file).unwrap();
    assert_eq!(fs::read(path).unwrap(), payload(1000));
}

#[test]
fn missing_files_repos_and_revisions_are_bad_input() {
    let mock = MockHub::start();
    mock.add_file("model", "org/m", "model.gguf", payload(10));
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let url = mock.url();
    let ghost = RepoFile {
        path: "nope.gguf".to_string(),
        size: 0,
        sha256: None,
    };

    let err = download(&hub, RepoKind::Model, "org/m", &ghost).unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(
        format!("{err:#}"),
        "org/m: file 'nope.gguf' not found at revision 'main'"
    );

    let err = hub
        .list_files(RepoKind::Model, "org/absent", "main")
        .unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(
        format!("{err:#}"),
        format!("model repo org/absent not found on {url} (if it is private, set HF_TOKEN)")
    );
    let err = download(&hub, RepoKind::Dataset, "org/m", &ghost).unwrap_err();
    assert!(is_bad_input(&err));
    assert!(format!("{err:#}").starts_with("dataset repo org/m not found"));

    let err = hub.list_files(RepoKind::Model, "org/m", "v9").unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(format!("{err:#}"), "org/m: revision 'v9' not found");

    let err = hub
        .read_range(RepoKind::Model, "org/m", "main", "nope.gguf", 0, 8)
        .unwrap_err();
    assert!(is_bad_input(&err));
}

#[test]
fn unsafe_names_never_reach_the_cache() {
    let mock = MockHub::start();
    mock.add_file("model", "org/evil", "../../escape", payload(10));
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let file = |path: &str| RepoFile {
        path: path.to_string(),
        size: 1,
        sha256: None,
    };
    for repo in ["../etc", "org/a/b", "org--x", "", "org/.hidden"] {
        let err = download(&hub, RepoKind::Model, repo, &file("x")).unwrap_err();
        assert!(is_bad_input(&err), "{repo}: {err:#}");
    }
    for path in ["../x", "a/../../x", "/abs", "a//b", "a\\b"] {
        let err = download(&hub, RepoKind::Model, "org/m", &file(path)).unwrap_err();
        assert!(is_bad_input(&err), "{path}: {err:#}");
    }
    let err = hub
        .download(
            RepoKind::Model,
            "org/m",
            "../../x",
            &file("a"),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(is_bad_input(&err));
    let err = hub
        .list_files(RepoKind::Model, "org/evil", "main")
        .unwrap_err();
    assert!(format!("{err:#}").contains("unsafe path"), "{err:#}");
    assert!(mock.requests().len() == 1, "{:?}", mock.requests());
}

#[test]
fn offline_mode_answers_from_the_cache_only() {
    let mock = MockHub::start();
    let bytes = payload(4096);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    mock.add_file("model", "org/m", "other.gguf", payload(10));
    let dir = tempfile::tempdir().unwrap();
    let online = hub_for(&mock, dir.path(), None);
    let file = listed(&online, RepoKind::Model, "org/m", "model.gguf");
    let other = listed(&online, RepoKind::Model, "org/m", "other.gguf");
    let path = download(&online, RepoKind::Model, "org/m", &file).unwrap();

    let hub = offline_hub(dir.path());
    assert!(hub.config().offline);
    let files = hub.list_files(RepoKind::Model, "org/m", "main").unwrap();
    assert_eq!(files, vec![file.clone()]);
    assert_eq!(
        download(&hub, RepoKind::Model, "org/m", &file).unwrap(),
        path
    );
    assert_eq!(
        hub.read_range(RepoKind::Model, "org/m", "main", "model.gguf", 10, 20)
            .unwrap(),
        &bytes[10..20]
    );

    let err = download(&hub, RepoKind::Model, "org/m", &other).unwrap_err();
    assert!(is_bad_input(&err));
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with("org/m: other.gguf (model repo, revision 'main') is not in the cache"),
        "{msg}"
    );
    assert!(msg.ends_with("and HF_HUB_OFFLINE is set"), "{msg}");
    let err = hub
        .list_files(RepoKind::Dataset, "org/m", "main")
        .unwrap_err();
    assert!(is_bad_input(&err));
    assert!(format!("{err:#}").contains("HF_HUB_OFFLINE is set"));
    let err = hub
        .read_range(RepoKind::Model, "org/m", "main", "other.gguf", 0, 4)
        .unwrap_err();
    assert!(is_bad_input(&err));
}

#[test]
fn read_range_returns_exactly_the_bytes_and_only_they_are_served() {
    let mock = MockHub::start();
    let bytes = payload(1_000_000);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);

    let got = hub
        .read_range(RepoKind::Model, "org/m", "main", "model.gguf", 100, 4196)
        .unwrap();
    assert_eq!(got, &bytes[100..4196]);
    assert_eq!(mock.bytes_served("org/m", "model.gguf"), 4096);
    assert_eq!(
        file_gets(&mock),
        ["GET /org/m/resolve/main/model.gguf bytes=100-4195"]
    );

    let tail = hub
        .read_range(
            RepoKind::Model,
            "org/m",
            "main",
            "model.gguf",
            999_990,
            1_000_100,
        )
        .unwrap();
    assert_eq!(tail, &bytes[999_990..]);
    let err = hub
        .read_range(
            RepoKind::Model,
            "org/m",
            "main",
            "model.gguf",
            2_000_000,
            2_000_008,
        )
        .unwrap_err();
    assert!(is_bad_input(&err), "{err:#}");
    assert!(hub
        .read_range(RepoKind::Model, "org/m", "main", "model.gguf", 5, 5)
        .unwrap()
        .is_empty());
    assert_eq!(
        hub.cached(RepoKind::Model, "org/m", "main", "model.gguf"),
        None
    );
}

#[test]
fn a_dataset_listing_has_nested_paths_and_they_download() {
    let mock = MockHub::start();
    let test = payload(3000);
    mock.add_file(
        "dataset",
        "cais/mmlu",
        "all/test-00000-of-00001.parquet",
        test.clone(),
    );
    mock.add_file(
        "dataset",
        "cais/mmlu",
        "all/dev-00000-of-00001.parquet",
        payload(300),
    );
    mock.add_small_file("dataset", "cais/mmlu", "README.md", b"# MMLU\n".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);

    let files = hub
        .list_files(RepoKind::Dataset, "cais/mmlu", "main")
        .unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "README.md",
            "all/dev-00000-of-00001.parquet",
            "all/test-00000-of-00001.parquet"
        ]
    );
    assert_eq!(files[2].size, 3000);
    assert_eq!(files[2].sha256, Some(sha256_hex(&test)));
    assert!(mock
        .requests()
        .contains(&"GET /api/datasets/cais/mmlu/revision/main?blobs=true -".to_string()));

    let path = download(&hub, RepoKind::Dataset, "cais/mmlu", &files[2]).unwrap();
    let commit = mock.commit("cais/mmlu");
    let root = dir.path().join("datasets--cais--mmlu");
    assert_eq!(
        path,
        root.join("snapshots")
            .join(&commit)
            .join("all/test-00000-of-00001.parquet")
    );
    assert_eq!(
        fs::read_link(&path).unwrap(),
        Path::new("../../../blobs").join(sha256_hex(&test))
    );
    assert_eq!(fs::read(&path).unwrap(), test);
    assert_eq!(
        file_gets(&mock),
        ["GET /datasets/cais/mmlu/resolve/main/all/test-00000-of-00001.parquet -"]
    );
}

#[test]
fn a_revision_with_slashes_is_encoded_and_cached_under_refs() {
    let mock = MockHub::start();
    mock.add_file(
        "dataset",
        "org/d",
        "default/train/0000.parquet",
        payload(64),
    );
    mock.add_revision("org/d", "refs/convert/parquet");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let revision = "refs/convert/parquet";
    let files = hub
        .list_files(RepoKind::Dataset, "org/d", revision)
        .unwrap();
    let path = hub
        .download(
            RepoKind::Dataset,
            "org/d",
            revision,
            &files[0],
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), payload(64));
    let reference = dir
        .path()
        .join("datasets--org--d/refs/refs/convert/parquet");
    assert_eq!(fs::read_to_string(reference).unwrap(), mock.commit("org/d"));
    assert!(file_gets(&mock)[0].starts_with(
        "GET /datasets/org/d/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet"
    ));
    assert_eq!(
        hub.cached(
            RepoKind::Dataset,
            "org/d",
            revision,
            "default/train/0000.parquet"
        ),
        Some(path.clone())
    );
    // The commit itself names the snapshot too.
    let commit = mock.commit("org/d");
    assert_eq!(
        hub.cached(
            RepoKind::Dataset,
            "org/d",
            &commit,
            "default/train/0000.parquet"
        ),
        Some(path)
    );
}

#[test]
fn a_cdn_redirect_is_followed_and_x_linked_headers_name_the_blob() {
    let mock = MockHub::start();
    mock.use_cdn(true);
    let bytes = payload(80_000);
    let sha = sha256_hex(&bytes);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    mock.set_gated("org/m", "hf_good");
    mock.cut_next_download("org/m", "model.gguf", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), Some("hf_good"));
    let file = listed(&hub, RepoKind::Model, "org/m", "model.gguf");

    let path = download(&hub, RepoKind::Model, "org/m", &file).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        fs::canonicalize(&path).unwrap().file_name().unwrap(),
        sha.as_str()
    );
    let requests = mock.requests();
    assert!(requests.contains(&"HEAD /org/m/resolve/main/model.gguf -".to_string()));
    assert!(requests.contains(&"GET /cdn/model/org%2Fm/model.gguf bytes=10000-".to_string()));
}

#[test]
fn hf_hub_0_4_and_frontier_share_the_cache() {
    let mock = MockHub::start();
    mock.add_file("model", "org/m", "a.gguf", payload(5000));
    mock.add_file("model", "org/m", "b.gguf", payload(7000));
    let dir = tempfile::tempdir().unwrap();
    let api = hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(dir.path().into()))
        .with_endpoint(mock.url())
        .with_token(None)
        .with_progress(false)
        .build()
        .unwrap();
    let theirs = api.model("org/m".to_string()).download("a.gguf").unwrap();
    let info = api.model("org/m".to_string()).info().unwrap();
    assert_eq!(info.siblings.len(), 2);

    let hub = hub_for(&mock, dir.path(), None);
    assert_eq!(
        hub.cached(RepoKind::Model, "org/m", "main", "a.gguf"),
        Some(theirs.clone())
    );
    let gets = file_gets(&mock).len();
    let file = listed(&hub, RepoKind::Model, "org/m", "a.gguf");
    assert_eq!(
        download(&hub, RepoKind::Model, "org/m", &file).unwrap(),
        theirs
    );
    assert_eq!(file_gets(&mock).len(), gets, "hf-hub's download is reused");

    let b = listed(&hub, RepoKind::Model, "org/m", "b.gguf");
    let ours = download(&hub, RepoKind::Model, "org/m", &b).unwrap();
    let found = hf_hub::Cache::new(dir.path().into())
        .model("org/m".to_string())
        .get("b.gguf");
    assert_eq!(found, Some(ours));

    // hf-hub follows the CDN redirect too (its probe needs Content-Range from the CDN).
    mock.use_cdn(true);
    mock.add_file("model", "org/m", "c.gguf", payload(900));
    let c = api.model("org/m".to_string()).download("c.gguf").unwrap();
    assert_eq!(fs::read(c).unwrap(), payload(900));
}

#[test]
fn network_errors_are_plain_failures_naming_the_url() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::new(HubConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        token: None,
        cache_dir: dir.path().to_path_buf(),
        offline: false,
    })
    .unwrap()
    .with_retries(0);
    let err = hub
        .list_files(RepoKind::Model, "org/m", "main")
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(!is_bad_input(&err), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "GET http://127.0.0.1:{port}/api/models/org/m/revision/main?blobs=true: "
        )),
        "{msg}"
    );
    let file = RepoFile {
        path: "m.gguf".to_string(),
        size: 1,
        sha256: None,
    };
    let err = download(&hub, RepoKind::Model, "org/m", &file).unwrap_err();
    assert!(!is_bad_input(&err));
    assert!(
        format!("{err:#}").contains("/org/m/resolve/main/m.gguf"),
        "{err:#}"
    );
}

#[test]
fn hub_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Hub>();
}

#[test]
fn a_non_http_endpoint_is_bad_input() {
    let err = Hub::new(HubConfig {
        endpoint: "huggingface.co".to_string(),
        token: None,
        cache_dir: PathBuf::from("/tmp/x"),
        offline: false,
    })
    .err()
    .unwrap();
    assert!(is_bad_input(&err));
}

#[test]
fn statuses_are_sorted_like_huggingface_hub() {
    assert_eq!(
        classify(401, Some("GatedRepo"), false, true),
        Failure::Gated
    );
    assert_eq!(classify(403, Some("GatedRepo"), true, true), Failure::Gated);
    assert_eq!(classify(401, None, false, true), Failure::Gated);
    assert_eq!(classify(401, None, true, true), Failure::Denied);
    assert_eq!(
        classify(401, Some("RepoNotFound"), false, false),
        Failure::RepoNotFound
    );
    assert_eq!(
        classify(404, Some("EntryNotFound"), false, true),
        Failure::EntryNotFound
    );
    assert_eq!(
        classify(404, Some("RevisionNotFound"), false, true),
        Failure::RevisionNotFound
    );
    assert_eq!(classify(404, None, false, true), Failure::EntryNotFound);
    assert_eq!(classify(404, None, false, false), Failure::RepoNotFound);
    assert_eq!(classify(500, None, true, true), Failure::Other);
}

#[test]
fn the_mock_sha256_matches_sha2() {
    use sha2::{Digest, Sha256};
    let long = payload(1_000_003);
    let cases: Vec<&[u8]> = vec![
        b"",
        b"abc",
        &long[..55],
        &long[..56],
        &long[..64],
        &long[..65],
        &long,
    ];
    for data in cases {
        let want: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha256_hex(data), want, "length {}", data.len());
    }
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

// ---------------------------------------------------------------------------------------------
// HubConfig::from_vars

fn config_from(vars: &[(&str, &str)]) -> HubConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    HubConfig::from_vars(|name| map.get(name).cloned())
}

#[test]
fn config_defaults_follow_home() {
    let config = config_from(&[("HOME", "/home/u")]);
    assert_eq!(config.endpoint, "https://huggingface.co");
    assert_eq!(
        config.cache_dir,
        PathBuf::from("/home/u/.cache/huggingface/hub")
    );
    assert_eq!(config.token, None);
    assert!(!config.offline);
    let config = config_from(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]);
    assert_eq!(config.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
}

#[test]
fn config_reads_hf_home_and_its_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let hf_home = dir.path().join("hf");
    fs::create_dir_all(&hf_home).unwrap();
    fs::write(hf_home.join("token"), "  hf_from_file\n").unwrap();
    let home = hf_home.to_str().unwrap();
    let config = config_from(&[("HOME", "/home/u"), ("HF_HOME", home)]);
    assert_eq!(config.cache_dir, hf_home.join("hub"));
    assert_eq!(config.token.as_deref(), Some("hf_from_file"));

    let config = config_from(&[("HF_HOME", home), ("HF_TOKEN", "hf_env")]);
    assert_eq!(config.token.as_deref(), Some("hf_env"));

    let other = dir.path().join("other-token");
    fs::write(&other, "hf_path\n").unwrap();
    let config = config_from(&[
        ("HF_HOME", home),
        ("HF_TOKEN_PATH", other.to_str().unwrap()),
    ]);
    assert_eq!(config.token.as_deref(), Some("hf_path"));

    let config = config_from(&[("HF_HOME", home), ("HF_TOKEN", "  ")]);
    assert_eq!(
        config.token.as_deref(),
        Some("hf_from_file"),
        "a blank HF_TOKEN is unset"
    );

    let config = config_from(&[
        ("HF_HOME", home),
        ("HF_TOKEN", "hf_env"),
        ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1"),
    ]);
    assert_eq!(config.token, None);
}

#[test]
fn config_reads_endpoint_cache_and_offline() {
    let config = config_from(&[
        ("HOME", "/home/u"),
        ("HF_HOME", "~/hf"),
        ("HF_HUB_CACHE", "/data/hub"),
        ("HF_ENDPOINT", "http://127.0.0.1:8080/"),
        ("HF_HUB_OFFLINE", "1"),
    ]);
    assert_eq!(config.endpoint, "http://127.0.0.1:8080");
    assert_eq!(config.cache_dir, PathBuf::from("/data/hub"));
    assert!(config.offline);
    let config = config_from(&[("HOME", "/home/u"), ("HF_HOME", "~/hf")]);
    assert_eq!(config.cache_dir, PathBuf::from("/home/u/hf/hub"));
    for (value, offline) in [
        ("true", true),
        ("YES", true),
        ("on", true),
        ("0", false),
        ("false", false),
        ("", false),
    ] {
        let config = config_from(&[("HOME", "/h"), ("HF_HUB_OFFLINE", value)]);
        assert_eq!(config.offline, offline, "HF_HUB_OFFLINE={value}");
    }
}

#[test]
fn config_debug_hides_the_token() {
    let config = config_from(&[("HOME", "/h"), ("HF_TOKEN", "hf_secret")]);
    let shown = format!("{config:?}");
    assert!(!shown.contains("hf_secret"), "{shown}");
    assert!(shown.contains("<set>"));
}
