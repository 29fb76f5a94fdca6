//! `frontier plan --ram 4GiB`: every catalog model × quant × context with its expected peak
//! memory and headroom, whether it fits, and the best fitting choice per model. Shapes come
//! from GGUF headers — in the HF cache, or read from the Hub by HTTP range requests (the
//! header's bytes, not the weights) — or, offline or with the Hub unreachable (said once),
//! from the catalog's numbers.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::catalog::quant::match_quant;
use crate::catalog::{Catalog, CatalogModel};
use crate::cli::{PlanArgs, WeightCopiesArg};
use crate::hub::{unreachable_cause, Hub, HubConfig, RepoKind};
use crate::memory::{estimate, local_weight_copies, MemoryEstimate, ModelShape, WeightCopies};
use crate::output::table::{markdown, Align};
use frontier_core::error::bad_input;
use frontier_core::units;
use frontier_gguf::ModelSummary;

#[derive(Debug, Serialize)]
struct PlanRow {
    model: String,
    quant: String,
    n_ctx: u64,
    file_size: u64,
    /// Where the shape came from: `cache`, `hub (N bytes read)`, `catalog shape`.
    source: String,
    estimate: MemoryEstimate,
    headroom: i64,
    fits: bool,
    copies: WeightCopies,
}

/// A model's shape for one quant and the file size, and where they came from. A Hub that
/// cannot be reached is said once by the caller, not for each repo.
fn shape_for(
    m: &CatalogModel,
    quant: &str,
    hub: &Hub,
) -> Result<(ModelShape, u64, String), String> {
    let mut why = Vec::new();
    let mut note = |e: anyhow::Error| {
        if unreachable_cause(&e).is_none() {
            why.push(format!("{e:#}"));
        }
    };
    for repo in &m.repos {
        let listing = match hub.list(RepoKind::Model, repo, "main") {
            Ok(l) => l,
            Err(e) => {
                note(e);
                continue;
            }
        };
        let parts = match_quant(&listing.paths(), quant);
        let Some(first) = parts.first().and_then(|p| listing.file(p)) else {
            continue;
        };
        let total: u64 = parts
            .iter()
            .filter_map(|p| listing.file(p))
            .map(|f| f.size)
            .sum();
        let (header, source) = match hub.cached(RepoKind::Model, repo, &listing.commit, &first.path)
        {
            Some(path) => match frontier_gguf::read_file(&path) {
                Ok(h) => (h, "cache".to_string()),
                Err(e) => return Err(format!("{e:#}")),
            },
            None => match crate::memory::remote::read_header(hub, &listing, first) {
                Ok((h, read)) => (h, format!("hub header ({})", units::bytes(read))),
                Err(e) => {
                    note(e);
                    continue;
                }
            },
        };
        let summary = ModelSummary::from_header(&header);
        let mut shape = ModelShape::from_header(&header, &summary);
        // A split model: the first part's header describes only its own tensors.
        if parts.len() > 1 {
            shape.weight_bytes = total;
        }
        return Ok((shape, total, source));
    }
    match &m.shape {
        Some(c) => ModelShape::from_catalog(c, quant)
            .map(|s| (s.clone(), s.weight_bytes, "catalog shape".to_string()))
            .ok_or_else(|| format!("no typical size known for {quant}")),
        None if why.is_empty() => Err("no header could be read and no shape is known".into()),
        None => Err(why.join("; ")),
    }
}

pub fn run(args: &PlanArgs) -> Result<i32> {
    let ram = args.ram.0;
    if ram == 0 {
        return Err(bad_input(
            "--ram 0: nothing fits in no memory (give e.g. 4GiB)",
        ));
    }
    for q in &args.quants {
        if frontier_gguf::types::file_type_by_name(q).is_none() {
            return Err(bad_input(format!(
                "--quants {q}: not a quantization llama.cpp names (e.g. Q4_K_M, Q8_0, F16)"
            )));
        }
    }
    let catalog = Catalog::load(&args.catalog)?;
    let models: Vec<CatalogModel> = match &args.models {
        None => catalog.models.clone(),
        Some(ids) => ids
            .iter()
            .map(|id| {
                catalog.get(id).cloned().ok_or_else(|| {
                    bad_input(format!(
                        "unknown catalog model '{id}'{}",
                        frontier_core::suggest::hint(
                            id,
                            catalog.models.iter().map(|m| m.id.as_str())
                        )
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    let mut config = HubConfig::from_env();
    config.offline |= args.offline;
    let hub = Hub::new(config)?;
    let copies = match args.weight_copies {
        WeightCopiesArg::Auto => local_weight_copies(),
        WeightCopiesArg::Amx => WeightCopies::Amx,
        WeightCopiesArg::Repack => WeightCopies::Repack,
        WeightCopiesArg::RepackAvx512 => WeightCopies::RepackAvx512,
        WeightCopiesArg::RepackArm => WeightCopies::RepackArm,
        WeightCopiesArg::None => WeightCopies::None,
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for m in &models {
        for q in &args.quants {
            let (shape, file_size, source) = match shape_for(m, q, &hub) {
                Ok(x) => x,
                Err(e) => {
                    problems.push(format!("{} {q}: {e}", m.name));
                    continue;
                }
            };
            for &n_ctx in &args.ctx {
                let run = args.estimate.run_shape(n_ctx, copies);
                let e = estimate(&shape, &run);
                let headroom = ram as i64 - e.total as i64;
                rows.push(PlanRow {
                    model: m.name.clone(),
                    quant: q.to_ascii_uppercase(),
                    n_ctx,
                    file_size,
                    source: source.clone(),
                    fits: headroom >= 0,
                    headroom,
                    estimate: e,
                    copies,
                });
            }
        }
    }
    if let Some(u) = hub.unreachable() {
        eprintln!("note: {u}: went on offline, with GGUF headers from the HF cache and the catalog's shapes");
    }
    if args.json {
        crate::output::print(serde_json::to_string_pretty(&rows)? + "\n")?;
        return Ok(0);
    }
    crate::output::print(render(&rows, ram, args.explain))?;
    for p in &problems {
        eprintln!("note: {p}");
    }
    Ok(0)
}

fn render(rows: &[PlanRow], ram: u64, explain: bool) -> String {
    let mut s = format!("# What fits in {}\n\n", units::bytes(ram));
    if let Some(r) = rows.first() {
        let _ = writeln!(
            s,
            "Weights {}; llama.cpp weight copies: {:?} (see --weight-copies).\n",
            if r.estimate.weights_mapped > 0 {
                "memory-mapped"
            } else {
                "read into memory"
            },
            r.copies
        );
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                r.quant.clone(),
                r.n_ctx.to_string(),
                units::bytes(r.file_size),
                units::bytes(r.estimate.total),
                if r.headroom >= 0 {
                    units::bytes(r.headroom as u64)
                } else {
                    format!("-{}", units::bytes(r.headroom.unsigned_abs()))
                },
                if r.fits {
                    "fits".into()
                } else {
                    "does not fit".into()
                },
                r.source.clone(),
            ]
        })
        .collect();
    use Align::{Left as L, Right as R};
    s.push_str(&markdown(
        &[
            "model",
            "quant",
            "ctx",
            "file",
            "expected peak",
            "headroom",
            "verdict",
            "shape from",
        ],
        &[L, L, R, R, R, R, L, L],
        &body,
    ));
    s.push_str("\n## Best fitting choice per model\n\n");
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.dedup();
    for m in models {
        // The most precise quant that fits, at the largest context it fits with.
        let best = rows
            .iter()
            .filter(|r| r.model == m && r.fits)
            .max_by(|a, b| (a.file_size, a.n_ctx).cmp(&(b.file_size, b.n_ctx)));
        match best {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "- {m}: {} at ctx {} ({} expected, {} headroom)",
                    r.quant,
                    r.n_ctx,
                    units::bytes(r.estimate.total),
                    units::bytes(r.headroom as u64)
                );
            }
            None => {
                let _ = writeln!(s, "- {m}: nothing fits");
            }
        }
    }
    if explain {
        s.push_str("\n## Arithmetic\n");
        for r in rows {
            let _ = writeln!(
                s,
                "\n{} {} ctx {} ({}):",
                r.model, r.quant, r.n_ctx, r.source
            );
            for line in &r.estimate.explain {
                let _ = writeln!(s, "  {line}");
            }
            let _ = writeln!(
                s,
                "  verdict: {} {} {} → {}",
                units::bytes(r.estimate.total),
                if r.fits { "≤" } else { ">" },
                units::bytes(ram),
                if r.fits { "fits" } else { "does not fit" }
            );
        }
    }
    s
}
