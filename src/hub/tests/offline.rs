//! Without the Hub: offline mode, saved listings, a cache shared with `huggingface_hub`,
//! and an unreachable Hub found once.

use super::*;

#[test]
fn offline_mode_answers_from_the_cache_only() {
    let mock = MockHub::start();
    let bytes = payload(4096);
    mock.add_file("model", "org/m", "model.gguf", bytes.clone());
    mock.add_file("model", "org/m", "other.gguf", payload(10));
    let dir = tempfile::tempdir().unwrap();
    let online = hub_for(&mock, dir.path(), None);
    let (listing, file) = listed(&online, RepoKind::Model, "org/m", "model.gguf");
    let other = listing.file("other.gguf").unwrap().clone();
    let path = download(&online, &listing, &file).unwrap();

    let hub = offline_hub(dir.path());
    assert!(hub.config().offline);
    let cached = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    assert!(cached.from_cache);
    assert_eq!(cached.commit, listing.commit);
    assert_eq!(cached.files, vec![file.clone()]);
    assert_eq!(download(&hub, &cached, &file).unwrap(), path);
    assert_eq!(
        hub.read_range(&cached, "model.gguf", 10, 20).unwrap(),
        &bytes[10..20]
    );

    let err = download(&hub, &cached, &other).unwrap_err();
    assert!(is_bad_input(&err));
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with("org/m: other.gguf (model repo, revision 'main') is not in the cache"),
        "{msg}"
    );
    assert!(msg.ends_with("and HF_HUB_OFFLINE is set"), "{msg}");
    let err = hub.list(RepoKind::Dataset, "org/m", "main").unwrap_err();
    assert!(is_bad_input(&err));
    assert!(format!("{err:#}").contains("HF_HUB_OFFLINE is set"));
    let err = hub.read_range(&cached, "other.gguf", 0, 4).unwrap_err();
    assert!(is_bad_input(&err));
}

#[test]
fn a_saved_listing_knows_every_file_offline() {
    let mock = MockHub::start();
    mock.add_file("model", "org/m", "m.Q4_K_M.gguf", payload(100));
    mock.add_file("model", "org/m", "m.Q8_0.gguf", payload(200));
    let dir = tempfile::tempdir().unwrap();
    let config = |offline| HubConfig {
        endpoint: mock.url(),
        token: None,
        cache_dir: dir.path().join("hub"),
        offline,
        listings_dir: Some(dir.path().join("listings")),
    };
    let online = Hub::new(config(false)).unwrap();
    let listing = online.list(RepoKind::Model, "org/m", "main").unwrap();
    download(&online, &listing, listing.file("m.Q8_0.gguf").unwrap()).unwrap();

    let offline = Hub::new(config(true)).unwrap();
    let cached = offline.list(RepoKind::Model, "org/m", "main").unwrap();
    assert!(cached.from_cache);
    assert_eq!(cached.commit, listing.commit);
    assert_eq!(
        cached.files, listing.files,
        "all files, not only the cached one"
    );
    // A push moves `main`: once a download records the new commit in refs/, the saved
    // listing (of the old commit) no longer speaks for `main`.
    mock.push("org/m", "m.Q8_0.gguf", payload(300));
    let newer = online.list(RepoKind::Model, "org/m", "main").unwrap();
    download(&online, &newer, newer.file("m.Q8_0.gguf").unwrap()).unwrap();
    let cached = offline.list(RepoKind::Model, "org/m", "main").unwrap();
    assert_eq!(cached.commit, newer.commit);
    assert_eq!(cached.files, newer.files);
}

/// The layout `huggingface_hub` writes (`file_download.py`: `blobs/<etag>`,
/// `snapshots/<commit>/<path>` → `../../blobs/<etag>`, `refs/<revision>`), built by hand:
/// frontier finds its files, and what frontier writes has the same shape.
#[test]
fn the_cache_is_shared_with_huggingface_hub_by_layout() {
    let mock = MockHub::start();
    let a = payload(5000);
    let b = payload(7000);
    mock.add_file("model", "org/m", "a.gguf", a.clone());
    mock.add_file("model", "org/m", "sub/b.gguf", b.clone());
    let commit = mock.commit("org/m");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models--org--m");
    let sha_a = sha256_hex(&a);
    fs::create_dir_all(root.join("blobs")).unwrap();
    fs::create_dir_all(root.join("snapshots").join(&commit)).unwrap();
    fs::create_dir_all(root.join("refs")).unwrap();
    fs::write(root.join("blobs").join(&sha_a), &a).unwrap();
    std::os::unix::fs::symlink(
        Path::new("../../blobs").join(&sha_a),
        root.join("snapshots").join(&commit).join("a.gguf"),
    )
    .unwrap();
    fs::write(root.join("refs/main"), &commit).unwrap();
    // Python's partial download of another blob, since huggingface_hub 1.18: not ours.
    fs::write(
        root.join("blobs")
            .join(format!("{}.1a2b3c4d.incomplete", sha256_hex(&b))),
        b"xx",
    )
    .unwrap();

    let hub = hub_for(&mock, dir.path(), None);
    let theirs = root.join("snapshots").join(&commit).join("a.gguf");
    assert_eq!(
        hub.cached(RepoKind::Model, "org/m", "main", "a.gguf"),
        Some(theirs.clone())
    );
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    let file_a = listing.file("a.gguf").unwrap().clone();
    assert_eq!(download(&hub, &listing, &file_a).unwrap(), theirs);
    assert!(file_gets(&mock).is_empty(), "their download is reused");

    let file_b = listing.file("sub/b.gguf").unwrap().clone();
    let ours = download(&hub, &listing, &file_b).unwrap();
    assert_eq!(
        ours,
        root.join("snapshots").join(&commit).join("sub/b.gguf")
    );
    assert_eq!(
        fs::read_link(&ours).unwrap(),
        Path::new("../../../blobs").join(sha256_hex(&b))
    );
    assert_eq!(fs::read(&ours).unwrap(), b);
    assert_eq!(
        mock.bytes_served("org/m", "sub/b.gguf"),
        7000,
        "theirs was not resumed"
    );
    assert_eq!(fs::read_to_string(root.join("refs/main")).unwrap(), commit);
    assert!(!root
        .join("blobs")
        .join(format!("{}.incomplete", sha256_hex(&b)))
        .exists());
}

#[test]
fn an_unreachable_hub_is_found_once_and_never_retried() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let hub = Hub::new(HubConfig {
        endpoint: endpoint.clone(),
        token: None,
        cache_dir: dir.path().to_path_buf(),
        offline: false,
        listings_dir: None,
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = hub.list(RepoKind::Model, "org/m", "main").unwrap_err();
    let msg = format!("{err:#}");
    assert!(!is_bad_input(&err), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Hub at {endpoint} (Connection Failed"
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with("model repo org/m (revision 'main') has no listing in the cache"),
        "{msg}"
    );
    assert!(hub.unreachable().is_some());
    // Known now: the next requests fail at once, without a connection.
    let listing = listing_of(RepoKind::Model, "org/m", &"a".repeat(40));
    let file = RepoFile {
        path: "m.gguf".to_string(),
        size: 1,
        sha256: None,
    };
    let err = download(&hub, &listing, &file).unwrap_err();
    assert!(!is_bad_input(&err));
    assert!(
        format!("{err:#}").ends_with(&format!(
            "org/m: m.gguf is not in the HF cache ({})",
            dir.path().display()
        )),
        "{err:#}"
    );
    assert!(crate::hub::unreachable_cause(&err).is_some());
    // Issue 19's bound: an unreachable Hub fails in under 5 s (here: at once).
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
