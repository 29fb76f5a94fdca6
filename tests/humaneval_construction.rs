//! HumanEval is correct by construction: every canonical solution passes its tests in the
//! sandbox (164/164), and the same solutions with their return statements removed fail
//! (164/164). Skips, saying why, where no strong sandbox exists.

use std::sync::Arc;

use frontier::datasets::{DatasetFiles, Source};
use frontier::prompts::PromptStyle;
use frontier::sandbox::{Protections, Sandbox, SandboxPolicy, Verdict};
use frontier::tasks::{humaneval, Item, Response};
use frontier_engine::StopReason;

fn sandbox() -> Option<Arc<Sandbox>> {
    let policy = SandboxPolicy::default();
    let p = Protections::detect(&policy);
    if !p.is_strong() {
        eprintln!(
            "skipping: no strong sandbox here (missing {})",
            p.missing().join(", ")
        );
        return None;
    }
    Some(Arc::new(Sandbox::new(policy).expect("strong sandbox")))
}

fn without_returns(solution: &str) -> String {
    solution
        .lines()
        .filter(|l| !l.trim_start().starts_with("return"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs every task's program built from `completion(task)`, 4 at a time; returns verdicts.
fn run_all(
    sandbox: &Arc<Sandbox>,
    completion: impl Fn(&frontier::datasets::humaneval::HumanEvalTask) -> String,
) -> Vec<(String, Verdict, String)> {
    let files = DatasetFiles::open("humaneval", &Source::Embedded).unwrap();
    let (tasks, _) = frontier::datasets::humaneval::load(&files, false).unwrap();
    let (items, _) = humaneval::build(&files, false, None, 1024, &PromptStyle::raw()).unwrap();
    assert_eq!(items.len(), 164);
    let jobs: Vec<(Item, String)> = items
        .into_iter()
        .zip(&tasks)
        .map(|(item, task)| {
            let response = Response::Generated {
                text: completion(task),
                stop_reason: StopReason::StopString,
            };
            let program = humaneval::program(&item, &response);
            (item, program)
        })
        .collect();
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (jobs, results, sandbox) = (jobs.clone(), results.clone(), sandbox.clone());
            std::thread::spawn(move || loop {
                let Some((item, program)) = jobs.lock().unwrap().pop() else {
                    break;
                };
                let o = sandbox.run_python(&program).unwrap();
                results.lock().unwrap().push((item.id, o.verdict, o.reason));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::try_unwrap(results).unwrap().into_inner().unwrap()
}

#[test]
fn canonical_solutions_pass_and_gutted_ones_fail() {
    let Some(sandbox) = sandbox() else { return };
    let passed = run_all(&sandbox, |t| t.canonical_solution.clone());
    let failures: Vec<_> = passed
        .iter()
        .filter(|(_, v, _)| *v != Verdict::Pass)
        .collect();
    assert!(
        failures.is_empty(),
        "canonical solutions that did not pass: {failures:?}"
    );
    assert_eq!(passed.len(), 164);

    let gutted = run_all(&sandbox, |t| without_returns(&t.canonical_solution));
    let passing: Vec<_> = gutted
        .iter()
        .filter(|(_, v, _)| *v == Verdict::Pass)
        .collect();
    assert!(
        passing.is_empty(),
        "solutions without returns that still passed: {passing:?}"
    );
    assert_eq!(gutted.len(), 164);
}
