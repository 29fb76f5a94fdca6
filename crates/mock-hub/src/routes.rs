//! The mock's answers, route by route: repo info and paginated tree listings, resolve (direct,
//! through a relative 307 to `/api/resolve-cache/...`, or a 302 to the CDN host), and the CDN
//! itself, with the Hub's access rules and queued faults.

use crate::state::{Commit, FaultAnswer, MockFile, MockRepo, State};
use crate::wire::{encode_path, json_string, parse_range, percent_decode, percent_encode};
use crate::wire::{Body, Request, Response};

/// Where the two listeners are: the Hub (`http://127.0.0.1:P`) and the CDN
/// (`http://localhost:Q`).
pub(crate) struct Bases {
    pub hub: String,
    pub cdn: String,
}

/// Requests to the Hub's own host.
pub(crate) fn hub(state: &mut State, request: &Request, bases: &Bases) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::error(405, "MethodNotAllowed", "only GET and HEAD");
    }
    if let Some(answer) = state.take_fault(&request.target) {
        return fault(answer);
    }
    let segments: Vec<String> = request
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["api", "resolve-cache", plural, rest @ ..] => match kind_of_plural(plural) {
            Some(kind) => resolve_cache(state, request, bases, kind, rest),
            None => Response::error(404, "NotFound", "no such API"),
        },
        ["api", plural, rest @ ..] => match kind_of_plural(plural) {
            Some(kind) => api(state, request, bases, kind, rest),
            None => Response::error(404, "NotFound", "no such API"),
        },
        ["datasets", rest @ ..] => resolve(state, request, bases, "dataset", rest),
        rest => resolve(state, request, bases, "model", rest),
    }
}

/// `GET|HEAD /cdn/{sha256}?Expires=..&Signature=..`: content-addressed like a signed CDN
/// URL; like S3, it refuses a request that also carries `Authorization`.
pub(crate) fn cdn(state: &mut State, request: &Request) -> Response {
    if request.header("authorization").is_some() {
        state.cdn_auth_attempts += 1;
        return Response::new(400).json(
            "{\"error\":\"InvalidArgument: Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified\"}"
                .to_string(),
        );
    }
    if request.query("Signature").is_none() {
        return Response::error(403, "AccessDenied", "the URL is not signed");
    }
    let sha = request.path().trim_start_matches("/cdn/");
    match state.blob(sha) {
        Some((repo, path, file)) => serve_file(state, request, &repo, &path, &file),
        None => Response::error(404, "NoSuchKey", "no such object"),
    }
}

fn kind_of_plural(plural: &str) -> Option<&'static str> {
    match plural {
        "models" => Some("model"),
        "datasets" => Some("dataset"),
        _ => None,
    }
}

fn plural_of(kind: &str) -> &'static str {
    if kind == "dataset" {
        "datasets"
    } else {
        "models"
    }
}

/// A queued fault: a 429 as the Hub sends it, or a bare status (no `X-Error-Code`), with
/// the wait headers it was given.
fn fault(answer: FaultAnswer) -> Response {
    let mut response = if answer.status == 429 {
        Response::new(429)
            .header("X-Error-Message", "Too Many Requests")
            .header("RateLimit-Policy", "\"fixed window\";\"api\";q=500;w=300")
            .json("{\"error\":\"Too Many Requests\"}".to_string())
    } else {
        Response::new(answer.status)
    };
    if let Some(seconds) = answer.retry_after {
        response = response.header("Retry-After", seconds.to_string());
    }
    if let Some(seconds) = answer.reset {
        response = response.header("RateLimit", format!("\"api\";r=0;t={seconds}"));
    }
    response
}

/// The answer to a request that may not see what it asks for.
type Refusal = Box<Response>;

/// The repo when the request may see it, else the Hub's `RepoNotFound`: 401 without a
/// token (the Hub cannot say whether it exists), 404 with one.
fn visible<'a>(
    state: &'a State,
    request: &Request,
    kind: &str,
    repo: &str,
) -> Result<&'a MockRepo, Refusal> {
    let auth = request.header("authorization");
    let not_found = || {
        let status = if auth.is_some() { 404 } else { 401 };
        Box::new(Response::error(
            status,
            "RepoNotFound",
            "Repository not found",
        ))
    };
    if let Some(token) = state.private.get(repo) {
        if auth != Some(format!("Bearer {token}").as_str()) {
            return Err(not_found());
        }
    }
    state.repo(kind, repo).ok_or_else(not_found)
}

/// Files of a gated repo need the token that opens it.
fn gate(state: &State, request: &Request, kind: &str, repo: &str) -> Result<(), Refusal> {
    let Some(token) = state.gated.get(repo) else {
        return Ok(());
    };
    let auth = request.header("authorization");
    if auth == Some(format!("Bearer {token}").as_str()) {
        return Ok(());
    }
    let status = if auth.is_some() { 403 } else { 401 };
    let message = format!(
        "Access to {kind} {repo} is restricted. You must have access to it and be authenticated to access it. Please log in."
    );
    Err(Box::new(Response::error(status, "GatedRepo", &message)))
}

fn revision_not_found(revision: &str) -> Response {
    Response::error(
        404,
        "RevisionNotFound",
        &format!("Invalid rev id: {revision}"),
    )
}

/// `/api/{plural}/{repo}[/revision/{rev}]` and `/api/{plural}/{repo}/tree/{rev}[/{path}]`.
fn api(state: &mut State, request: &Request, bases: &Bases, kind: &str, rest: &[&str]) -> Response {
    let at = [1, 2]
        .into_iter()
        .find(|&i| matches!(rest.get(i), Some(&"revision") | Some(&"tree")));
    let (repo, op, after) = match at {
        Some(i) => (rest[..i].join("/"), rest[i], &rest[i + 1..]),
        None if (1..=2).contains(&rest.len()) => (rest.join("/"), "revision", &["main"][..]),
        None => return Response::error(404, "NotFound", "no such API"),
    };
    let Some(revision) = after.first() else {
        return Response::error(404, "NotFound", "no revision");
    };
    let entry = match visible(state, request, kind, &repo) {
        Ok(entry) => entry,
        Err(response) => return *response,
    };
    let Some(commit) = entry.commit(revision) else {
        return revision_not_found(revision);
    };
    let commit = commit.clone();
    if op == "revision" {
        return info(state, request, &repo, &commit);
    }
    let response = tree(
        state,
        request,
        bases,
        kind,
        &repo,
        revision,
        &after[1..],
        &commit,
    );
    let last_page = !response.headers.iter().any(|(n, _)| n == "Link");
    if response.status == 200 && last_page {
        if let Some(changes) = state.pushes.remove(&repo) {
            state.push(&repo, changes);
        }
    }
    response
}

/// The repo info: the commit's `sha` and its `siblings` (with sizes and LFS hashes when
/// `blobs=true`), cut after `siblings_limit` files as the Hub may.
fn info(state: &State, request: &Request, repo: &str, commit: &Commit) -> Response {
    let blobs = request.query("blobs").is_some_and(|v| is_true(&v));
    let limit = state.modes.siblings_limit.unwrap_or(usize::MAX);
    let siblings: Vec<String> = commit
        .files
        .iter()
        .take(limit)
        .map(|(path, file)| {
            if !blobs {
                return format!("{{\"rfilename\":{}}}", json_string(path));
            }
            let lfs = if file.lfs {
                format!(
                    ",\"lfs\":{{\"sha256\":\"{}\",\"size\":{},\"pointerSize\":134}}",
                    file.etag, file.size
                )
            } else {
                String::new()
            };
            format!(
                "{{\"rfilename\":{},\"size\":{},\"blobId\":\"{}\"{lfs}}}",
                json_string(path),
                file.size,
                blob_id(file)
            )
        })
        .collect();
    Response::new(200).json(format!(
        "{{\"_id\":\"{}\",\"id\":{},\"private\":{},\"sha\":\"{}\",\"siblings\":[{}]}}",
        &commit.id[..24],
        json_string(repo),
        state.private.contains_key(repo),
        commit.id,
        siblings.join(",")
    ))
}

/// One page of the tree listing, with `Link: <...>; rel="next"` while more remain.
#[allow(clippy::too_many_arguments)]
fn tree(
    state: &State,
    request: &Request,
    bases: &Bases,
    kind: &str,
    repo: &str,
    revision: &str,
    under: &[&str],
    commit: &Commit,
) -> Response {
    let prefix = under.join("/");
    let recursive = request.query("recursive").is_some_and(|v| is_true(&v));
    let expand = request.query("expand").unwrap_or_else(|| "false".into());
    let items = tree_items(commit, &prefix, recursive);
    if !prefix.is_empty() && items.is_empty() {
        return Response::error(404, "EntryNotFound", &format!("{prefix} does not exist"));
    }
    let offset = match request.query("cursor").map(|c| decode_cursor(&c)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => return Response::error(400, "BadRequest", "invalid cursor"),
    };
    let page_size = state.modes.page_size.max(1);
    let end = (offset + page_size).min(items.len());
    let page = items.get(offset..end).unwrap_or(&[]);
    let mut response = Response::new(200).json(format!("[{}]", page.join(",")));
    if end < items.len() {
        let under = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", percent_encode(&prefix))
        };
        let next = format!(
            "{}/api/{}/{repo}/tree/{}{under}?recursive={recursive}&expand={expand}&cursor={}",
            bases.hub,
            plural_of(kind),
            percent_encode(revision),
            encode_cursor(end)
        );
        response = response.header("Link", format!("<{next}>; rel=\"next\""));
    }
    response
}

/// The tree's entries under `prefix` (all depths when recursive), directories included,
/// in path order, as the Hub's JSON objects.
fn tree_items(commit: &Commit, prefix: &str, recursive: bool) -> Vec<String> {
    let inside = |path: &str| {
        let rest = if prefix.is_empty() {
            Some(path)
        } else {
            path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'))
        };
        rest.is_some_and(|r| recursive || !r.contains('/'))
    };
    let mut entries: std::collections::BTreeMap<String, String> = Default::default();
    for (path, file) in &commit.files {
        let mut dir = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            dir = if dir.is_empty() {
                part.to_string()
            } else {
                format!("{dir}/{part}")
            };
            if inside(&dir) {
                let oid = &crate::sha256_hex(format!("tree {dir}").as_bytes())[..40];
                entries.insert(
                    dir.clone(),
                    format!(
                        "{{\"type\":\"directory\",\"oid\":\"{oid}\",\"size\":0,\"path\":{}}}",
                        json_string(&dir)
                    ),
                );
            }
        }
        if inside(path) {
            let lfs = if file.lfs {
                format!(
                    ",\"lfs\":{{\"oid\":\"{}\",\"size\":{},\"pointerSize\":134}}",
                    file.etag, file.size
                )
            } else {
                String::new()
            };
            entries.insert(
                path.clone(),
                format!(
                    "{{\"type\":\"file\",\"oid\":\"{}\",\"size\":{},\"path\":{}{lfs}}}",
                    blob_id(file),
                    file.size,
                    json_string(path)
                ),
            );
        }
    }
    entries.into_values().collect()
}

/// `GET|HEAD /[datasets/]{repo}/resolve/{rev}/{path}`.
fn resolve(
    state: &mut State,
    request: &Request,
    bases: &Bases,
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
    let (commit, file) = match find_file(state, request, kind, &repo, revision, &path) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    if state.modes.resolve_cache {
        // As the Hub does: a relative hop to a commit-pinned URL whose query the clients
        // drop (huggingface_hub keeps only the path).
        let location = format!(
            "/api/resolve-cache/{}/{repo}/{commit}/{}?{}=&etag={}",
            plural_of(kind),
            encode_path(&path),
            percent_encode(&format!("/{repo}/resolve/{revision}/{path}")),
            percent_encode(&format!("\"{}\"", file.etag))
        );
        return Response::new(307)
            .header("Location", location)
            .header("X-Repo-Commit", commit);
    }
    file_or_cdn(state, request, bases, &repo, &path, &commit, &file)
}

/// `GET|HEAD /api/resolve-cache/{plural}/{repo}/{commit}/{path}` (query ignored).
fn resolve_cache(
    state: &mut State,
    request: &Request,
    bases: &Bases,
    kind: &str,
    rest: &[&str],
) -> Response {
    let Some(at) = [1, 2]
        .into_iter()
        .find(|&i| rest.get(i).is_some_and(|s| is_commit(s)) && rest.len() > i + 1)
    else {
        return Response::error(404, "NotFound", "no such page");
    };
    let repo = rest[..at].join("/");
    let path = rest[at + 1..].join("/");
    let (commit, file) = match find_file(state, request, kind, &repo, rest[at], &path) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    file_or_cdn(state, request, bases, &repo, &path, &commit, &file)
}

/// The commit and file a request names, after the access checks.
fn find_file(
    state: &State,
    request: &Request,
    kind: &str,
    repo: &str,
    revision: &str,
    path: &str,
) -> Result<(String, MockFile), Refusal> {
    let entry = visible(state, request, kind, repo)?;
    gate(state, request, kind, repo)?;
    let commit = entry
        .commit(revision)
        .ok_or_else(|| Box::new(revision_not_found(revision)))?;
    let file = commit.files.get(path).cloned().ok_or_else(|| {
        Box::new(
            Response::error(404, "EntryNotFound", &format!("{path} does not exist"))
                .header("X-Repo-Commit", commit.id.clone()),
        )
    })?;
    Ok((commit.id.clone(), file))
}

/// An LFS file through the CDN when that mode is on (a 302 carrying the metadata), else
/// the file itself.
fn file_or_cdn(
    state: &mut State,
    request: &Request,
    bases: &Bases,
    repo: &str,
    path: &str,
    commit: &str,
    file: &MockFile,
) -> Response {
    if state.modes.cdn && file.lfs {
        let signature = &crate::sha256_hex(format!("signed {}", file.etag).as_bytes())[..32];
        let location = format!(
            "{}/cdn/{}?Expires=4102444800&Signature={signature}",
            bases.cdn, file.etag
        );
        return Response::new(302)
            .header("Location", location)
            .header("ETag", etag_header(state, blob_id(file)))
            .header("X-Linked-Etag", etag_header(state, file.etag.clone()))
            .header("X-Linked-Size", file.size.to_string())
            .header("X-Repo-Commit", commit);
    }
    serve_file(state, request, repo, path, file).header("X-Repo-Commit", commit)
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
        .header("ETag", etag_header(state, file.etag.clone()));
    if status == 206 {
        let end = start + len - 1;
        response = response.header("Content-Range", format!("bytes {start}-{end}/{size}"));
    }
    let key = (repo.to_string(), path.to_string());
    let (corrupt, cut) = if request.method == "GET" {
        let cut = match state.cuts.get(&key) {
            Some(&after) if len > after => state.cuts.remove(&key),
            _ => None,
        };
        (state.corrupt.contains(&key), cut)
    } else {
        // HEAD: the length is announced, nothing is sent.
        (false, None)
    };
    response.body = Body::File {
        key,
        source: file.source.clone(),
        start,
        len,
        corrupt,
        cut,
    };
    response
}

fn etag_header(state: &State, value: String) -> String {
    if state.modes.weak_etags {
        format!("W/\"{value}\"")
    } else {
        format!("\"{value}\"")
    }
}

/// The git blob id the Hub lists as `oid` (a pointer file's for LFS files).
fn blob_id(file: &MockFile) -> String {
    if file.lfs {
        crate::sha256_hex(format!("pointer {}", file.etag).as_bytes())[..40].to_string()
    } else {
        file.etag.clone()
    }
}

fn is_commit(value: &str) -> bool {
    value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `true`/`True`/`1`: httpx and requests spell booleans differently.
fn is_true(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value == "1"
}

/// An opaque-looking cursor for a listing offset.
fn encode_cursor(offset: usize) -> String {
    hex::encode(format!("o:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = hex::decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}
