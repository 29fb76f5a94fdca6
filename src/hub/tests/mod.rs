//! Tests of the hub module against the mock Hub, each with its own server and temp cache
//! (the real Hub's redirect, pagination, rate-limit and push behaviours are exercised in
//! `tests/hub_modes.rs`), and the helpers they share.

mod download;
mod errors;
mod offline;

use std::fs;
use std::path::{Path, PathBuf};

use super::{Hub, HubConfig, Listing, RepoFile, RepoKind};
use frontier_core::error::BadInput;
use frontier_mock_hub::{sha256_hex, MockHub};

pub(super) fn hub_for(mock: &MockHub, cache: &Path, token: Option<&str>) -> Hub {
    Hub::new(HubConfig {
        endpoint: mock.url(),
        token: token.map(str::to_string),
        cache_dir: cache.to_path_buf(),
        offline: false,
        listings_dir: None,
    })
    .unwrap()
}

pub(super) fn offline_hub(cache: &Path) -> Hub {
    Hub::new(HubConfig {
        // Nothing listens here: any request would fail loudly.
        endpoint: "http://127.0.0.1:9".to_string(),
        token: None,
        cache_dir: cache.to_path_buf(),
        offline: true,
        listings_dir: None,
    })
    .unwrap()
}

pub(super) fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<BadInput>())
}

/// Deterministic bytes that do not repeat early.
pub(super) fn payload(len: usize) -> Vec<u8> {
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

/// The listing of `repo` at `main` and one file of it.
pub(super) fn listed(hub: &Hub, kind: RepoKind, repo: &str, path: &str) -> (Listing, RepoFile) {
    let listing = hub.list(kind, repo, "main").unwrap();
    let file = listing
        .file(path)
        .unwrap_or_else(|| panic!("{path} not listed"))
        .clone();
    (listing, file)
}

pub(super) fn download(hub: &Hub, listing: &Listing, file: &RepoFile) -> anyhow::Result<PathBuf> {
    hub.download(listing, file, &mut |_, _| {})
}

/// A listing made by hand, for files the Hub may not have.
pub(super) fn listing_of(kind: RepoKind, repo: &str, commit: &str) -> Listing {
    Listing {
        kind,
        repo: repo.to_string(),
        revision: "main".to_string(),
        commit: commit.to_string(),
        files: Vec::new(),
        from_cache: false,
    }
}

/// GETs of file contents (resolve or CDN), as the mock logged them.
pub(super) fn file_gets(mock: &MockHub) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter(|r| r.starts_with("GET ") && (r.contains("/resolve/") || r.contains("/cdn/")))
        .collect()
}

pub(super) fn files_in(dir: &Path) -> Vec<String> {
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
fn hub_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Hub>();
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
        let want = hex::encode(Sha256::digest(data));
        assert_eq!(sha256_hex(data), want, "length {}", data.len());
    }
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
