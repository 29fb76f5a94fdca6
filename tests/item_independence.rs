//! An item's result is a property of the item and the model, not of the run: the stored
//! log-probabilities (MMLU) and generations (GSM8K with shared exemplars) of an item are
//! byte-identical whether it runs alone or among others (among 6 or 10 generations in the
//! CPU's 8 slots, decoded in two batches of 4 kept in order of depth, some start while
//! others are generating, and the last finish with slots idle), and whether the run has 8
//! slots or 4 (`--parallel 4`: one batch). The subjects chosen are those whose
//! first questions begin alike ("What is the term for …", "Statement 1| …"), where a prefix
//! found by comparing the run's prompts would run into the questions.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{assert_success, frontier, model, SMOLLM_Q4_K_M};

/// item id → (stored detail, output) for every item of the run.
fn run(out: &Path, args: &[&str]) -> BTreeMap<String, (serde_json::Value, String)> {
    let o = frontier()
        .args(["eval", "-t", "2", "-q", "--out"])
        .arg(out)
        .args(args)
        .arg(model(SMOLLM_Q4_K_M))
        .output()
        .unwrap();
    assert_success(&o);
    let store = frontier::store::Store::open(&out.join("results.sqlite")).unwrap();
    let mut items = BTreeMap::new();
    for tr in store.task_runs(None).unwrap() {
        for i in store.items(tr.id).unwrap() {
            items.insert(i.item_id, (i.detail, i.output));
        }
    }
    items
}

#[test]
fn mmlu_log_probabilities_do_not_depend_on_the_other_items() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = [
        "--subjects",
        "management,machine_learning,us_foreign_policy",
    ];
    let mmlu = |limit: &str, name: &str| {
        run(
            &dir.path().join(name),
            &[&["--tasks", "mmlu", "--limit", limit][..], &subjects].concat(),
        )
    };
    let alone = mmlu("1", "one");
    let three = mmlu("3", "three");
    let six = mmlu("6", "six");
    assert_eq!((alone.len(), three.len(), six.len()), (3, 9, 18));
    for (id, item) in &three {
        assert_eq!(&six[id], item, "{id}: --limit 3 against --limit 6");
        if let Some(one) = alone.get(id) {
            assert_eq!(one, item, "{id}: alone against --limit 3");
        }
    }
    // With a generation task in the same run (whose context has a KV stream per sequence).
    let mixed = run(
        &dir.path().join("mixed"),
        &[
            &["--tasks", "mmlu,gsm8k", "--limit", "mmlu=3,gsm8k=2"][..],
            &["--gsm8k-max-tokens", "16"],
            &subjects,
        ]
        .concat(),
    );
    for (id, item) in &three {
        assert_eq!(&mixed[id], item, "{id}: alone against beside GSM8K");
    }
}

#[test]
fn shared_exemplar_generations_do_not_depend_on_the_other_items() {
    let dir = tempfile::tempdir().unwrap();
    for task in [
        &["--tasks", "gsm8k", "--gsm8k-sampling", "fixed"][..],
        &["--tasks", "gsm8k_cot"][..],
    ] {
        let gsm = |limit: &str, name: &str| {
            let extra = ["--limit", limit, "--gsm8k-max-tokens", "64"];
            run(&dir.path().join(name), &[task, &extra[..]].concat())
        };
        let name = task[1];
        let one = gsm("1", &format!("{name}-1"));
        let six = gsm("6", &format!("{name}-6"));
        assert_eq!(
            one["test/0"], six["test/0"],
            "{name}: test/0 alone and among 6"
        );
        // Ten requests in the default 8 slots (two batches of 4 kept in order of depth,
        // sequences moved between KV streams as requests come and go, then the last
        // requests in one), against four in `--parallel 4` (one batch of 4).
        let ten = gsm("10", &format!("{name}-10"));
        let four = run(
            &dir.path().join(format!("{name}-4-parallel4")),
            &[
                task,
                &[
                    "--limit",
                    "4",
                    "--gsm8k-max-tokens",
                    "64",
                    "--parallel",
                    "4",
                ][..],
            ]
            .concat(),
        );
        for (id, item) in &four {
            assert_eq!(
                &ten[id], item,
                "{name}: {id} among 4 in 4 slots and among 10 in 8"
            );
        }
    }
}
