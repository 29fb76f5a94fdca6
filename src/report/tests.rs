//! Snapshot tests of the sweep reporters on a fixed set of cells: two models, three quants
//! of one (one derived, one failed), paired items that make a known McNemar result.

use serde_json::json;

use super::analysis::{self, Comparison};
use super::data::{CellResult, TaskResult};
use super::{comparison, formats, plot, results};
use crate::eval::aggregate::summarize;
use crate::memory::verdict::{MemoryRecord, Verdict};
use crate::prompts::Format;
use crate::store::{CellStatus, ItemRow};
use crate::tasks::TaskName;

fn items(task: TaskName, pattern: &[bool], format_failures: usize) -> Vec<ItemRow> {
    let metric = task.primary_metric();
    pattern
        .iter()
        .enumerate()
        .map(|(i, &ok)| ItemRow {
            item_id: format!("q{i}"),
            group: (task == TaskName::Mmlu)
                .then(|| if i % 2 == 0 { "anatomy" } else { "philosophy" }.to_string()),
            prompt_sha256: String::new(),
            output: String::new(),
            extracted: None,
            gold: String::new(),
            correct: ok,
            format_failure: i < format_failures,
            metrics: [(metric.to_string(), if ok { 1.0 } else { 0.0 })].into(),
            detail: json!(null),
            prompt_tokens: 0,
            output_tokens: 0,
            time_ms: 0.0,
        })
        .collect()
}

fn task(task: TaskName, pattern: &[bool], format_failures: usize) -> TaskResult {
    let rows = items(task, pattern, format_failures);
    TaskResult {
        task,
        format: Format::Raw,
        template: "raw (lm-eval)".into(),
        task_key: format!("{}-abc", task.as_str()),
        n_shot: 5,
        dataset_hash: "d".repeat(8),
        summary: summarize(task, &rows),
        outcomes: rows
            .iter()
            .map(|r| (r.item_id.clone(), r.correct))
            .collect(),
    }
}

/// The serving footprint of a cell: one sequence at 4096 tokens, `peak` bytes.
fn serve_record(peak: u64) -> MemoryRecord {
    MemoryRecord {
        job: crate::memory::SERVE_JOB.into(),
        limit: None,
        mechanism: None,
        mode: "mmap".into(),
        estimate: Some(peak + (4 << 20)),
        weights: 0,
        peak_rss: Some(peak),
        peak_anon: None,
        peak_file: None,
        cgroup_peak: None,
        disk_read: None,
        major_faults: None,
        verdict: Verdict::Fits,
        detail: String::new(),
        tg_ts: None,
        n_ctx: Some(4096),
        n_seq: Some(1),
    }
}

fn cell(
    model: &str,
    quant: &str,
    file_mib: u64,
    rss_mib: Option<u64>,
    tasks: Vec<TaskResult>,
) -> CellResult {
    CellResult {
        id: 0,
        model: model.into(),
        quant: quant.into(),
        derived_from: None,
        status: CellStatus::Done,
        error: None,
        file_size: file_mib << 20,
        n_params: 135_000_000,
        peak_rss_bytes: rss_mib.map(|m| m << 20),
        load_ms: Some(50.0),
        pp: Some(("pp512".into(), 500.0, 5.0)),
        tg: Some(("tg128".into(), 90.0, 1.0)),
        tg_samples: 3,
        serving_estimate: None,
        model_sha256: "ab".repeat(32),
        config: json!({"formats": ["raw"], "threads": 2, "backend": "CPU", "llama_cpp": "x", "machine": "m"}),
        primary_formats: Default::default(),
        tasks,
        memory: rss_mib.map(|m| serve_record(m << 20)).into_iter().collect(),
        fidelity: None,
    }
}

/// 20 items; the reference gets 12 right; the quant loses 6 of them and gains 1.
fn cells() -> Vec<CellResult> {
    let reference: Vec<bool> = (0..20).map(|i| i < 12).collect();
    let quant: Vec<bool> = (0..20).map(|i| (6..12).contains(&i) || i == 19).collect();
    let mut f16 = cell(
        "SmolLM2",
        "F16",
        258,
        Some(540),
        vec![
            task(TaskName::Mmlu, &reference, 0),
            task(TaskName::Gsm8k, &reference, 0),
        ],
    );
    f16.derived_from = Some("Q4_1".into());
    let q4 = cell(
        "SmolLM2",
        "Q4_K_M",
        101,
        Some(190),
        vec![
            task(TaskName::Mmlu, &quant, 0),
            task(TaskName::Gsm8k, &quant, 5),
        ],
    );
    let gemma = cell(
        "gemma-3-270m",
        "Q4_K_M",
        241,
        Some(515),
        vec![
            task(TaskName::Mmlu, &reference, 0),
            task(TaskName::Gsm8k, &quant, 0),
        ],
    );
    let mut failed = cell("SmolLM2", "Q8_0", 138, None, vec![]);
    failed.status = CellStatus::Failed;
    failed.error = Some("worker killed by signal 9 (SIGKILL)".into());
    failed.pp = None;
    failed.tg = None;
    vec![f16, q4, gemma, failed]
}

#[test]
fn deltas_use_paired_items_and_mcnemar() {
    let d = analysis::deltas(&cells());
    let mmlu = d
        .iter()
        .find(|d| d.quant == "Q4_K_M" && d.task == TaskName::Mmlu)
        .unwrap();
    assert_eq!((mmlu.n, mmlu.lost, mmlu.gained), (20, 6, 1));
    assert!((mmlu.points - (-25.0)).abs() < 1e-9);
    // binomtest(1, 7, 0.5) = 0.125
    assert!((mmlu.p_value - 0.125).abs() < 1e-12);
    assert_eq!(mmlu.reference, "F16");
    assert_eq!(
        mmlu.sentence(),
        "SmolLM2 Q4_K_M loses 25.0 points on mmlu vs F16 (20 paired items, 6 lost, 1 gained; McNemar p = 0.125, not significant)"
    );
}

#[test]
fn frontier_keeps_undominated_cells() {
    // F16 (60%, 540 MiB) and Q4_K_M (35%, 190 MiB) are both on it; gemma (60%/35%, 515 MiB)
    // has a lower mean than F16 but less memory, so it is on it too.
    let c = cells();
    let f = analysis::frontier(&c);
    let labels: Vec<String> = f.iter().map(|&i| c[i].label()).collect();
    assert_eq!(
        labels,
        ["SmolLM2 F16", "SmolLM2 Q4_K_M", "gemma-3-270m Q4_K_M"]
    );
}

#[test]
fn comparison_markdown_snapshot() {
    insta::assert_snapshot!(comparison::comparison_md(&Comparison::build(&cells())));
}

#[test]
fn comparison_csv_snapshot() {
    insta::assert_snapshot!(String::from_utf8(
        comparison::comparison_csv(&Comparison::build(&cells())).unwrap()
    )
    .unwrap());
}

#[test]
fn results_csv_snapshot() {
    insta::assert_snapshot!(String::from_utf8(results::results_csv(&cells()).unwrap()).unwrap());
}

#[test]
fn plot_has_every_cell_and_the_frontier() {
    let svg = plot::frontier_svg(&Comparison::build(&cells()))
        .unwrap()
        .unwrap();
    assert!(svg.starts_with("<svg"));
    for label in [
        "SmolLM2",
        "gemma-3-270m",
        "efficient frontier",
        "F16",
        "Q4_K_M",
    ] {
        assert!(svg.contains(label), "{label}");
    }
    let none: Vec<CellResult> = Vec::new();
    assert!(plot::frontier_svg(&Comparison::build(&none))
        .unwrap()
        .is_none());
}

#[test]
fn format_sensitivity_lists_each_format_with_failure_rates() {
    let mut c = cells();
    assert_eq!(
        formats::format_sensitivity_md(&c),
        "",
        "one format: no section"
    );
    let pattern: Vec<bool> = (0..20).map(|i| i < 15).collect();
    let mut tuned = task(TaskName::Gsm8k, &pattern, 1);
    tuned.format = Format::Tuned;
    tuned.template = "tuned: smollm2".into();
    c[1].tasks.push(tuned);
    let md = formats::format_sensitivity_md(&c);
    assert!(md.contains("## Format sensitivity"), "{md}");
    let line = md
        .lines()
        .find(|l| l.contains("| SmolLM2") && l.contains("Q4_K_M") && l.contains("GSM8K"))
        .unwrap();
    assert!(
        line.contains("35.0 (25% ff)") && line.contains("75.0 (5% ff)") && line.contains("40.0"),
        "{line}"
    );
}

mod decisions {
    //! The decision framework on synthetic stores: a clear winner, a tie within noise, a
    //! tier where nothing fits, a pick with high format failures.

    use super::*;
    use crate::report::decision::{Basis, Criterion, Decision};

    const MIB: u64 = 1 << 20;

    fn decide(cells: &[CellResult], tiers: &[u64]) -> Decision {
        Decision::build(cells, &Comparison::build(cells), tiers)
    }

    fn pick(d: &Decision, tier: usize, c: Criterion) -> &crate::report::decision::Pick {
        d.tiers[tier]
            .picks
            .iter()
            .find(|p| p.criterion == c)
            .unwrap()
    }

    #[test]
    fn a_clear_winner_is_named_without_a_tie() {
        let strong: Vec<bool> = (0..20).map(|i| i < 18).collect();
        let weak: Vec<bool> = (0..20).map(|i| i < 8).collect();
        let cells = vec![
            cell(
                "big",
                "Q8_0",
                300,
                Some(600),
                vec![task(TaskName::Mmlu, &strong, 0)],
            ),
            cell(
                "small",
                "Q4_K_M",
                100,
                Some(200),
                vec![task(TaskName::Mmlu, &weak, 0)],
            ),
        ];
        let d = decide(&cells, &[1 << 30]);
        let p = pick(&d, 0, Criterion::Task(TaskName::Mmlu));
        assert_eq!(cells[p.cell].label(), "big Q8_0");
        assert!((p.value - 0.9).abs() < 1e-9);
        assert_eq!(p.tie, None, "10 discordant items all one way: p = 0.002");
        assert_eq!(p.flag, None);
        // Quality per GB favours the small one: 40% per 0.195 GiB beats 90% per 0.586 GiB.
        let q = pick(&d, 0, Criterion::QualityPerGb);
        assert_eq!(cells[q.cell].label(), "small Q4_K_M");
    }

    #[test]
    fn a_best_within_noise_of_the_runner_up_is_a_tie() {
        // F16 and gemma answer the same 12 of 20 MMLU items right: McNemar p = 1.
        let d = decide(&cells(), &[1 << 30]);
        let p = pick(&d, 0, Criterion::Task(TaskName::Mmlu));
        let tie = p.tie.as_deref().unwrap();
        assert!(
            tie.starts_with("tie with ") && tie.contains("McNemar p = 1.00, n = 20 paired items"),
            "{tie}"
        );
        // Equal scores: the one that needs less memory (gemma 515 MiB, F16 540 MiB).
        assert_eq!(cells()[p.cell].label(), "gemma-3-270m Q4_K_M");
        // Speeds of 90 ± 1 t/s over 3 runs overlap.
        let s = pick(&d, 0, Criterion::Speed);
        assert!(
            s.tie.as_deref().unwrap().contains("intervals"),
            "{:?}",
            s.tie
        );
    }

    #[test]
    fn a_tier_where_nothing_fits_names_the_closest_cell() {
        let d = decide(&cells(), &[100 * MIB, 256 * MIB]);
        let empty = &d.tiers[0];
        assert!(empty.fits.is_empty() && empty.picks.is_empty());
        let (i, lacks) = empty.closest.unwrap();
        assert_eq!(cells()[i].label(), "SmolLM2 Q4_K_M");
        assert_eq!(lacks, 90 * MIB);
        let one = &d.tiers[1];
        assert_eq!(one.fits.len(), 1);
        assert_eq!(one.fits[0].basis, Basis::Measured);
        assert_eq!(one.fits[0].headroom, 66 * MIB);
        let md = crate::report::decision::decision_md(&d, &cells());
        assert!(
            md.contains("nothing fits; closest: SmolLM2 Q4_K_M (needs 90.00 MiB more)"),
            "{md}"
        );
    }

    #[test]
    fn a_pick_with_many_format_failures_is_flagged() {
        // Q4_K_M alone fits in 256 MiB; 5 of its 20 GSM8K answers had nothing to extract.
        let d = decide(&cells(), &[256 * MIB]);
        let p = pick(&d, 0, Criterion::Task(TaskName::Gsm8k));
        assert_eq!(
            p.flag.as_deref(),
            Some("25% of its GSM8K answers had no extractable answer")
        );
        assert_eq!(pick(&d, 0, Criterion::Task(TaskName::Mmlu)).flag, None);
        let md = crate::report::decision::decision_md(&d, &cells());
        assert!(md.contains("⚠ 25% of its GSM8K answers"), "{md}");
        assert!(md.contains("## How the picks are made"), "{md}");
    }
}

mod fidelity_columns {
    use super::*;
    use crate::fidelity::metrics::{ChunkStats, Est};
    use crate::fidelity::{FidelityRun, StoredFidelity};

    fn run(quant_bpw: f64, is_base: bool) -> FidelityRun {
        FidelityRun {
            base_quant: "F16".into(),
            base_path: "/m/F16.gguf".into(),
            base_sha256: "cd".repeat(32),
            base_bits_per_weight: 16.0,
            base_derived_from: Some("Q4_1 m.gguf sha256:ab".into()),
            quant_bits_per_weight: quant_bpw,
            text: "default".into(),
            text_sha256: "ef".repeat(32),
            n_ctx: 512,
            n_chunks: 1,
            tail: 1e-3,
            n_vocab: 49152,
            is_base,
            ppl_base: Est {
                value: 6.25,
                se: 0.2,
            },
            base_file_bytes: 1 << 20,
        }
    }

    /// A chunk of 100 tokens whose KL divergences are `kld` each ± a little.
    fn stored(kld: f64, quant_bpw: f64) -> StoredFidelity {
        let mut c = ChunkStats::default();
        let base = crate::fidelity::base::BaseRecord {
            nll: 2.0,
            top: vec![(0, -0.1)],
        };
        for i in 0..100 {
            c.add(
                &base,
                &crate::fidelity::metrics::TokenCompare {
                    kld: kld * (0.5 + (i % 3) as f64 * 0.5),
                    same_top: i % 10 != 0,
                    nll: 2.1,
                },
            );
        }
        StoredFidelity {
            key: "k".into(),
            run: run(quant_bpw, false),
            chunks_done: 1,
            tokens_per_s: Some(500.0),
            summary: Some(crate::fidelity::metrics::summarize(&[c])),
        }
    }

    #[test]
    fn kld_columns_findings_and_notes() {
        let pattern: Vec<bool> = (0..20).map(|i| i < 12).collect();
        let mut cells = vec![
            cell(
                "SmolLM2",
                "F16",
                258,
                Some(540),
                vec![task(TaskName::Mmlu, &pattern, 0)],
            ),
            cell(
                "SmolLM2",
                "Q8_0",
                138,
                Some(300),
                vec![task(TaskName::Mmlu, &pattern, 0)],
            ),
            cell(
                "SmolLM2",
                "Q4_K_M",
                101,
                Some(190),
                vec![task(TaskName::Mmlu, &pattern, 0)],
            ),
        ];
        cells[0].fidelity = Some(StoredFidelity {
            key: "k".into(),
            run: run(16.0, true),
            chunks_done: 0,
            tokens_per_s: None,
            summary: None,
        });
        cells[1].fidelity = Some(stored(0.004, 8.5));
        cells[2].fidelity = Some(stored(0.05, 16.5));
        let c = Comparison::build(&cells);
        assert!(c.has_fidelity);
        let md = comparison::comparison_md(&c);
        assert!(md.contains("KLD vs base [95% CI]"), "{md}");
        assert!(md.contains(" base |"), "the base row says so: {md}");
        // Same answers on MMLU, different distributions: KLD tells them apart.
        assert!(
            md.contains("SmolLM2 Q8_0 vs F16 by KL divergence: mean 0.0040")
                && md.contains("distinguishable from the base"),
            "{md}"
        );
        assert!(
            md.contains("quants by KL divergence from the base: Q8_0 < Q4_K_M"),
            "{md}"
        );
        assert!(md.contains("was itself made from Q4_1"), "{md}");
        // A "base" with fewer bits per weight than the quant is warned about.
        assert!(
            md.contains("is not of higher precision than this file"),
            "{md}"
        );
        let csv = String::from_utf8(comparison::comparison_csv(&c).unwrap()).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let q8: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
        assert_eq!(q8[col("fidelity_base")], "F16");
        assert_eq!(q8[col("fidelity_tokens")], "100");
        assert_eq!(q8[col("kld_mean")], "0.003980", "{q8:?}");
        let html = crate::report::html::report_html(&crate::report::html::Page {
            cells: &cells,
            comparison: &c,
            decision: &crate::report::decision::Decision::build(&cells, &c, &[1 << 30]),
            items: &[],
            generated: "now".into(),
        });
        assert!(html.contains("KL divergence from the base"));
    }
}
