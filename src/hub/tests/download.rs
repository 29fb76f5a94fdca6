//! Downloads into the HF cache and ranged reads: the layout, resume, hash checks,
//! nested dataset paths and revisions with slashes.

use super::*;

#[test]
fn download_lays_out_blobs_snapshots_and_refs_and_then_hits_the_cache() {
    let mock = MockHub::start();
    let bytes = payload(100_000);
    let sha = sha256_hex(&bytes);
    mock.add_file("model", "org/tiny", "model.gguf", bytes.clone());
    mock.add_small_file("model", "org/tiny", "config.json", b"{\"a\": 1}".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);

    let listing = hub.list(RepoKind::Model, "org/tiny", "main").unwrap();
    let commit = mock.commit("org/tiny");
    assert_eq!(listing.commit, commit);
    assert!(!listing.from_cache);
    let files = &listing.files;
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, "config.json");
    assert_eq!(files[0].size, 8);
    assert_eq!(files[0].sha256, None);
    assert_eq!(files[1].path, "model.gguf");
    assert_eq!(files[1].size, 100_000);
    assert_eq!(files[1].sha256.as_deref(), Some(sha.as_str()));

    let mut seen = Vec::new();
    let path = hub
        .download(&listing, &files[1], &mut |d, t| seen.push((d, t)))
        .unwrap();
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

    let config = download(&hub, &listing, &files[0]).unwrap();
    assert_eq!(fs::read(&config).unwrap(), b"{\"a\": 1}");
    let blobs = files_in(&root.join("blobs"));
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    assert!(blobs.contains(&sha));
    assert!(blobs.iter().all(|b| !b.ends_with(".incomplete")));

    let requests = mock.requests().len();
    assert_eq!(download(&hub, &listing, &files[1]).unwrap(), path);
    assert_eq!(
        mock.requests().len(),
        requests,
        "a cached file needs no request"
    );
    assert_eq!(
        hub.cached(RepoKind::Model, "org/tiny", "main", "model.gguf"),
        Some(path)
    );
    // Listing, HEAD and GET: `main` is resolved once, by the listing.
    assert_eq!(
        mock.requests(),
        [
            "GET /api/models/org/tiny/revision/main -".to_string(),
            format!("GET /api/models/org/tiny/tree/{commit}?recursive=true&expand=false -"),
            format!("HEAD /org/tiny/resolve/{commit}/model.gguf -"),
            format!("GET /org/tiny/resolve/{commit}/model.gguf -"),
            format!("HEAD /org/tiny/resolve/{commit}/config.json -"),
            format!("GET /org/tiny/resolve/{commit}/config.json -"),
        ]
    );
}

#[test]
fn an_empty_file_downloads() {
    let mock = MockHub::start();
    mock.add_file("model", "org/e", "empty.bin", Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let (listing, file) = listed(&hub, RepoKind::Model, "org/e", "empty.bin");
    let path = download(&hub, &listing, &file).unwrap();
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
    let (listing, file) = listed(&hub, RepoKind::Model, "org/m", "model.gguf");
    let commit = &listing.commit;

    let err = download(&hub, &listing, &file).unwrap_err();
    let msg = format!("{err:#}");
    assert!(!is_bad_input(&err), "{msg}");
    assert!(
        msg.contains(&format!("/org/m/resolve/{commit}/model.gguf")),
        "{msg}"
    );
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

    let path = download(&hub, &listing, &file).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(!partial.exists());
    assert_eq!(
        file_gets(&mock),
        [
            format!("GET /org/m/resolve/{commit}/model.gguf -"),
            format!("GET /org/m/resolve/{commit}/model.gguf bytes=30000-")
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
    let (listing, file) = listed(&hub, RepoKind::Model, "org/big", "big.gguf");
    assert_eq!(file.sha256, Some(sha256_hex(&bytes)));

    let path = download(&hub, &listing, &file).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    let commit = &listing.commit;
    assert_eq!(
        file_gets(&mock),
        [
            format!("GET /org/big/resolve/{commit}/big.gguf -"),
            format!("GET /org/big/resolve/{commit}/big.gguf bytes=1048576-")
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
    let (listing, file) = listed(&hub, RepoKind::Model, "org/m", "model.gguf");

    let err = download(&hub, &listing, &file).unwrap_err();
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
    let (listing, file) = listed(&hub, RepoKind::Model, "org/m", "model.gguf");
    let path = download(&hub, &listing, &file).unwrap();
    let blob = fs::canonicalize(&path).unwrap();
    fs::write(&blob, b"bit rot").unwrap();

    let again = download(&hub, &listing, &file).unwrap();
    assert_eq!(again, path);
    assert_eq!(fs::read(&again).unwrap(), bytes);
    assert_eq!(file_gets(&mock).len(), 2);
}

#[test]
fn read_range_returns_exactly_the_bytes_and_only_they_are_served() {
    let mock = MockHub::start();
    let bytes = payload(1_000_000);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let commit = &listing.commit;

    let got = hub.read_range(&listing, "model.gguf", 100, 4196).unwrap();
    assert_eq!(got, &bytes[100..4196]);
    assert_eq!(mock.bytes_served("org/m", "model.gguf"), 4096);
    assert_eq!(
        file_gets(&mock),
        [format!(
            "GET /org/m/resolve/{commit}/model.gguf bytes=100-4195"
        )]
    );

    let tail = hub
        .read_range(&listing, "model.gguf", 999_990, 1_000_100)
        .unwrap();
    assert_eq!(tail, &bytes[999_990..]);
    let err = hub
        .read_range(&listing, "model.gguf", 2_000_000, 2_000_008)
        .unwrap_err();
    assert!(is_bad_input(&err), "{err:#}");
    assert!(hub
        .read_range(&listing, "model.gguf", 5, 5)
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

    let listing = hub.list(RepoKind::Dataset, "cais/mmlu", "main").unwrap();
    let commit = mock.commit("cais/mmlu");
    let paths = listing.paths();
    assert_eq!(
        paths,
        [
            "README.md",
            "all/dev-00000-of-00001.parquet",
            "all/test-00000-of-00001.parquet"
        ]
    );
    let files = &listing.files;
    assert_eq!(files[2].size, 3000);
    assert_eq!(files[2].sha256, Some(sha256_hex(&test)));
    assert!(mock.requests().contains(&format!(
        "GET /api/datasets/cais/mmlu/tree/{commit}?recursive=true&expand=false -"
    )));

    let path = download(&hub, &listing, &files[2]).unwrap();
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
        [format!(
            "GET /datasets/cais/mmlu/resolve/{commit}/all/test-00000-of-00001.parquet -"
        )]
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
    let listing = hub.list(RepoKind::Dataset, "org/d", revision).unwrap();
    let path = download(&hub, &listing, &listing.files[0]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), payload(64));
    let reference = dir
        .path()
        .join("datasets--org--d/refs/refs/convert/parquet");
    assert_eq!(fs::read_to_string(reference).unwrap(), mock.commit("org/d"));
    assert!(mock
        .requests()
        .contains(&"GET /api/datasets/org/d/revision/refs%2Fconvert%2Fparquet -".to_string()));
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
