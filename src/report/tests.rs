//! Snapshot tests of the sweep reporters on a fixed set of cells: two models, three quants
//! of one (one derived, one failed), paired items that make a known McNemar result.

use serde_json::json;

use super::analysis::{self, Comparison};
use super::data::{CellResult, TaskResult};
use super::{comparison, formats, plot, results};
use crate::eval::aggregate::summarize;
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

fn cell(
    model: &str,
    quant: &str,
    file_mib: u64,
    rss_mib: Option<u64>,
    tasks: Vec<TaskResult>,
) -> CellResult {
    CellResult {
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
        model_sha256: "ab".repeat(32),
        config: json!({"formats": ["raw"], "threads": 2, "backend": "CPU", "llama_cpp": "x", "machine": "m"}),
        primary_format: Format::Raw,
        tasks,
        memory: Vec::new(),
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
