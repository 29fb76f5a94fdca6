//! Downloading one listed file into the cache at the listing's commit: reuse a cached copy
//! (hash-checked), HEAD the commit-pinned resolve URL for the etag and size (following the
//! Hub's relative redirects, stopping at the one to the CDN), GET the bytes from where it
//! points into `blobs/<etag>.incomplete`, resuming with Range requests, verify size and
//! sha256, then move the blob in place and link the snapshot.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::cache::{remove_if_present, RepoCache};
use super::client::Hub;
use super::error::{request_error, Target, Unreachable};
use super::http::Follow;
use super::listing::Listing;
use super::repo::{check_file_path, is_commit, is_safe_etag, is_sha256, resolve_url, RepoFile};
use super::retry::backoff;
use super::verify::{mismatch, sha256_file};

/// What the Hub says about a file before we fetch it.
struct Remote {
    commit: String,
    /// The blob's name: the LFS sha256, or the git blob id for small files.
    etag: String,
    size: Option<u64>,
    /// Where the bytes are: the CDN's signed URL, or the (last) resolve URL.
    location: String,
}

/// One try at fetching the rest of a file: a retryable failure keeps the partial file.
enum Attempt {
    Done,
    Retry(anyhow::Error),
    Fail(anyhow::Error),
}

impl Hub {
    /// Downloads a listed file into the standard cache and returns its snapshot path,
    /// reporting `progress(done, total)` in bytes (`total` is 0 when the server does not
    /// say). Every request names the listing's commit, so the file is the one listed even
    /// if the repo changed since. A cached copy is reused (after a sha256 check when the
    /// hash is known); a broken transfer is resumed from `blobs/<etag>.incomplete` (within
    /// the call up to the retry count, and on the next call); a download that does not
    /// match the listed sha256 is deleted and reported.
    pub fn download(
        &self,
        listing: &Listing,
        file: &RepoFile,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PathBuf> {
        let (kind, repo) = (listing.kind, listing.repo.as_str());
        check_file_path(repo, &file.path)?;
        let cache = RepoCache::new(&self.config.cache_dir, kind, repo);
        if let Some(pointer) = cache.lookup(&listing.commit, &file.path) {
            if self.cached_copy_is_good(&cache, repo, file, &pointer)? {
                let size = fs::metadata(&pointer).map(|m| m.len()).unwrap_or(file.size);
                progress(size, size);
                return Ok(pointer);
            }
        }
        if self.config.offline {
            return Err(self.offline_miss(kind, repo, &listing.revision, &file.path));
        }
        let not_cached = |u: Unreachable| -> anyhow::Error {
            u.with_detail(format!(
                "{repo}: {} is not in the HF cache ({})",
                file.path,
                self.config.cache_dir.display()
            ))
            .into()
        };
        if let Some(known) = self.unreachable() {
            return Err(not_cached(known.clone()));
        }

        let url = resolve_url(
            &self.config.endpoint,
            kind,
            repo,
            &listing.commit,
            &file.path,
        );
        let target = self.target(kind, repo, &listing.revision, Some(&file.path));
        let remote = match self.probe(&target, &url) {
            Ok(remote) => remote,
            Err(e) => {
                return Err(match e.downcast::<Unreachable>() {
                    Ok(u) => not_cached(u),
                    Err(e) => e,
                })
            }
        };
        if remote.commit != listing.commit {
            return Err(anyhow!(
                "HEAD {url}: the Hub answered for commit {}, not the listed {}",
                remote.commit,
                listing.commit
            ));
        }
        let expected = file
            .sha256
            .clone()
            .or_else(|| is_sha256(&remote.etag).then(|| remote.etag.clone()));
        let size = remote.size.or((file.size > 0).then_some(file.size));

        let _lock = cache.lock(&remote.etag)?;
        let blob = cache.blob_path(&remote.etag);
        if blob.exists() {
            // Another revision, another tool or a concurrent run already has this blob.
            if let Some(want) = &expected {
                let got = sha256_file(&blob)?;
                if &got != want {
                    tracing::warn!("{repo}: cached blob for {} is damaged", file.path);
                    remove_if_present(&blob)?;
                }
            }
        }
        if blob.exists() {
            let len = fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
            progress(len, len);
        } else {
            let partial = cache.incomplete_path(&remote.etag);
            if let Some(blobs) = partial.parent() {
                fs::create_dir_all(blobs)
                    .with_context(|| format!("creating {}", blobs.display()))?;
            }
            self.fetch(&target, &remote.location, &partial, size, progress)?;
            if let Some(want) = &expected {
                let got = sha256_file(&partial)?;
                if &got != want {
                    remove_if_present(&partial)?;
                    return Err(mismatch(repo, &file.path, want, &got));
                }
            }
            fs::rename(&partial, &blob)
                .with_context(|| format!("moving {} into place", partial.display()))?;
        }
        let pointer = cache.link(&listing.commit, &file.path, &remote.etag)?;
        cache.write_ref(&listing.revision, &listing.commit)?;
        Ok(pointer)
    }

    /// Checks a cached file against the listed sha256 (or its blob name when that is one).
    /// A copy that does not match is removed so it is downloaded again.
    fn cached_copy_is_good(
        &self,
        cache: &RepoCache,
        repo: &str,
        file: &RepoFile,
        pointer: &Path,
    ) -> Result<bool> {
        let blob_name = fs::canonicalize(pointer)
            .ok()
            .and_then(|b| b.file_name().map(|n| n.to_string_lossy().into_owned()));
        let Some(want) = file
            .sha256
            .clone()
            .or_else(|| blob_name.filter(|n| is_sha256(n)))
        else {
            return Ok(true);
        };
        let got = sha256_file(pointer)?;
        if got == want {
            return Ok(true);
        }
        cache.forget(pointer)?;
        if self.config.offline {
            return Err(anyhow!(
                "{repo}: the cached {} does not match its sha256 (expected {want}, got {got}) and was deleted; HF_HUB_OFFLINE is set, so it cannot be downloaded again",
                file.path
            ));
        }
        tracing::warn!(
            "{repo}: the cached {} does not match sha256 {want}; downloading it again",
            file.path
        );
        Ok(false)
    }

    /// `HEAD` the resolve URL the way `huggingface_hub` does: follow redirects within the
    /// Hub (to `/api/resolve-cache/...`, a renamed repo), stop at one to another host (the
    /// CDN) and read the metadata from it: `X-Repo-Commit`, `X-Linked-Etag` or `ETag`
    /// (weak or strong), `X-Linked-Size` or `Content-Length`.
    fn probe(&self, target: &Target, url: &str) -> Result<Remote> {
        let answer = self
            .send("HEAD", url, None, Follow::SameOrigin)
            .map_err(|f| request_error(target, "HEAD", f))?;
        let (at, response) = (&answer.url, &answer.response);
        let status = response.status();
        let commit = response.header("x-repo-commit").unwrap_or("").trim();
        if !is_commit(commit) {
            return Err(anyhow!(
                "HEAD {at}: no valid X-Repo-Commit header in the answer (is HF_ENDPOINT a Hugging Face Hub?)"
            ));
        }
        let etag = response
            .header("x-linked-etag")
            .or_else(|| response.header("etag"))
            .map(clean_etag)
            .unwrap_or_default();
        if !is_safe_etag(&etag) {
            return Err(anyhow!("HEAD {at}: no usable ETag in the answer"));
        }
        let redirect = (300..400).contains(&status);
        let length = if redirect {
            None
        } else {
            response.header("content-length")
        };
        let size = response
            .header("x-linked-size")
            .or(length)
            .and_then(|s| s.trim().parse().ok());
        let location = match response.header("location") {
            Some(to) if redirect => super::http::join(at, to)
                .ok_or_else(|| anyhow!("HEAD {at}: redirects to '{to}', not an http(s) URL"))?,
            _ => at.clone(),
        };
        Ok(Remote {
            commit: commit.to_string(),
            etag,
            size,
            location,
        })
    }

    /// Fetches into `partial` until it is complete, resuming after each broken attempt.
    fn fetch(
        &self,
        target: &Target,
        url: &str,
        partial: &Path,
        size: Option<u64>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.fetch_once(target, url, partial, size, progress) {
                Attempt::Done => return Ok(()),
                Attempt::Retry(e) if attempt < self.retries => {
                    attempt += 1;
                    tracing::warn!("{e:#}; resuming ({attempt}/{})", self.retries);
                    std::thread::sleep(backoff(attempt));
                }
                Attempt::Retry(e) => {
                    return Err(anyhow!(
                        "{e:#} (the partial download {} is kept and resumes next time)",
                        partial.display()
                    ))
                }
                Attempt::Fail(e) => return Err(e),
            }
        }
    }

    /// One GET of what is missing from `partial` (all of it when the server ignores Range).
    fn fetch_once(
        &self,
        target: &Target,
        url: &str,
        partial: &Path,
        size: Option<u64>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Attempt {
        let mut start = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if let Some(size) = size {
            if start > size {
                if let Err(e) = remove_if_present(partial) {
                    return Attempt::Fail(e);
                }
                start = 0;
            } else if start == size && size > 0 {
                return Attempt::Done;
            }
        }
        let range = format!("bytes={start}-");
        let range = (start > 0).then_some(range.as_str());
        let response = match self.send("GET", url, range, Follow::All) {
            Ok(answer) => answer.response,
            Err(failed) if start > 0 && failed.status() == Some(416) => {
                // Our partial file is not a prefix of what the server has: start over.
                return match remove_if_present(partial) {
                    Ok(()) => Attempt::Retry(anyhow!("GET {url}: HTTP 416, restarting")),
                    Err(e) => Attempt::Fail(e),
                };
            }
            // `send` has tried again already.
            Err(failed) => return Attempt::Fail(request_error(target, "GET", failed)),
        };
        let resumed = start > 0 && response.status() == 206;
        if resumed {
            let content_range = response.header("content-range").unwrap_or("");
            if !content_range.starts_with(&format!("bytes {start}-")) {
                return Attempt::Fail(anyhow!(
                    "GET {url}: asked for bytes {start}- but got Content-Range '{content_range}'"
                ));
            }
        } else {
            if start > 0 {
                tracing::info!("GET {url}: the server ignored the Range header; starting over");
            }
            start = 0;
        }
        let total = size.or_else(|| {
            let length: Option<u64> = response.header("content-length")?.parse().ok();
            length.map(|l| l + start)
        });
        let opened = if resumed {
            OpenOptions::new().append(true).open(partial)
        } else {
            File::create(partial)
        };
        let mut out = match opened {
            Ok(file) => file,
            Err(e) => return Attempt::Fail(anyhow!("opening {}: {e}", partial.display())),
        };
        copy_body(
            &mut response.into_reader(),
            &mut out,
            url,
            partial,
            start,
            total,
            progress,
        )
    }
}

/// Appends the body to `out`, reporting progress; a short body is retryable.
fn copy_body(
    body: &mut dyn Read,
    out: &mut File,
    url: &str,
    partial: &Path,
    start: u64,
    total: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Attempt {
    let shown_total = total.unwrap_or(0);
    let mut done = start;
    progress(done, shown_total);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.flush();
                return Attempt::Retry(anyhow!(
                    "GET {url}: connection lost after {done} of {} bytes: {e}",
                    total.map_or("?".to_string(), |t| t.to_string())
                ));
            }
        };
        if let Err(e) = out.write_all(&buf[..n]) {
            return Attempt::Fail(anyhow!("writing {}: {e}", partial.display()));
        }
        done += n as u64;
        progress(done, shown_total.max(done));
    }
    if let Err(e) = out.flush() {
        return Attempt::Fail(anyhow!("writing {}: {e}", partial.display()));
    }
    match total {
        Some(total) if done < total => Attempt::Retry(anyhow!(
            "GET {url}: connection closed after {done} of {total} bytes"
        )),
        Some(total) if done > total => {
            let _ = remove_if_present(partial);
            Attempt::Fail(anyhow!(
                "GET {url}: got {done} bytes where {total} were announced; the download was deleted"
            ))
        }
        _ => Attempt::Done,
    }
}

/// `"abc"`, `W/"abc"` → `abc`.
fn clean_etag(raw: &str) -> String {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}
