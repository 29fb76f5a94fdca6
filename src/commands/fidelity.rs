//! `frontier fidelity`: each quant of a model against its base file on one text (KL
//! divergence, top-token agreement, perplexity ratio), as a sweep with only the fidelity
//! task: stored, resumable, and printed as a table beside the reports.

use anyhow::Result;
use serde_json::json;

use crate::catalog::{Catalog, ModelRef};
use crate::cli::{BatchArgs, FidelityCmdArgs};
use crate::datasets::Source;
use crate::eval::runner::EngineSettings;
use crate::hub::{Hub, HubConfig};
use crate::report::fidelity_table;
use crate::settings::{engine_settings, fidelity_settings};
use crate::store::Store;
use crate::sweep::{self, FidelityPlan, ResolveOptions, SweepConfig};
use crate::tasks::{TaskFormats, TaskOptions};
use frontier_core::error::bad_input;

pub fn run(args: &FidelityCmdArgs, verbosity: u8, quiet: bool) -> Result<i32> {
    if args.run.backend != crate::backend::Backend::Llama {
        return Err(bad_input(
            "fidelity runs on the llama backend only: it needs every token's whole next-token distribution, which servers give only as a top-k",
        ));
    }
    let settings = fidelity_settings(&args.fidelity, args.ctx)?;
    if let Some(path) = &args.save_text {
        std::fs::write(path, &settings.text.text)
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    }
    let mem_cap = args.mem.cap()?;
    let no_batch = BatchArgs {
        parallel: Some(1),
        no_batch: true,
        ctx: None,
        batch_rows: None,
        no_padding: false,
    };
    let engine: EngineSettings = engine_settings(&args.run, &no_batch, mem_cap.as_ref(), quiet)?;
    let catalog = Catalog::load(&args.models_from.catalog)?;
    let mut needs_hub = false;
    for spec in &args.models {
        let (model, _) = crate::catalog::parse_model_spec(spec, &catalog)?;
        needs_hub |= !matches!(model, ModelRef::Local(_));
    }
    let hub = needs_hub
        .then(|| Hub::new(HubConfig::from_env()))
        .transpose()?;
    let cells = sweep::resolve(
        &args.models,
        &catalog,
        hub.as_ref(),
        &ResolveOptions::from_args(&args.quants, &args.models_from, quiet),
    )?;
    let plan = FidelityPlan::new(settings, &cells)?;
    if plan.bases.values().all(Option::is_none) {
        return Err(bad_input(
            "nothing to compare: each model has a single file (give more quants, or --base QUANT|FILE)",
        ));
    }
    if !quiet {
        for (model, base) in &plan.bases {
            if let Some(b) = base {
                eprintln!(
                    "{model}: base {} ({:.2} bits/weight, {})",
                    b.quant,
                    b.bits_per_weight,
                    b.path.display()
                );
            }
        }
        eprintln!(
            "text: {} (sha256 {}), {} chunks of {} tokens, base tokens kept per position: {}",
            plan.settings.text.name,
            &plan.settings.text.sha256[..16],
            plan.settings.n_chunks,
            plan.settings.n_ctx,
            if plan.settings.tail == 0.0 {
                "all".to_string()
            } else {
                format!(
                    "until the rest holds ≤ {:e} of the probability",
                    plan.settings.tail
                )
            }
        );
    }
    let store = Store::open(&args.out.join("results.sqlite"))?;
    let run_id = store.begin_run(
        "fidelity",
        &json!({ "args": std::env::args().collect::<Vec<_>>() }),
    )?;
    crate::interrupt::install();
    let options = TaskOptions::default();
    let formats = TaskFormats::defaults(&[]);
    let outcome = sweep::run(
        &store,
        run_id,
        &cells,
        &SweepConfig {
            tasks: &[],
            options: &options,
            formats: &formats,
            template: None,
            items_per_cell: 0,
            speed: None,
            serve_ctx: crate::memory::DEFAULT_SERVE_CTX,
            engine,
            sandbox: None,
            sandbox_threads: 1,
            source: Source::Embedded,
            verbosity,
            quiet,
            mem_cap,
            fidelity: Some(plan),
        },
    )?;
    crate::report::write(&store, &args.out, &Default::default())?;
    crate::output::print(fidelity_table(&store)?)?;
    if outcome.interrupted {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(crate::interrupt::exit_code());
    }
    Ok(if outcome.failed > 0 { 1 } else { 0 })
}
