//! Part of a remote file without the rest: from the cache when the file is there, else an
//! HTTP Range request at the listing's commit, through the Hub's redirects to wherever the
//! bytes are (the token stays behind).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use anyhow::{bail, Context, Result};

use super::client::Hub;
use super::error::{request_error, Unreachable};
use super::http::Follow;
use super::listing::Listing;
use super::repo::{check_file_path, resolve_url};
use frontier_core::error::bad_input;

impl Hub {
    /// Bytes `start..end` (exclusive) of a listed file at the listing's commit: from the
    /// cache when it is there, otherwise through an HTTP Range request (only those bytes
    /// cross the network, through whatever redirects the Hub sends). Shorter when the file
    /// ends before `end`.
    pub fn read_range(
        &self,
        listing: &Listing,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>> {
        let (kind, repo) = (listing.kind, listing.repo.as_str());
        check_file_path(repo, path)?;
        if end <= start {
            return Ok(Vec::new());
        }
        let want = end - start;
        if let Some(local) = self.cached(kind, repo, &listing.commit, path) {
            let mut file =
                File::open(&local).with_context(|| format!("opening {}", local.display()))?;
            file.seek(SeekFrom::Start(start))?;
            return read_up_to(&mut file, want)
                .with_context(|| format!("reading {}", local.display()));
        }
        if self.config.offline {
            return Err(self.offline_miss(kind, repo, &listing.revision, path));
        }
        let url = resolve_url(&self.config.endpoint, kind, repo, &listing.commit, path);
        let target = self.target(kind, repo, &listing.commit, Some(path));
        let range = format!("bytes={start}-{}", end - 1);
        let answer = match self.send("GET", &url, Some(&range), Follow::All) {
            Ok(answer) => answer,
            Err(failed) if failed.status() == Some(416) => {
                return Err(bad_input(format!(
                    "{repo}: {path} has fewer than {} bytes",
                    start + 1
                )))
            }
            Err(failed) => {
                let err = request_error(&target, "GET", failed);
                return Err(match err.downcast::<Unreachable>() {
                    Ok(u) => u
                        .with_detail(format!("{repo}: {path} is not in the HF cache"))
                        .into(),
                    Err(err) => err,
                });
            }
        };
        let status = answer.response.status();
        let mut body = answer.response.into_reader();
        if status == 200 {
            // The server ignored the Range: skip to `start` and stop reading after `end`.
            io::copy(&mut (&mut body).take(start), &mut io::sink())
                .with_context(|| format!("GET {}", answer.url))?;
        } else if status != 206 {
            bail!(
                "GET {}: expected 206 Partial Content, got HTTP {status}",
                answer.url
            );
        }
        read_up_to(&mut body, want).with_context(|| format!("GET {}", answer.url))
    }
}

fn read_up_to(reader: &mut dyn Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(1 << 20) as usize);
    reader.take(limit).read_to_end(&mut out)?;
    Ok(out)
}
