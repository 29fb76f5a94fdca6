use super::*;
use serde_json::json;

fn cell(key: &str) -> CellInfo {
    CellInfo {
        key: key.into(),
        model: "m".into(),
        model_path: "/m.gguf".into(),
        model_sha256: "ab".repeat(32),
        quant: "Q4_K_M".into(),
        derived_from: None,
        architecture: "llama".into(),
        n_params: 1,
        file_size: 2,
        config: json!({"threads": 2}),
    }
}

fn spec(protocol: &serde_json::Value) -> TaskRunSpec<'_> {
    TaskRunSpec {
        task: "mmlu",
        task_key: "mmlu-abc",
        protocol,
        dataset_hash: "h",
        n_shot: 5,
        n_items: 2,
    }
}

fn item(id: &str, correct: bool) -> ItemRow {
    ItemRow {
        item_id: id.into(),
        group: Some("anatomy".into()),
        prompt_sha256: "00".into(),
        output: "A: -1.0".into(),
        extracted: Some("A".into()),
        gold: "A".into(),
        correct,
        format_failure: false,
        metrics: [("acc".to_string(), if correct { 1.0 } else { 0.0 })].into(),
        detail: json!({"x": 1}),
        prompt_tokens: 10,
        output_tokens: 1,
        time_ms: 3.5,
    }
}

#[test]
fn items_are_stored_once_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.sqlite");
    let (task_id, cell_id) = {
        let s = Store::open(&path).unwrap();
        let run = s.begin_run("eval", &json!({})).unwrap();
        let c = s.upsert_cell(run, &cell("k1")).unwrap();
        let t = s.upsert_task_run(c, &spec(&json!({"shots": 5}))).unwrap();
        assert!(s.insert_item(t.id, &item("anatomy/0", true)).unwrap());
        assert!(
            !s.insert_item(t.id, &item("anatomy/0", false)).unwrap(),
            "duplicates are ignored"
        );
        (t.id, c)
    };
    let s = Store::open(&path).unwrap();
    let items = s.items(task_id).unwrap();
    assert_eq!(items, vec![item("anatomy/0", true)]);
    assert_eq!(s.done_items(task_id).unwrap().len(), 1);
    // Re-registering the same cell and protocol finds the same rows.
    let run = s.begin_run("eval", &json!({})).unwrap();
    assert_eq!(s.upsert_cell(run, &cell("k1")).unwrap(), cell_id);
    assert_eq!(
        s.upsert_task_run(cell_id, &spec(&json!({}))).unwrap().id,
        task_id
    );
    s.finish_cell(cell_id, CellStatus::Failed, Some("boom"), Some(1234), None)
        .unwrap();
    let cells = s.cells().unwrap();
    assert_eq!(cells[0].status, CellStatus::Failed);
    assert_eq!(cells[0].peak_rss_bytes, Some(1234));
    assert_eq!(s.find_items("anatomy/0").unwrap()[0].0, task_id);
}

#[test]
fn speed_records_replace_by_test() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("r.sqlite")).unwrap();
    let run = s.begin_run("speed", &json!({})).unwrap();
    let c = s.upsert_cell(run, &cell("k")).unwrap();
    let mut r = SpeedRecord {
        test: "pp512".into(),
        n_prompt: 512,
        n_gen: 0,
        avg_ts: 100.0,
        stddev_ts: 1.0,
        samples_ts: vec![99.0, 101.0],
        ttft_ms: 5.0,
        load_ms: 7.0,
    };
    s.record_speed(c, &r).unwrap();
    r.avg_ts = 200.0;
    s.record_speed(c, &r).unwrap();
    assert_eq!(s.speed(c).unwrap(), vec![r]);
}
