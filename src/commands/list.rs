//! `frontier list`: the catalog, each repo with the quants it actually offers (from a
//! listing of the Hub, or the cached one offline or when the Hub cannot be reached) and
//! which of them are in the local HF cache.

use anyhow::Result;
use serde_json::json;

use crate::catalog::quant::{available, match_quant, untagged};
use crate::catalog::Catalog;
use crate::cli::ListArgs;
use crate::hub::{unreachable_cause, Hub, HubConfig, Listing, RepoKind};
use crate::output::table::{markdown, Align};

/// Repos listed at once: the Hub answers each in a fraction of a second.
const PARALLEL_LISTINGS: usize = 8;

pub fn run(args: &ListArgs) -> Result<i32> {
    let catalog = Catalog::load(&args.catalog)?;
    let hub = Hub::new(HubConfig::from_env())?;
    let mut repos: Vec<&str> = catalog
        .models
        .iter()
        .flat_map(|m| m.repos.iter().map(String::as_str))
        .collect();
    repos.sort();
    repos.dedup();
    let listings = list_all(&hub, &repos);
    let listing_of = |repo: &str| &listings[repos.binary_search(&repo).expect("listed")];

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut json_rows = Vec::new();
    for m in &catalog.models {
        let mut model_cached = Vec::new();
        let mut json_repos = Vec::new();
        for (i, repo) in m.repos.iter().enumerate() {
            let (offers, cached) = match listing_of(repo) {
                Ok(listing) => {
                    let offer = Offer::of(&hub, listing);
                    model_cached.extend(offer.cached.iter().cloned());
                    json_repos.push(json!({
                        "repo": repo,
                        "commit": listing.commit,
                        "listed_from": if listing.from_cache { "cache" } else { "hub" },
                        "offers": offer.quants,
                        "untagged": offer.untagged,
                        "cached": offer.cached,
                    }));
                    (offer.describe(listing.from_cache), dash(&offer.cached))
                }
                Err(e) => {
                    json_repos.push(json!({ "repo": repo, "error": format!("{e:#}") }));
                    (not_listed(&hub, e, repo, &mut notes), "-".to_string())
                }
            };
            let first = i == 0;
            let field = |text: &str| {
                if first {
                    text.to_string()
                } else {
                    String::new()
                }
            };
            rows.push(vec![
                field(&m.id),
                field(&m.name),
                field(&m.params),
                field(&m.license),
                repo.clone(),
                offers,
                cached,
            ]);
        }
        model_cached.sort();
        model_cached.dedup();
        json_rows.push(json!({ "model": m, "repos": json_repos, "cached_quants": model_cached }));
    }
    if let Some(u) = hub.unreachable() {
        eprintln!("note: {u}: quants from cached listings only");
    }
    if args.json {
        crate::output::print(serde_json::to_string_pretty(&json_rows)? + "\n")?;
        return Ok(0);
    }
    let mut text = markdown(
        &[
            "id", "model", "params", "license", "repo", "offers", "cached",
        ],
        &[Align::Left; 7],
        &rows,
    );
    for (n, note) in notes.iter().enumerate() {
        text.push_str(&format!("[{}] {note}\n", n + 1));
    }
    text.push_str(&format!("cache: {}\n", hub.config().cache_dir.display()));
    crate::output::print(text)?;
    Ok(0)
}

/// Every repo's listing, a few at a time.
fn list_all(hub: &Hub, repos: &[&str]) -> Vec<Result<Listing>> {
    let mut out = Vec::with_capacity(repos.len());
    for chunk in repos.chunks(PARALLEL_LISTINGS) {
        std::thread::scope(|scope| {
            let jobs: Vec<_> = chunk
                .iter()
                .map(|repo| scope.spawn(move || hub.list(RepoKind::Model, repo, "main")))
                .collect();
            for job in jobs {
                out.push(job.join().expect("a listing thread panicked"));
            }
        });
    }
    out
}

/// What one repo offers.
struct Offer {
    quants: Vec<String>,
    /// GGUF files with no quant in their names (no quant can be asked for by name).
    untagged: Vec<String>,
    /// Offered quants whose files are all in the HF cache.
    cached: Vec<String>,
}

impl Offer {
    fn of(hub: &Hub, listing: &Listing) -> Offer {
        let names = listing.paths();
        let quants = available(&names);
        let in_cache = |path: &String| {
            hub.cached(RepoKind::Model, &listing.repo, &listing.commit, path)
                .or_else(|| hub.cached(RepoKind::Model, &listing.repo, &listing.revision, path))
                .is_some()
        };
        let cached = quants
            .iter()
            .filter(|q| match_quant(&names, q).iter().all(in_cache))
            .cloned()
            .collect();
        Offer {
            quants,
            untagged: untagged(&names),
            cached,
        }
    }

    fn describe(&self, from_cache: bool) -> String {
        let mut parts = Vec::new();
        if !self.quants.is_empty() {
            parts.push(self.quants.join(", "));
        }
        if !self.untagged.is_empty() {
            parts.push(format!("no quant named: {}", self.untagged.join(", ")));
        }
        if parts.is_empty() {
            parts.push("no GGUF files".to_string());
        }
        let mut text = parts.join("; ");
        if from_cache {
            text.push_str(" (cached listing)");
        }
        text
    }
}

/// The `offers` cell of a repo that could not be listed; long reasons go to a note.
fn not_listed(hub: &Hub, err: &anyhow::Error, repo: &str, notes: &mut Vec<String>) -> String {
    if unreachable_cause(err).is_some() {
        "not listed: Hub unreachable, no cached listing".to_string()
    } else if hub.config().offline {
        "not listed: HF_HUB_OFFLINE, no cached listing".to_string()
    } else {
        notes.push(format!("{repo}: {err:#}"));
        format!("not listed [{}]", notes.len())
    }
}

fn dash(quants: &[String]) -> String {
    if quants.is_empty() {
        "-".to_string()
    } else {
        quants.join(", ")
    }
}
