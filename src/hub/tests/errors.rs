//! What each refusal of the Hub (gated, private, missing, a bare 401) and each unsafe name
//! becomes for the user.

use super::*;
use crate::hub::error::{classify, Failure};

#[test]
fn a_gated_repo_needs_the_right_token() {
    let mock = MockHub::start();
    mock.add_file("model", "org/gated", "model.gguf", payload(1000));
    mock.add_file("dataset", "org/gated-ds", "data.parquet", payload(10));
    mock.set_gated("org/gated", "hf_good");
    mock.set_gated("org/gated-ds", "hf_good");
    let dir = tempfile::tempdir().unwrap();
    let anonymous = hub_for(&mock, dir.path(), None);
    // As on the Hub, a gated repo's listing is public; its files are not.
    let (listing, file) = listed(&anonymous, RepoKind::Model, "org/gated", "model.gguf");

    let err = download(&anonymous, &listing, &file).unwrap_err();
    assert!(is_bad_input(&err));
    let url = mock.url();
    assert_eq!(
        format!("{err:#}"),
        format!("org/gated is gated: accept its license at {url}/org/gated while logged in, then set HF_TOKEN to a token with read access")
    );
    let (ds_listing, ds) = listed(
        &anonymous,
        RepoKind::Dataset,
        "org/gated-ds",
        "data.parquet",
    );
    let err = download(&anonymous, &ds_listing, &ds).unwrap_err();
    assert!(format!("{err:#}").contains(&format!("{url}/datasets/org/gated-ds while logged in")));

    let wrong = hub_for(&mock, dir.path(), Some("hf_bad"));
    let err = download(&wrong, &listing, &file).unwrap_err();
    assert!(is_bad_input(&err));
    assert!(format!("{err:#}").starts_with("org/gated is gated: accept its license at"));
    assert!(format!("{err:#}").ends_with("(the token sent was refused for it)"));

    let right = hub_for(&mock, dir.path(), Some("hf_good"));
    let path = download(&right, &listing, &file).unwrap();
    assert_eq!(fs::read(path).unwrap(), payload(1000));
}

#[test]
fn missing_files_repos_and_revisions_are_bad_input_with_distinct_messages() {
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
    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();

    let err = download(&hub, &listing, &ghost).unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(
        format!("{err:#}"),
        "org/m: no such file 'nope.gguf' at revision 'main'"
    );

    // Anonymous: the Hub answers 401 RepoNotFound for a missing, private or gated repo.
    let err = hub.list(RepoKind::Model, "org/absent", "main").unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(
        format!("{err:#}"),
        format!("model repo org/absent not found on {url}, or private/gated: set HF_TOKEN")
    );
    let with_token = hub_for(&mock, dir.path(), Some("hf_x"));
    let err = with_token
        .list(RepoKind::Model, "org/absent", "main")
        .unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(
        format!("{err:#}"),
        format!("model repo org/absent not found on {url} (or the token sent cannot see it)")
    );
    let err = hub.list(RepoKind::Dataset, "org/m", "main").unwrap_err();
    assert!(is_bad_input(&err));
    assert!(format!("{err:#}").starts_with("dataset repo org/m not found"));

    let err = hub.list(RepoKind::Model, "org/m", "v9").unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(format!("{err:#}"), "org/m: revision 'v9' not found");

    let err = hub.read_range(&listing, "nope.gguf", 0, 8).unwrap_err();
    assert!(is_bad_input(&err));
}

#[test]
fn unsafe_names_never_reach_the_cache() {
    let mock = MockHub::start();
    mock.add_file("model", "org/evil", "../../escape", payload(10));
    mock.add_file("model", "org/m", "m.gguf", payload(10));
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&mock, dir.path(), None);
    let file = |path: &str| RepoFile {
        path: path.to_string(),
        size: 1,
        sha256: None,
    };
    for repo in ["../etc", "org/a/b", "org--x", "", "org/.hidden"] {
        let err = hub.list(RepoKind::Model, repo, "main").unwrap_err();
        assert!(is_bad_input(&err), "{repo}: {err:#}");
    }
    let err = hub.list(RepoKind::Model, "org/m", "../../x").unwrap_err();
    assert!(is_bad_input(&err));
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());

    let listing = hub.list(RepoKind::Model, "org/m", "main").unwrap();
    for path in ["../x", "a/../../x", "/abs", "a//b", "a\\b"] {
        let err = download(&hub, &listing, &file(path)).unwrap_err();
        assert!(is_bad_input(&err), "{path}: {err:#}");
    }
    let err = hub.list(RepoKind::Model, "org/evil", "main").unwrap_err();
    assert!(format!("{err:#}").contains("unsafe path"), "{err:#}");
    assert!(
        mock.requests().iter().all(|r| r.starts_with("GET /api/")),
        "{:?}",
        mock.requests()
    );
}

#[test]
fn a_bare_401_without_a_token_means_not_found_or_private() {
    let mock = MockHub::start();
    mock.add_file("model", "org/m", "m.gguf", payload(10));
    mock.fail_next("/api/models/org/m/", 1, 401, None);
    let dir = tempfile::tempdir().unwrap();
    let err = hub_for(&mock, dir.path(), None)
        .list(RepoKind::Model, "org/m", "main")
        .unwrap_err();
    assert!(is_bad_input(&err));
    assert_eq!(
        format!("{err:#}"),
        format!(
            "model repo org/m not found on {}, or private/gated: set HF_TOKEN",
            mock.url()
        )
    );
    // With a token, a bare 401 is the token's problem.
    mock.fail_next("/api/models/org/m/", 1, 401, None);
    let err = hub_for(&mock, dir.path(), Some("hf_x"))
        .list(RepoKind::Model, "org/m", "main")
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "org/m: access denied (HTTP 401); set HF_TOKEN to a token with read access to it"
    );
}

#[test]
fn a_private_repo_is_seen_with_its_token_only() {
    let mock = MockHub::start();
    mock.add_file("model", "org/private", "m.gguf", payload(10));
    mock.set_private("org/private", "hf_mine");
    let dir = tempfile::tempdir().unwrap();
    let err = hub_for(&mock, dir.path(), None)
        .list(RepoKind::Model, "org/private", "main")
        .unwrap_err();
    assert!(
        format!("{err:#}").ends_with("or private/gated: set HF_TOKEN"),
        "{err:#}"
    );
    let mine = hub_for(&mock, dir.path(), Some("hf_mine"));
    let listing = mine.list(RepoKind::Model, "org/private", "main").unwrap();
    let path = download(&mine, &listing, &listing.files[0]).unwrap();
    assert_eq!(fs::read(path).unwrap(), payload(10));
}

#[test]
fn a_non_http_endpoint_is_bad_input() {
    for endpoint in ["huggingface.co", "ftp://h", "http://"] {
        let err = Hub::new(HubConfig {
            endpoint: endpoint.to_string(),
            token: None,
            cache_dir: PathBuf::from("/tmp/x"),
            offline: false,
            listings_dir: None,
        })
        .err()
        .unwrap();
        assert!(is_bad_input(&err), "{endpoint}");
    }
}

#[test]
fn statuses_are_sorted_like_huggingface_hub() {
    assert_eq!(
        classify(401, Some("GatedRepo"), false, true),
        Failure::Gated
    );
    assert_eq!(classify(403, Some("GatedRepo"), true, true), Failure::Gated);
    // A bare 401 to an anonymous request: not found, or private/gated.
    assert_eq!(classify(401, None, false, true), Failure::RepoNotFound);
    assert_eq!(classify(401, None, true, true), Failure::Denied);
    assert_eq!(classify(429, None, true, true), Failure::RateLimited);
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
