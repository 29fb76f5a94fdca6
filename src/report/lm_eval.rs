//! lm-evaluation-harness's output files for a cell (`lm_eval --output_path DIR
//! --log_samples`, 0.4.12+ layout), so the tools people point at lm-eval output — its own
//! `make_table`, notebooks, leaderboard loaders — read frontier's:
//! `DIR/<model>/results_<stamp>.json` and `samples_<task>_<stamp>.jsonl` per leaf task.
//!
//! Each task's results come from its primary prompt format's run. The values are lm-eval's
//! (`acc,none`, `exact_match,strict-match`, `pass@1,create_test`, their `_stderr` with the
//! n−1 denominator; MMLU's groups weighted by size with the pooled stderr). Ours beside
//! them, under keys lm-eval does not use: `frontier` at the top (version, format per task,
//! store path) and `frontier_format` in each task's config metadata.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::datasets::{gsm8k, humaneval, mmlu, DatasetFiles, Source};
use crate::hashing::sha256_hex;
use crate::prompts::Format;
use crate::store::{ItemRow, Store, StoredCell, TaskRun};
use crate::tasks::{TaskName, TaskOptions};

/// A JSON object that keeps its keys in the order given (lm-eval's readers print rows in
/// file order).
struct Ordered(Vec<(String, Value)>);

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn ordered(pairs: Vec<(&str, Value)>) -> Value {
    serde_json::to_value(Ordered(
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    ))
    .expect("an ordered object serializes")
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub results: PathBuf,
    pub samples: Vec<PathBuf>,
}

/// lm-eval's `sanitize_model_name`.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in name.chars() {
        if "\"<>:/|\\?*[]".contains(c) {
            if !in_run {
                out.push_str("__");
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// `YYYY-MM-DDTHH-MM-SS.ffffff` (UTC): Python's `isoformat()` with `:` made `-`.
fn stamp(now: std::time::SystemTime) -> String {
    let d = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let iso = frontier_core::units::utc_timestamp(d.as_secs());
    let base = iso.trim_end_matches('Z').replace(':', "-");
    match d.subsec_micros() {
        0 => base,
        us => format!("{base}.{us:06}"),
    }
}

/// A float as Python's `str()` writes it (`-4.0`, `1e-05`, `0.3333333333333333`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let exp = if x == 0.0 {
        0
    } else {
        x.abs().log10().floor() as i32
    };
    if x != 0.0 && !(-4..16).contains(&exp) {
        let s = format!("{x:e}");
        let (mantissa, e) = s.split_once('e').expect("an exponent");
        let e: i32 = e.parse().expect("an integer exponent");
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", e.abs());
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// lm-eval's `mean_stderr` of 0/1 values: the sample standard deviation (n−1) over √n.
fn mean_stderr(values: &[f64]) -> Value {
    let n = values.len();
    if n < 2 {
        return json!("N/A");
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    json!((var / n as f64).sqrt())
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// One leaf task's entry and samples.
struct Leaf {
    name: String,
    alias: String,
    /// (metric, filter) → per-item values.
    values: Vec<(String, String, Vec<f64>)>,
    config: Value,
    version: Value,
    n_shot: usize,
    higher_is_better: Value,
    original: usize,
    /// Its samples file, already written.
    samples: PathBuf,
    /// lm-eval's task hash: sha256 of every sample's doc, prompt and target hashes.
    task_hash: String,
}

impl Leaf {
    fn entry(&self) -> Value {
        let mut pairs = vec![
            ("name".to_string(), json!(self.name)),
            ("alias".to_string(), json!(self.alias)),
            ("sample_len".to_string(), json!(self.sample_len())),
        ];
        for (metric, filter, values) in &self.values {
            pairs.push((format!("{metric},{filter}"), json!(mean(values))));
            pairs.push((format!("{metric}_stderr,{filter}"), mean_stderr(values)));
        }
        serde_json::to_value(Ordered(pairs)).expect("an ordered object serializes")
    }

    fn sample_len(&self) -> usize {
        self.values
            .iter()
            .map(|(_, _, v)| v.len())
            .max()
            .unwrap_or(0)
    }
}

/// Writes lm-eval's files for one cell under `dir`; `started` is when its run began.
pub fn write_cell(
    store: &Store,
    cell: &StoredCell,
    dir: &Path,
    started: std::time::SystemTime,
) -> Result<Written> {
    let source = cell
        .info
        .config
        .get("data_source")
        .and_then(Value::as_str)
        .map_or(Source::Embedded, Source::from_description);
    let runs = primary_runs(store, cell)?;
    let model_name = Path::new(&cell.info.model_path)
        .file_name()
        .map_or(cell.info.model.clone(), |f| {
            f.to_string_lossy().into_owned()
        });
    let folder = dir.join(sanitize(&model_name));
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let samples = SampleFiles {
        folder,
        stamp: stamp(std::time::SystemTime::now()),
    };
    let mut leaves = Vec::new();
    let mut formats = BTreeMap::new();
    for (task, format, run) in &runs {
        let items = store.items(run.id)?;
        if items.is_empty() {
            continue;
        }
        formats.insert(task.as_str().to_string(), format.as_str().to_string());
        // The run's plan, rebuilt once for its items' prompts and dropped with the run.
        let plan = OnceCell::new();
        let context = |item: &ItemRow| -> String {
            let plan =
                plan.get_or_init(|| crate::tasks::rebuild::rebuild_plan(run, &cell.info).ok());
            rebuilt_prompt(plan.as_ref(), item)
        };
        match task {
            TaskName::Mmlu => leaves.extend(mmlu_leaves(
                &source, run, &items, *format, &context, &samples,
            )?),
            TaskName::Gsm8k | TaskName::Gsm8kCot => leaves.push(gsm8k_leaf(
                &source, *task, run, &items, *format, &context, &samples,
            )?),
            TaskName::Humaneval => leaves.push(humaneval_leaf(
                &source, run, &items, *format, &context, &samples,
            )?),
        }
    }
    let results = results_json(&leaves, cell, &model_name, started, &formats);
    let path = samples
        .folder
        .join(format!("results_{}.json", samples.stamp));
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Written {
        results: path,
        samples: leaves.into_iter().map(|l| l.samples).collect(),
    })
}

/// Each task's run in its primary format (the cell's first format for it), the one with the
/// most items when there are several.
fn primary_runs(store: &Store, cell: &StoredCell) -> Result<Vec<(TaskName, Format, TaskRun)>> {
    let primary = |t: TaskName| -> Option<Format> {
        let f = cell.info.config.get("formats")?;
        let list = f.get(t.as_str()).unwrap_or(f);
        serde_json::from_value(list.get(0)?.clone()).ok()
    };
    let mut best: BTreeMap<TaskName, (Format, TaskRun)> = BTreeMap::new();
    for tr in store.task_runs(Some(cell.id))? {
        let Some(task) = TaskName::parse(&tr.task) else {
            continue;
        };
        let format: Format = tr
            .protocol
            .get("format")
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or(Format::Raw);
        if primary(task).is_some_and(|p| p != format) {
            continue;
        }
        // Several protocols (other settings): the one with the most items; on a tie the
        // later, as the report's tables choose.
        if best.get(&task).is_none_or(|(_, b)| tr.n_items >= b.n_items) {
            best.insert(task, (format, tr));
        }
    }
    Ok(best.into_iter().map(|(t, (f, r))| (t, f, r)).collect())
}

/// The prompt an item was asked (rebuilt from its protocol's plan, checked against its
/// hash), or a note saying it could not be rebuilt.
fn rebuilt_prompt(plan: Option<&crate::tasks::TaskPlan>, item: &ItemRow) -> String {
    match plan {
        Some(p) => crate::tasks::rebuild::verified_prompt(p, item)
            .unwrap_or_else(|e| format!("<prompt not rebuilt: {e}>")),
        None => "<prompt not rebuilt>".to_string(),
    }
}

/// Where a cell's samples files go: `<folder>/samples_<task>_<stamp>.jsonl`.
struct SampleFiles {
    folder: PathBuf,
    stamp: String,
}

impl SampleFiles {
    fn create(&self, task: &str) -> Result<SampleWriter> {
        let path = self
            .folder
            .join(format!("samples_{task}_{}.jsonl", self.stamp));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(SampleWriter {
            out: BufWriter::new(file),
            path,
            hashes: String::new(),
        })
    }
}

/// One leaf task's samples file, written a line at a time as the samples are made: a full
/// MMLU's samples are ~180 MB, which held together were most of the parent's memory.
struct SampleWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// Every line's doc, prompt and target hashes, in order: what the task hash hashes.
    hashes: String,
}

impl SampleWriter {
    fn push(&mut self, sample: Sample) -> Result<()> {
        self.hashes.push_str(&sample.hashes);
        writeln!(self.out, "{}", sample.line)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Flushes the file; returns its path and the task hash.
    fn finish(mut self) -> Result<(PathBuf, String)> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok((self.path, sha256_hex(self.hashes.as_bytes())))
    }
}

/// A sample as lm-eval logs it: its JSON line, and its doc, prompt and target hashes.
struct Sample {
    line: String,
    hashes: String,
}

/// sha256 of `json.dumps(doc, indent=2, ensure_ascii=False)`.
fn doc_hash(doc: &Value) -> String {
    sha256_hex(
        serde_json::to_string_pretty(doc)
            .unwrap_or_default()
            .as_bytes(),
    )
}

#[allow(clippy::too_many_arguments)]
fn sample_line(
    doc_id: usize,
    doc: Value,
    target: String,
    arguments: Vec<(String, Value)>,
    resps: Value,
    filtered: Value,
    filter: &str,
    metric: &str,
    value: f64,
) -> Sample {
    let prompt = arguments
        .first()
        .and_then(|(_, a)| a.get("arg_0"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // lm-eval's key order.
    let doc_hash = doc_hash(&doc);
    let prompt_hash = sha256_hex(prompt.as_bytes());
    let target_hash = sha256_hex(target.as_bytes());
    let hashes = format!("{doc_hash}{prompt_hash}{target_hash}");
    let pairs: Vec<(String, Value)> = vec![
        ("doc_id".into(), json!(doc_id)),
        ("doc".into(), doc),
        ("target".into(), json!(target)),
        (
            "arguments".into(),
            serde_json::to_value(Ordered(arguments)).expect("ordered"),
        ),
        ("resps".into(), resps),
        ("filtered_resps".into(), filtered),
        ("filter".into(), json!(filter)),
        ("metrics".into(), json!([metric])),
        ("doc_hash".into(), json!(doc_hash)),
        ("prompt_hash".into(), json!(prompt_hash)),
        ("target_hash".into(), json!(target_hash)),
        (metric.into(), json!(value)),
    ];
    Sample {
        line: serde_json::to_string(&Ordered(pairs)).expect("a sample line serializes"),
        hashes,
    }
}

fn index_of(item_id: &str) -> usize {
    item_id
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn metadata(version: f64, format: Format) -> Value {
    ordered(vec![
        ("version", json!(version)),
        ("frontier_format", json!(format.as_str())),
    ])
}

fn mmlu_leaves(
    source: &Source,
    run: &TaskRun,
    items: &[ItemRow],
    format: Format,
    context: &dyn Fn(&ItemRow) -> String,
    sample_files: &SampleFiles,
) -> Result<Vec<Leaf>> {
    let files = DatasetFiles::open("mmlu", source)?;
    let mut by_subject: BTreeMap<String, Vec<&ItemRow>> = BTreeMap::new();
    for item in items {
        let subject = item
            .group
            .clone()
            .unwrap_or_else(|| item.item_id.split('/').next().unwrap_or("").to_string());
        by_subject.entry(subject).or_default().push(item);
    }
    let mut leaves = Vec::new();
    for (subject, rows) in by_subject {
        let (questions, _) = mmlu::load(&files, &subject, mmlu::Split::Test)?;
        let name = format!("mmlu_{subject}");
        let mut acc = Vec::new();
        let mut samples = sample_files.create(&name)?;
        for item in rows {
            let i = index_of(&item.item_id);
            let Some(q) = questions.get(i) else { continue };
            let value = item.metrics.get("acc").copied().unwrap_or(0.0);
            acc.push(value);
            let ctx = context(item);
            let logprobs: Vec<f64> =
                serde_json::from_value(item.detail["logprobs"].clone()).unwrap_or_default();
            let greedy: Vec<bool> =
                serde_json::from_value(item.detail["greedy"].clone()).unwrap_or_default();
            let pairs: Vec<Value> = (0..4)
                .map(|k| {
                    json!([
                        py_float(logprobs.get(k).copied().unwrap_or(f64::NAN)),
                        if greedy.get(k).copied().unwrap_or(false) {
                            "True"
                        } else {
                            "False"
                        }
                    ])
                })
                .collect();
            let doc = ordered(vec![
                ("question", json!(q.question)),
                ("subject", json!(q.subject)),
                ("choices", json!(q.choices)),
                ("answer", json!(q.answer)),
            ]);
            let arguments = crate::tasks::mmlu::LETTERS
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    (
                        format!("gen_args_{k}"),
                        ordered(vec![
                            ("arg_0", json!(ctx)),
                            ("arg_1", json!(format!(" {l}"))),
                        ]),
                    )
                })
                .collect();
            samples.push(sample_line(
                i,
                doc,
                q.answer.to_string(),
                arguments,
                Value::Array(pairs.iter().map(|p| json!([p])).collect()),
                Value::Array(pairs),
                "none",
                "acc",
                value,
            ))?;
        }
        let (samples, task_hash) = samples.finish()?;
        let description = crate::tasks::mmlu::description(&subject);
        leaves.push(Leaf {
            config: ordered(vec![
                ("task", json!(name)),
                ("task_alias", json!(subject)),
                ("dataset_path", json!("cais/mmlu")),
                ("dataset_name", json!(subject)),
                ("test_split", json!("test")),
                ("fewshot_split", json!("dev")),
                ("doc_to_text", json!("{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:")),
                ("doc_to_target", json!("answer")),
                ("doc_to_choice", json!(["A", "B", "C", "D"])),
                ("description", json!(description)),
                ("target_delimiter", json!(" ")),
                ("fewshot_delimiter", json!("\n\n")),
                ("num_fewshot", json!(run.n_shot)),
                ("metric_list", json!([{"metric": "acc", "aggregation": "mean", "higher_is_better": true}])),
                ("output_type", json!("multiple_choice")),
                ("repeats", json!(1)),
                ("should_decontaminate", json!(false)),
                ("metadata", metadata(1.0, format)),
            ]),
            original: questions.len(),
            name,
            alias: subject,
            values: vec![("acc".into(), "none".into(), acc)],
            version: json!(1.0),
            n_shot: run.n_shot,
            higher_is_better: json!({"acc": true}),
            samples,
            task_hash,
        });
    }
    Ok(leaves)
}

fn gsm8k_leaf(
    source: &Source,
    task: TaskName,
    run: &TaskRun,
    items: &[ItemRow],
    format: Format,
    context: &dyn Fn(&ItemRow) -> String,
    sample_files: &SampleFiles,
) -> Result<Leaf> {
    let files = DatasetFiles::open("gsm8k", source)?;
    let (problems, _) = gsm8k::load(&files, "test")?;
    let stops: &[&str] = if task == TaskName::Gsm8kCot {
        &crate::tasks::gsm8k::COT_STOPS
    } else {
        &crate::tasks::gsm8k::STOPS
    };
    let gen_kwargs = json!({"until": stops, "do_sample": false, "temperature": 0.0});
    let name = task.as_str().to_string();
    let mut strict = Vec::new();
    let mut flexible = Vec::new();
    // lm-eval logs every strict-match sample, then every flexible-extract one: the first
    // filter's go to the file as they are made, the second's wait (a few KB an item).
    let mut samples = sample_files.create(&name)?;
    let mut flexible_lines = Vec::new();
    for item in items {
        let i = index_of(&item.item_id);
        let Some(p) = problems.get(i) else { continue };
        let doc = ordered(vec![
            ("question", json!(p.question)),
            ("answer", json!(p.answer)),
        ]);
        let arguments = vec![(
            "gen_args_0".to_string(),
            ordered(vec![
                ("arg_0", json!(context(item))),
                ("arg_1", gen_kwargs.clone()),
            ]),
        )];
        for (k, (filter, metric_key, extracted_key, values)) in [
            ("strict-match", "strict_match", "strict", &mut strict),
            (
                "flexible-extract",
                "flexible_extract",
                "flexible",
                &mut flexible,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let value = item.metrics.get(metric_key).copied().unwrap_or(0.0);
            values.push(value);
            let extracted = item.detail[extracted_key]
                .as_str()
                .unwrap_or("[invalid]")
                .to_string();
            let sample = sample_line(
                i,
                doc.clone(),
                p.answer.clone(),
                arguments.clone(),
                json!([[item.output]]),
                json!([extracted]),
                filter,
                "exact_match",
                value,
            );
            if k == 0 {
                samples.push(sample)?;
            } else {
                flexible_lines.push(sample);
            }
        }
    }
    for sample in flexible_lines {
        samples.push(sample)?;
    }
    let (samples, task_hash) = samples.finish()?;
    Ok(Leaf {
        config: ordered(vec![
            ("task", json!(name)),
            ("dataset_path", json!("openai/gsm8k")),
            ("dataset_name", json!("main")),
            ("training_split", json!("train")),
            ("test_split", json!("test")),
            ("fewshot_split", json!("train")),
            ("doc_to_text", json!("Question: {{question}}\nAnswer:")),
            ("doc_to_target", json!("{{answer}}")),
            ("target_delimiter", json!(" ")),
            ("fewshot_delimiter", json!("\n\n")),
            ("num_fewshot", json!(run.n_shot)),
            (
                "metric_list",
                json!([{"metric": "exact_match", "aggregation": "mean", "higher_is_better": true, "ignore_case": true, "ignore_punctuation": false, "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}]),
            ),
            ("output_type", json!("generate_until")),
            ("generation_kwargs", gen_kwargs),
            ("repeats", json!(1)),
            ("should_decontaminate", json!(false)),
            ("metadata", metadata(3.0, format)),
        ]),
        original: problems.len(),
        alias: name.clone(),
        name,
        values: vec![
            ("exact_match".into(), "strict-match".into(), strict),
            ("exact_match".into(), "flexible-extract".into(), flexible),
        ],
        version: json!(3.0),
        n_shot: run.n_shot,
        higher_is_better: json!({"exact_match": true}),
        samples,
        task_hash,
    })
}

fn humaneval_leaf(
    source: &Source,
    run: &TaskRun,
    items: &[ItemRow],
    format: Format,
    context: &dyn Fn(&ItemRow) -> String,
    sample_files: &SampleFiles,
) -> Result<Leaf> {
    let plus = TaskOptions::from_protocol(&run.protocol).is_some_and(|o| o.plus);
    let files = DatasetFiles::open("humaneval", source)?;
    let (tasks, _) = humaneval::load(&files, plus)?;
    let gen_kwargs = json!({"until": crate::tasks::humaneval::STOPS, "max_gen_toks": crate::tasks::humaneval::MAX_TOKENS, "do_sample": false});
    let mut pass = Vec::new();
    let mut samples = sample_files.create("humaneval")?;
    for item in items {
        let Some((i, t)) = tasks
            .iter()
            .enumerate()
            .find(|(_, t)| t.task_id == item.item_id)
        else {
            continue;
        };
        let value = item.metrics.get("pass@1").copied().unwrap_or(0.0);
        pass.push(value);
        let doc = ordered(vec![
            ("task_id", json!(t.task_id)),
            ("prompt", json!(t.prompt)),
            ("canonical_solution", json!(t.canonical_solution)),
            ("test", json!(t.test)),
            ("entry_point", json!(t.entry_point)),
        ]);
        // The program run: the prompt and the completion (raw), or the code taken from
        // the reply (chat and tuned formats).
        let program = item
            .extracted
            .clone()
            .unwrap_or_else(|| format!("{}{}", t.prompt, item.output));
        samples.push(sample_line(
            i,
            doc,
            format!("{}\ncheck({})", t.test, t.entry_point),
            vec![(
                "gen_args_0".to_string(),
                ordered(vec![
                    ("arg_0", json!(context(item))),
                    ("arg_1", gen_kwargs.clone()),
                ]),
            )],
            json!([[item.output]]),
            json!([[program]]),
            "create_test",
            "pass@1",
            value,
        ))?;
    }
    let (samples, task_hash) = samples.finish()?;
    Ok(Leaf {
        config: ordered(vec![
            ("task", json!("humaneval")),
            ("dataset_path", json!("openai/openai_humaneval")),
            ("test_split", json!("test")),
            ("doc_to_text", json!("{{prompt}}")),
            ("doc_to_target", json!("{{test}}\ncheck({{entry_point}})")),
            ("unsafe_code", json!(true)),
            ("target_delimiter", json!(" ")),
            ("fewshot_delimiter", json!("\n\n")),
            ("num_fewshot", json!(0)),
            (
                "metric_list",
                json!([{"metric": "pass_at_k", "aggregation": "mean", "higher_is_better": true, "k": [1]}]),
            ),
            ("output_type", json!("generate_until")),
            ("generation_kwargs", gen_kwargs),
            ("repeats", json!(1)),
            (
                "filter_list",
                json!([{"name": "create_test", "filter": [{"function": "custom"}]}]),
            ),
            ("should_decontaminate", json!(false)),
            ("metadata", metadata(1.0, format)),
        ]),
        original: tasks.len(),
        name: "humaneval".into(),
        alias: "humaneval".into(),
        values: vec![("pass@1".into(), "create_test".into(), pass)],
        version: json!(1.0),
        n_shot: 0,
        higher_is_better: json!({"pass_at_k": true, "pass@1": true}),
        samples,
        task_hash,
    })
}

/// MMLU's groups (the four categories and `mmlu`), weighted by size, with lm-eval's pooled
/// stderr, over the subjects present.
fn mmlu_groups(leaves: &[Leaf]) -> Vec<(String, String, Vec<String>, Value)> {
    let subjects: Vec<&Leaf> = leaves
        .iter()
        .filter(|l| l.name.starts_with("mmlu_"))
        .collect();
    if subjects.is_empty() {
        return Vec::new();
    }
    let aggregate = |members: &[&Leaf]| -> (f64, Value, usize) {
        let n: usize = members.iter().map(|l| l.sample_len()).sum();
        let value = members
            .iter()
            .map(|l| mean(&l.values[0].2) * l.sample_len() as f64)
            .sum::<f64>()
            / n.max(1) as f64;
        let k = members.len();
        let mut pooled = 0.0;
        for l in members {
            let ni = l.sample_len() as f64;
            match mean_stderr(&l.values[0].2).as_f64() {
                Some(se) => pooled += (ni - 1.0) * ni * se * se,
                None => return (value, json!("N/A"), n),
            }
        }
        let se = if n > k {
            (pooled / (n - k) as f64 / n as f64).sqrt()
        } else {
            0.0
        };
        (value, json!(se), n)
    };
    let entry = |name: &str, alias: &str, members: &[&Leaf]| -> Value {
        let (value, se, n) = aggregate(members);
        ordered(vec![
            ("alias", json!(alias)),
            ("name", json!(name)),
            ("sample_len", json!(n)),
            ("acc,none", json!(value)),
            ("acc_stderr,none", se),
            ("sample_count", json!({"acc,none": n})),
        ])
    };
    let mut groups = Vec::new();
    let mut categories = Vec::new();
    for (category, alias) in [
        ("stem", "stem"),
        ("other", "other"),
        ("social_sciences", "social sciences"),
        ("humanities", "humanities"),
    ] {
        let members: Vec<&Leaf> = subjects
            .iter()
            .copied()
            .filter(|l| crate::tasks::mmlu::category(&l.alias) == Some(category))
            .collect();
        if members.is_empty() {
            continue;
        }
        let name = format!("mmlu_{category}");
        groups.push((
            name.clone(),
            alias.to_string(),
            members.iter().map(|l| l.name.clone()).collect(),
            entry(&name, alias, &members),
        ));
        categories.push(name);
    }
    groups.push((
        "mmlu".into(),
        "mmlu".into(),
        categories,
        entry("mmlu", "mmlu", &subjects),
    ));
    groups
}

fn results_json(
    leaves: &[Leaf],
    cell: &StoredCell,
    model_name: &str,
    started: std::time::SystemTime,
    formats: &BTreeMap<String, String>,
) -> Value {
    let groups = mmlu_groups(leaves);
    let mut results: Vec<(String, Value)> =
        leaves.iter().map(|l| (l.name.clone(), l.entry())).collect();
    results.extend(groups.iter().map(|(n, _, _, e)| (n.clone(), e.clone())));
    let group_entries: Vec<(String, Value)> = groups
        .iter()
        .map(|(n, _, _, e)| (n.clone(), e.clone()))
        .collect();
    let subtasks: Vec<(String, Value)> = groups
        .iter()
        .rev()
        .map(|(n, _, members, _)| (n.clone(), json!(members)))
        .collect();
    let mut configs: Vec<(String, Value)> = leaves
        .iter()
        .map(|l| (l.name.clone(), l.config.clone()))
        .collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut versions: Vec<(String, Value)> = leaves
        .iter()
        .map(|l| (l.name.clone(), l.version.clone()))
        .collect();
    versions.extend(groups.iter().map(|(n, _, _, _)| (n.clone(), json!("2"))));
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    let mut n_shot: Vec<(String, Value)> = leaves
        .iter()
        .map(|l| (l.name.clone(), json!(l.n_shot)))
        .collect();
    let mut higher: Vec<(String, Value)> = leaves
        .iter()
        .map(|l| (l.name.clone(), l.higher_is_better.clone()))
        .collect();
    for (name, _, _, _) in groups.iter().filter(|(n, _, _, _)| n != "mmlu") {
        let shots = leaves
            .iter()
            .find(|l| l.name.starts_with("mmlu_"))
            .map_or(0, |l| l.n_shot);
        n_shot.push((name.clone(), json!(shots)));
        higher.push((name.clone(), json!({"acc": true})));
    }
    n_shot.sort_by(|a, b| a.0.cmp(&b.0));
    higher.sort_by(|a, b| a.0.cmp(&b.0));
    let n_samples: Vec<(String, Value)> = leaves
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                json!({"original": l.original, "effective": l.sample_len()}),
            )
        })
        .collect();
    let task_hashes: Vec<(String, Value)> = leaves
        .iter()
        .map(|l| (l.name.clone(), json!(l.task_hash)))
        .collect();
    let obj = |pairs: Vec<(String, Value)>| serde_json::to_value(Ordered(pairs)).expect("ordered");
    let start = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let elapsed = std::time::SystemTime::now()
        .duration_since(started)
        .unwrap_or_default()
        .as_secs_f64();
    let mut top = vec![("results", obj(results))];
    if !group_entries.is_empty() {
        top.push(("groups", obj(group_entries)));
        top.push(("group_subtasks", obj(subtasks)));
    }
    top.extend([
        ("configs", obj(configs)),
        ("versions", obj(versions)),
        ("n-shot", obj(n_shot)),
        ("higher_is_better", obj(higher)),
        ("n-samples", obj(n_samples)),
        (
            "config",
            ordered(vec![
                ("model", json!("frontier")),
                ("model_args", json!({ "model": cell.info.model_path })),
                ("model_num_parameters", json!(cell.info.n_params)),
                ("model_dtype", json!(cell.info.quant)),
                ("model_sha", json!(cell.info.model_sha256)),
                ("batch_size", json!(cell.info.config.get("parallel"))),
                ("device", json!("cpu")),
                ("limit", Value::Null),
                ("bootstrap_iters", json!(0)),
                ("gen_kwargs", json!({})),
                ("random_seed", json!(0)),
                ("numpy_seed", json!(1234)),
                ("fewshot_seed", json!(1234)),
            ]),
        ),
        ("git_hash", Value::Null),
        ("date", json!(start)),
        (
            "lm_eval_version",
            json!("0.4.13 (layout; written by frontier)"),
        ),
        ("task_hashes", obj(task_hashes)),
        ("model_source", json!("frontier")),
        ("model_name", json!(model_name)),
        ("model_name_sanitized", json!(sanitize(model_name))),
        ("total_evaluation_time_seconds", json!(elapsed.to_string())),
        (
            "frontier",
            ordered(vec![
                ("version", json!(env!("CARGO_PKG_VERSION"))),
                ("llama_cpp", json!(frontier_llama::version())),
                ("formats", json!(formats)),
                ("model", json!(cell.info.model)),
                ("quant", json!(cell.info.quant)),
                ("derived_from", json!(cell.info.derived_from)),
            ]),
        ),
    ]);
    ordered(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        assert_eq!(py_float(-4.237667072472735), "-4.237667072472735");
        assert_eq!(py_float(-4.0), "-4.0");
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(-2.5e-7), "-2.5e-07");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(0.0001), "0.0001");
    }

    #[test]
    fn names_and_stamps_as_lm_eval_makes_them() {
        assert_eq!(sanitize("org/model:v1"), "org__model__v1");
        assert_eq!(sanitize("a.gguf"), "a.gguf");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_764_604_240_273_016);
        assert_eq!(stamp(t), "2025-12-01T15-50-40.273016");
        assert!(!stamp(std::time::SystemTime::now()).contains('_'));
    }

    #[test]
    fn stderr_is_lm_evals() {
        // 31 of 100 right: sqrt(p(1-p)/(n-1)) = 0.046482...
        let v: Vec<f64> = (0..100).map(|i| if i < 31 { 1.0 } else { 0.0 }).collect();
        assert!((mean_stderr(&v).as_f64().unwrap() - 0.04648231987117317).abs() < 1e-12);
        assert_eq!(mean_stderr(&[1.0]), json!("N/A"));
    }
}
