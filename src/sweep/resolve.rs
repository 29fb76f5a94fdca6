//! From what the user named (catalog ids, `hf:` repos, local files) and the quants asked for
//! to concrete model files: list each repo, match the quant in file names, download into
//! the HF cache at the listed commit (or find it there), and with `--derive` make a missing
//! quant locally from the highest-precision file. A cell that cannot be had keeps the
//! reason, to be reported; a Hub that cannot be reached for a file the cache lacks stops
//! everything with one error (a network outage is not a property of the cell).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::catalog::quant::{available, match_quant, strip_quant_suffix, untagged};
use crate::catalog::{parse_model_spec, Catalog, ModelRef};
use crate::hub::{unreachable_cause, Hub, HubConfig, Listing};
use crate::output::progress;
use frontier_core::error::{bad_input, exit_code, EXIT_BAD_INPUT};
use frontier_gguf::types::file_type_by_name;

/// One model × quant to run, or why it cannot run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCell {
    /// The model's name in reports (quant excluded).
    pub model: String,
    /// The quant asked for (or the local file's).
    pub quant: String,
    /// The file to load (the first part of a split model).
    pub path: Option<PathBuf>,
    /// sha256 when already known (the Hub's LFS hash).
    pub sha256: Option<String>,
    /// Where it came from: `hf:owner/repo/file` or a local path.
    pub origin: String,
    /// Set when the quant was made locally from another file.
    pub derived_from: Option<String>,
    /// Why this cell cannot run (missing quant, gated repo, ...).
    pub problem: Option<String>,
    /// The problem is the user's to fix (a missing quant, a gate): exit 2 rather than 1.
    pub bad_input: bool,
}

/// Options that shape resolution.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub quants: Vec<String>,
    pub derive: bool,
    pub revision: String,
    pub quiet: bool,
}

impl ResolveOptions {
    /// From the command line's `--quants` and model-source flags (`--revision`, `--derive`).
    pub fn from_args(
        quants: &[String],
        source: &crate::cli::ModelSourceArgs,
        quiet: bool,
    ) -> ResolveOptions {
        ResolveOptions {
            quants: quants.to_vec(),
            derive: source.derive,
            revision: source.revision.clone(),
            quiet,
        }
    }
}

/// Bits per weight of the quant names, to pick the highest-precision source for `--derive`.
fn precision(quant: &str) -> f64 {
    match quant.to_ascii_uppercase().as_str() {
        "F32" => 32.0,
        "F16" | "BF16" => 16.0,
        "Q8_0" => 8.5,
        "Q6_K" => 6.6,
        "Q5_K_M" | "Q5_K_S" | "Q5_1" | "Q5_0" => 5.6,
        "Q4_K_M" | "Q4_K_S" | "Q4_1" | "IQ4_XS" | "IQ4_NL" | "Q4_0" => 4.7,
        "Q3_K_L" | "Q3_K_M" | "Q3_K_S" => 3.8,
        _ => 2.6,
    }
}

/// Resolves every model spec × quant into planned cells. Local files are one cell each;
/// repo models get one per quant (the spec's own quants, else `opts.quants`).
pub fn resolve(
    specs: &[String],
    catalog: &Catalog,
    hub: Option<&Hub>,
    opts: &ResolveOptions,
) -> Result<Vec<PlannedCell>> {
    let mut cells = Vec::new();
    for spec in specs {
        let (model, own_quants) = parse_model_spec(spec, catalog)?;
        let name = model.display_name();
        match &model {
            ModelRef::Local(path) => {
                let summary = frontier_gguf::read_summary(path)?;
                cells.push(PlannedCell {
                    model: name,
                    quant: summary.file_type.clone(),
                    path: Some(path.clone()),
                    sha256: None,
                    origin: path.display().to_string(),
                    derived_from: summary.requantized_from(),
                    problem: None,
                    bad_input: false,
                });
            }
            ModelRef::Catalog(_) | ModelRef::Repo(_) => {
                let repos: Vec<String> = match &model {
                    ModelRef::Catalog(m) => m.repos.clone(),
                    ModelRef::Repo(r) => vec![r.clone()],
                    ModelRef::Local(_) => unreachable!(),
                };
                let quants = if own_quants.is_empty() {
                    &opts.quants
                } else {
                    &own_quants
                };
                let hub =
                    hub.ok_or_else(|| anyhow::anyhow!("a Hub client is needed for {spec}"))?;
                let listings = list_repos(hub, &repos, &opts.revision);
                for q in quants {
                    cells.push(resolve_quant(hub, &name, q, &listings, opts)?);
                }
            }
        }
    }
    if let Some(unreachable) = hub.and_then(Hub::unreachable) {
        tracing::warn!("{unreachable}: went on offline, with the files in the HF cache");
    }
    Ok(cells)
}

/// Each repo's listing, or why it could not be listed.
type RepoListing = (String, Result<Listing>);

fn list_repos(hub: &Hub, repos: &[String], revision: &str) -> Vec<RepoListing> {
    repos
        .iter()
        .map(|r| {
            (
                r.clone(),
                hub.list(crate::hub::RepoKind::Model, r, revision),
            )
        })
        .collect()
}

fn resolve_quant(
    hub: &Hub,
    model: &str,
    quant: &str,
    listings: &[RepoListing],
    opts: &ResolveOptions,
) -> Result<PlannedCell> {
    let mut cell = PlannedCell {
        model: model.to_string(),
        quant: quant.to_ascii_uppercase(),
        path: None,
        sha256: None,
        origin: String::new(),
        derived_from: None,
        problem: None,
        bad_input: false,
    };
    for (repo, listing) in listings {
        let Ok(listing) = listing else { continue };
        let parts = match_quant(&listing.paths(), quant);
        if parts.is_empty() {
            continue;
        }
        match download_parts(hub, listing, &parts, opts.quiet) {
            Ok((path, sha)) => {
                cell.path = Some(path);
                cell.sha256 = sha;
                cell.origin = format!("hf:{repo}/{}", parts[0]);
            }
            Err(e) if unreachable_cause(&e).is_some() => {
                return Err(e.context(format!("{model} {}", cell.quant)))
            }
            Err(e) => {
                cell.bad_input = exit_code(&e) == EXIT_BAD_INPUT;
                cell.problem = Some(format!("{e:#}"));
            }
        }
        return Ok(cell);
    }
    // Not in any listing: say so only if every repo's whole listing was seen.
    if let Some(unreachable) = hub.unreachable() {
        let repos: Vec<&str> = listings.iter().map(|(r, _)| r.as_str()).collect();
        let err = unreachable.clone().with_detail(format!(
            "the cache has no {} file of {}",
            cell.quant,
            repos.join(", ")
        ));
        return Err(anyhow::Error::new(err).context(format!("{model} {}", cell.quant)));
    }
    if opts.derive && file_type_by_name(quant).is_some() {
        return derive(hub, cell, listings, opts);
    }
    // A repo that could not be listed for another reason than bad input (a server error)
    // leaves the question open: a failure, not the user's mistake.
    cell.bad_input = listings.iter().all(|(_, l)| {
        l.as_ref()
            .err()
            .is_none_or(|e| exit_code(e) == EXIT_BAD_INPUT)
    });
    cell.problem = Some(missing_message(hub, quant, listings));
    Ok(cell)
}

/// "no Q5_K_M file in a/b (has Q4_K_M, Q8_0); c/d (gated: ...)", with the `--derive` hint
/// when some listed file could be the source.
fn missing_message(hub: &Hub, quant: &str, listings: &[RepoListing]) -> String {
    let offline = hub.config().offline;
    let mut derivable = false;
    let parts: Vec<String> = listings
        .iter()
        .map(|(repo, l)| match l {
            Ok(listing) => {
                let names = listing.paths();
                let has = available(&names);
                let plain = untagged(&names);
                derivable |= !has.is_empty();
                let mut what = Vec::new();
                if !has.is_empty() {
                    what.push(format!("has {}", has.join(", ")));
                }
                if !plain.is_empty() {
                    what.push(format!(
                        "GGUF files without a quant in their names: {}",
                        plain.join(", ")
                    ));
                }
                if what.is_empty() {
                    what.push("no GGUF files".to_string());
                }
                let cached = if listing.from_cache { "cached: " } else { "" };
                format!("{repo} ({cached}{})", what.join("; "))
            }
            Err(e) => format!("{repo} ({e:#})"),
        })
        .collect();
    let mut msg = format!(
        "no {} file in {}",
        quant.to_ascii_uppercase(),
        parts.join("; ")
    );
    if offline {
        msg.push_str(" (HF_HUB_OFFLINE is set: only the cache was searched)");
    } else if derivable && file_type_by_name(quant).is_some() {
        msg.push_str("; --derive makes it locally from the highest-precision file");
    }
    msg
}

/// Downloads every part of a (possibly split) model at the listing's commit; returns the
/// first part's path and its sha256 when the Hub listed one.
fn download_parts(
    hub: &Hub,
    listing: &Listing,
    parts: &[String],
    quiet: bool,
) -> Result<(PathBuf, Option<String>)> {
    let repo = &listing.repo;
    let mut first = None;
    for name in parts {
        let Some(f) = listing.file(name) else {
            continue;
        };
        let bar = progress::bytes_bar(f.size, &format!("{repo}/{name}"), quiet);
        let path = hub.download(listing, f, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        if first.is_none() {
            first = Some((path, f.sha256.clone()));
        }
    }
    first.ok_or_else(|| anyhow::anyhow!("{repo}: none of {parts:?} is in the listing"))
}

/// Makes `cell.quant` locally from the highest-precision file among the repos.
fn derive(
    hub: &Hub,
    mut cell: PlannedCell,
    listings: &[RepoListing],
    opts: &ResolveOptions,
) -> Result<PlannedCell> {
    /// The best source so far: its precision, listing, file parts and quant.
    struct Best<'l> {
        precision: f64,
        listing: &'l Listing,
        parts: Vec<String>,
        quant: String,
    }
    let mut best: Option<Best<'_>> = None;
    for (_, listing) in listings {
        let Ok(listing) = listing else { continue };
        let names = listing.paths();
        for q in available(&names) {
            let p = precision(&q);
            if best.as_ref().is_none_or(|b| p > b.precision) {
                best = Some(Best {
                    precision: p,
                    listing,
                    parts: match_quant(&names, &q),
                    quant: q,
                });
            }
        }
    }
    let Some(Best {
        listing,
        parts,
        quant: source_quant,
        ..
    }) = best
    else {
        cell.bad_input = true;
        cell.problem = Some(missing_message(hub, &cell.quant, listings));
        return Ok(cell);
    };
    let repo = listing.repo.as_str();
    let (src, sha) = match download_parts(hub, listing, &parts, opts.quiet) {
        Ok(x) => x,
        Err(e) if unreachable_cause(&e).is_some() => {
            return Err(e.context(format!("{} {}", cell.model, cell.quant)))
        }
        Err(e) => {
            cell.bad_input = exit_code(&e) == EXIT_BAD_INPUT;
            cell.problem = Some(format!("{e:#}"));
            return Ok(cell);
        }
    };
    let sha = match sha {
        Some(s) => s,
        None => crate::hashing::HashCache::default_location().sha256_file(&src, |_| {})?,
    };
    let out_dir = crate::paths::cache_dir().join("derived");
    std::fs::create_dir_all(&out_dir)?;
    let stem = strip_quant_suffix(
        Path::new(&parts[0])
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model"),
    );
    let dst = out_dir.join(format!("{stem}.{}.{}.gguf", &sha[..12], cell.quant));
    if !dst.is_file() {
        let target = frontier_gguf::types::parse_quantize_target(&cell.quant)?;
        let from = format!("{source_quant} {} sha256:{}", parts[0], &sha[..16]);
        if !opts.quiet {
            eprintln!(
                "deriving {} {} from {source_quant} ({repo}/{})",
                cell.model, cell.quant, parts[0]
            );
        }
        let partial = dst.with_extension(format!("partial-{}", std::process::id()));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        frontier_llama::quantize(&src, &partial, target, true, threads, &from)?;
        std::fs::rename(&partial, &dst)?;
    }
    cell.path = Some(dst);
    cell.origin = format!("derived from hf:{repo}/{}", parts[0]);
    cell.derived_from = Some(format!("{source_quant} (hf:{repo}/{})", parts[0]));
    Ok(cell)
}

/// The quant a single-file command uses when a repo or catalog model names none.
pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// The one GGUF file a model spec names, for the commands that load one file (`eval`,
/// `speed`, `inspect`, `chat`): a path as it is; a catalog id, `owner/repo` or
/// `hf:owner/repo` with `:QUANT` (default Q4_K_M) from the Hugging Face cache, downloaded
/// when it is not there yet.
pub fn model_file(spec: &str, quiet: bool) -> Result<PathBuf> {
    let catalog = Catalog::load(&[])?;
    let (model, quants) = crate::catalog::parse_model_spec(spec, &catalog)?;
    if let ModelRef::Local(path) = model {
        return Ok(path);
    }
    let quant = match quants.as_slice() {
        [] => DEFAULT_QUANT.to_string(),
        [q] => q.clone(),
        _ => {
            return Err(bad_input(format!(
                "{spec}: one quant, please (this command runs one file)"
            )))
        }
    };
    let hub = Hub::new(HubConfig::from_env())?;
    let head = match spec.strip_prefix("hf:") {
        Some(repo) => format!("hf:{}", repo.split(':').next().unwrap_or("")),
        None => spec.split(':').next().unwrap_or(spec).to_string(),
    };
    let cells = resolve(
        &[head],
        &catalog,
        Some(&hub),
        &ResolveOptions {
            quants: vec![quant.clone()],
            derive: false,
            revision: "main".into(),
            quiet,
        },
    )?;
    let cell = cells
        .into_iter()
        .next()
        .ok_or_else(|| bad_input(format!("{spec}: nothing resolved")))?;
    match (cell.path, cell.problem) {
        (Some(path), _) => Ok(path),
        (None, problem) => Err(anyhow::anyhow!(
            "{spec}: {}",
            problem.unwrap_or_else(|| format!("no {quant} file"))
        )),
    }
}
