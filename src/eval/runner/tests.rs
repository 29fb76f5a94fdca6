//! The cell runner's steps without a model: message handling against a real store, and the
//! error precedence.

use std::time::Duration;

use frontier_process::usage::SampledPeaks;
use frontier_process::{ChildExit, ChildOutcome, Failure, Mechanism};
use serde_json::json;

use super::live::{CellProgress, Live, Msg};
use super::*;
use crate::eval::infer::WorkResult;
use crate::eval::job::EvalEvent;
use crate::memory::verdict::MemoryRecord;
use crate::prompts::Format;
use crate::store::CellInfo;
use crate::tasks::{Item, Response, Scoring, TaskName, Work};

fn item(i: usize, gold: &str) -> Item {
    Item {
        id: format!("astronomy/{i}"),
        group: Some("astronomy".into()),
        work: Work::Choices {
            context: format!("Question {i}?\nAnswer:"),
            continuations: [" A", " B", " C", " D"].map(String::from).to_vec(),
        },
        gold: gold.into(),
        scoring: Scoring::Choice,
        shared_prefix: None,
    }
}

fn plan(items: Vec<Item>) -> TaskPlan {
    TaskPlan {
        task: TaskName::Mmlu,
        format: Format::Raw,
        template: "raw (lm-eval)".into(),
        template_hash: "t".into(),
        items,
        protocol: json!({"task": "mmlu"}),
        dataset_hash: "d".into(),
        n_shot: 0,
    }
}

fn cell() -> CellInfo {
    CellInfo {
        key: "k".into(),
        model: "m".into(),
        model_path: "m.gguf".into(),
        model_sha256: "s".into(),
        quant: "Q4_K_M".into(),
        derived_from: None,
        architecture: "llama".into(),
        n_params: 1,
        file_size: 1,
        config: json!({}),
    }
}

/// An answer picking `letter` for the unit `key`.
fn answer(key: &str, letter: usize) -> Msg {
    let mut logprobs = vec![-5.0; 4];
    logprobs[letter] = -0.1;
    Msg::Worker(EvalEvent::Result(WorkResult {
        key: key.into(),
        response: Response::Choices {
            logprobs,
            greedy: vec![false; 4],
        },
        prompt_tokens: 10,
        output_tokens: 0,
        time_ms: 1.0,
    }))
}

fn outcome(exit: ChildExit, failure: Option<&str>) -> ChildOutcome {
    ChildOutcome {
        exit,
        failure: failure.map(|m| Failure {
            message: m.into(),
            bad_input: false,
        }),
        peak_rss_bytes: 100 << 20,
        stderr_tail: vec!["GGML_ASSERT failed".into()],
        wall: Duration::from_secs(1),
        sampled: SampledPeaks::default(),
        major_faults: 0,
        cap: None,
    }
}

#[test]
fn answers_are_stored_once_and_failures_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("results.sqlite")).unwrap();
    let run_id = store.begin_run("test", &json!({})).unwrap();
    let plans = [plan(vec![item(0, "A"), item(1, "B"), item(2, "C")])];
    let reg = register::register(&store, run_id, &cell(), &plans).unwrap();
    assert_eq!(reg.units.len(), 3);
    let keys: Vec<String> = reg.units.iter().map(|u| u.key.clone()).collect();
    let progress = CellProgress::new(3, "m Q4_K_M", true, None);
    let mut live = Live::new(&store, reg.pending, progress, None);

    live.handle(answer(&keys[0], 0)).unwrap(); // right
    live.handle(answer(&keys[0], 1)).unwrap(); // the same unit again: ignored
    live.handle(answer("no such key", 0)).unwrap();
    live.handle(Msg::Worker(EvalEvent::UnitError {
        key: keys[1].clone(),
        message: "needs 9000 tokens of context".into(),
    }))
    .unwrap();
    assert!(live.waiting(), "the worker has not exited yet");
    live.handle(Msg::WorkerExit(Ok(outcome(
        ChildExit::Code(1),
        Some("llama_decode failed"),
    ))))
    .unwrap();
    assert!(!live.waiting());
    let (seen, unanswered) = live.end();
    assert_eq!((seen.stored, unanswered), (2, 1));
    assert_eq!(
        seen.reported_error().as_deref(),
        Some("llama_decode failed")
    );

    let tr = store.task_runs(None).unwrap()[0].id;
    let items = store.items(tr).unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].correct && items[0].extracted.as_deref() == Some("A"));
    assert!(!items[1].correct && items[1].detail["error"] == "needs 9000 tokens of context");

    // Registering again finds the two stored items done.
    let again = register::register(&store, run_id, &cell(), &plans).unwrap();
    assert_eq!((again.skipped, again.units.len()), (2, 1));
}

fn memory(limit: Option<u64>, verdict: Verdict) -> MemoryRecord {
    MemoryRecord {
        job: "eval".into(),
        limit,
        mechanism: limit.map(|_| Mechanism::CgroupV1),
        mode: "mmap".into(),
        estimate: None,
        weights: 0,
        peak_rss: None,
        peak_anon: None,
        peak_file: None,
        cgroup_peak: None,
        disk_read: None,
        major_faults: None,
        verdict,
        detail: "killed at the 200 MiB cap".into(),
        tg_ts: None,
        n_ctx: None,
        n_seq: None,
    }
}

#[test]
fn the_most_telling_error_explains_the_cell() {
    let killed = outcome(ChildExit::Signal(9), None);
    let oom = memory(Some(200 << 20), Verdict::OomKilled);
    fn end<'a>(
        memory: Option<&'a MemoryRecord>,
        reported: Option<&str>,
        exit: &'a ChildOutcome,
        unanswered: usize,
    ) -> CellEnd<'a> {
        CellEnd {
            memory,
            reported: reported.map(String::from),
            exit: Some(exit),
            unanswered,
        }
    }
    // Under a cap, the OOM kill is the cell's outcome, whatever else was said.
    assert_eq!(
        cell_error(&end(Some(&oom), Some("decode failed"), &killed, 5)).unwrap(),
        "OOM-killed: killed at the 200 MiB cap"
    );
    // Without a cap an OOM verdict is not claimed: the worker's own words come first...
    let uncapped = memory(None, Verdict::OomKilled);
    assert_eq!(
        cell_error(&end(Some(&uncapped), Some("decode failed"), &killed, 5)).unwrap(),
        "decode failed"
    );
    // ...then how it died, with its last stderr line...
    assert_eq!(
        cell_error(&end(None, None, &killed, 5)).unwrap(),
        "worker killed by signal 9 (SIGKILL): GGML_ASSERT failed"
    );
    // ...then the items it never answered.
    let clean = outcome(ChildExit::Code(0), None);
    let quiet = CellEnd {
        memory: None,
        reported: None,
        exit: Some(&clean),
        unanswered: 3,
    };
    assert_eq!(
        cell_error(&quiet).unwrap(),
        "3 items were not answered by the worker"
    );
    let done = CellEnd {
        unanswered: 0,
        ..quiet
    };
    assert_eq!(cell_error(&done), None);
}

#[test]
fn task_walls_run_from_the_previous_task() {
    let t0 = Instant::now();
    let last = [
        (1, t0 + Duration::from_millis(300)),
        (2, t0 + Duration::from_millis(500)),
    ]
    .into_iter()
    .collect();
    let runs = [
        ("mmlu-a".to_string(), 1),
        ("gsm8k-b".to_string(), 2),
        ("humaneval-c".to_string(), 3),
    ];
    let walls = task_walls(&runs, &last, t0);
    assert_eq!(
        walls.len(),
        2,
        "a task with nothing stored has no wall time"
    );
    assert!((walls[0].1 - 300.0).abs() < 1e-6 && (walls[1].1 - 200.0).abs() < 1e-6);
}
