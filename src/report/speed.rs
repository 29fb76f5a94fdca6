//! Speed results as rows (one per model × parameter set × test), and their CSV, JSON, JSON
//! lines, SQL, markdown and terminal renderings. The fields are llama-bench's, by its names
//! and in its order, where the meaning is the same (so a tool that reads llama-bench's CSV
//! reads ours); frontier's own follow them: memory, load time, time to first token.

use anyhow::Result;
use serde::Serialize;

use crate::output::table::{markdown, Align};
use frontier_core::units;

/// One model × parameter set × test, or a failed one (`avg_ts` 0, `error` set).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpeedRow {
    // llama-bench's fields, in its order.
    pub build_commit: String,
    pub build_number: u32,
    pub cpu_info: String,
    pub gpu_info: String,
    pub backends: String,
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub n_threads: u32,
    pub cpu_mask: String,
    pub cpu_strict: bool,
    pub poll: u32,
    pub type_k: String,
    pub type_v: String,
    /// llama.cpp's default (-1 in llama-bench's terms: as many as fit) when not given.
    pub n_gpu_layers: i64,
    pub n_cpu_moe: u32,
    pub split_mode: String,
    pub main_gpu: u32,
    pub no_kv_offload: bool,
    /// 1 on, 0 off, -1 auto (llama.cpp's choice), as llama-bench writes it.
    pub flash_attn: i32,
    pub devices: String,
    pub tensor_split: String,
    pub tensor_buft_overrides: String,
    /// `mmap`, `none` (read into memory), `mlock`, `mmap+mlock`.
    pub load_mode: String,
    pub lazy_mode: String,
    pub embeddings: bool,
    pub no_op_offload: u32,
    pub no_host: bool,
    /// Weights in the CPU's repacked layouts where it has them (llama.cpp's default).
    pub repack: bool,
    pub fit_target: u64,
    pub fit_min_ctx: u32,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
    /// When the test ran (UTC, ISO 8601).
    pub test_time: String,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    // frontier's.
    /// `pp512`, `tg128`, `pp512 @ d1024`.
    pub test: String,
    pub n_ctx: u32,
    pub use_mmap: bool,
    pub use_mlock: bool,
    pub reps: usize,
    pub warmup: u32,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
    pub peak_rss_bytes: u64,
    pub load_ms: f64,
    /// Time to first token: prompt tests only.
    pub ttft_ms: Option<f64>,
    pub kv_cache_bytes: Option<u64>,
    /// Expected peak from the GGUF header (`frontier plan`'s arithmetic).
    pub est_peak_bytes: Option<u64>,
    /// Peak `RssAnon` / `RssFile` of the worker, sampled every 20 ms.
    pub peak_anon_bytes: Option<u64>,
    pub peak_file_bytes: Option<u64>,
    /// `--mem-limit`, the mechanism that held it, and what happened under it.
    pub mem_limit_bytes: Option<u64>,
    pub mem_mechanism: Option<String>,
    pub mem_verdict: Option<String>,
    /// Generation tokens/s of the same test without the cap (measured just before).
    pub uncapped_tg_ts: Option<f64>,
    /// llama-cpp-sys-2, the llama-cpp-rs commit and ggml's version.
    pub llama_cpp: String,
    pub error: Option<String>,
}

/// The fields in the order the struct declares them (serde_json's maps sort their keys).
const FIELDS: [&str; 63] = [
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_cpu_moe",
    "split_mode",
    "main_gpu",
    "no_kv_offload",
    "flash_attn",
    "devices",
    "tensor_split",
    "tensor_buft_overrides",
    "load_mode",
    "lazy_mode",
    "embeddings",
    "no_op_offload",
    "no_host",
    "repack",
    "fit_target",
    "fit_min_ctx",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "test",
    "n_ctx",
    "use_mmap",
    "use_mlock",
    "reps",
    "warmup",
    "samples_ns",
    "samples_ts",
    "peak_rss_bytes",
    "load_ms",
    "ttft_ms",
    "kv_cache_bytes",
    "est_peak_bytes",
    "peak_anon_bytes",
    "peak_file_bytes",
    "mem_limit_bytes",
    "mem_mechanism",
    "mem_verdict",
    "uncapped_tg_ts",
    "llama_cpp",
    "error",
];

/// The CSV columns: every field, the sample lists as space-separated numbers.
pub fn to_csv(rows: &[SpeedRow]) -> Result<Vec<u8>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(FIELDS)?;
    for r in rows {
        let v = serde_json::to_value(r)?;
        w.write_record(FIELDS.iter().map(|f| csv_value(&v[*f])))?;
    }
    Ok(w.into_inner()?)
}

/// A field in CSV: numbers and strings as they are, booleans as llama-bench writes them
/// (`1`/`0`), lists space-separated, nothing empty.
fn csv_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Bool(b) => u8::from(*b).to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(csv_value).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

pub fn to_json(rows: &[SpeedRow]) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(rows)?;
    v.push(b'\n');
    Ok(v)
}

/// One JSON object per line (llama-bench's `-o jsonl`).
pub fn to_jsonl(rows: &[SpeedRow]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// SQL as llama-bench writes it: `CREATE TABLE IF NOT EXISTS test (...)` with a column per
/// field, then one `INSERT` per row.
pub fn to_sql(rows: &[SpeedRow]) -> Result<Vec<u8>> {
    let mut out = String::new();
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let first = serde_json::to_value(first)?;
    let fields = FIELDS;
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) if n.is_f64() => "REAL",
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => "INTEGER",
        _ => "TEXT",
    };
    out.push_str("CREATE TABLE IF NOT EXISTS test (\n");
    let columns: Vec<String> = fields
        .iter()
        .map(|f| format!("  {f} {}", kind(&first[*f])))
        .collect();
    out.push_str(&columns.join(",\n"));
    out.push_str("\n);\n\n");
    for r in rows {
        let v = serde_json::to_value(r)?;
        let values: Vec<String> = fields
            .iter()
            .map(|f| match &v[*f] {
                serde_json::Value::Null => "NULL".to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => u8::from(*b).to_string(),
                other => format!("'{}'", csv_value(other).replace('\'', "''")),
            })
            .collect();
        out.push_str(&format!(
            "INSERT INTO test ({}) VALUES ({});\n",
            fields.join(", "),
            values.join(", ")
        ));
    }
    Ok(out.into_bytes())
}

/// Markdown: the columns a reader compares, like llama-bench's table plus memory; the
/// parameters that vary across rows get a column each.
pub fn to_markdown(rows: &[SpeedRow]) -> Vec<u8> {
    let capped = rows.iter().any(|r| r.mem_limit_bytes.is_some());
    let varies = |f: fn(&SpeedRow) -> String| {
        rows.iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1
    };
    type Column = (&'static str, fn(&SpeedRow) -> String);
    let optional: [Column; 7] = [
        ("ngl", |r| r.n_gpu_layers.to_string()),
        ("n_batch", |r| r.n_batch.to_string()),
        ("n_ubatch", |r| r.n_ubatch.to_string()),
        ("type_k", |r| r.type_k.clone()),
        ("type_v", |r| r.type_v.clone()),
        ("fa", |r| r.flash_attn.to_string()),
        ("load", |r| r.load_mode.clone()),
    ];
    let shown: Vec<&Column> = optional.iter().filter(|(_, f)| varies(*f)).collect();
    use Align::{Left as L, Right as R};
    let mut headers = vec!["model", "size", "params", "backend", "threads"];
    let mut align = vec![L, R, R, L, R];
    for (name, _) in &shown {
        headers.push(name);
        align.push(R);
    }
    headers.extend(["test", "t/s", "peak RSS", "est. peak", "load ms", "ttft ms"]);
    align.extend([L, R, R, R, R, R]);
    if capped {
        headers.extend(["cap", "verdict"]);
        align.extend([R, L]);
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let ts = match &r.error {
                Some(e) => format!("failed: {e}"),
                None => format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
            };
            let mut row = vec![
                format!("{} ({})", r.model_filename, r.model_type),
                units::bytes(r.model_size),
                units::params_short(r.model_n_params),
                r.backends.clone(),
                r.n_threads.to_string(),
            ];
            row.extend(shown.iter().map(|(_, f)| f(r)));
            row.extend([
                r.test.clone(),
                ts,
                if r.peak_rss_bytes > 0 {
                    units::bytes(r.peak_rss_bytes)
                } else {
                    "-".into()
                },
                r.est_peak_bytes.map_or("-".into(), units::bytes),
                format!("{:.0}", r.load_ms),
                r.ttft_ms.map_or("-".into(), |t| format!("{t:.1}")),
            ]);
            if capped {
                row.push(r.mem_limit_bytes.map_or("-".into(), units::bytes));
                row.push(r.mem_verdict.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    markdown(&headers, &align, &body).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(test: &str, ts: f64) -> SpeedRow {
        SpeedRow {
            build_commit: "e7af607".into(),
            build_number: 0,
            cpu_info: "cpu".into(),
            gpu_info: String::new(),
            backends: "CPU".into(),
            model_filename: "m.gguf".into(),
            model_type: "llama Q4_K_M".into(),
            model_size: 100 << 20,
            model_n_params: 134_515_008,
            n_batch: 2048,
            n_ubatch: 512,
            n_threads: 2,
            cpu_mask: "0x0".into(),
            cpu_strict: false,
            poll: 50,
            type_k: "f16".into(),
            type_v: "f16".into(),
            n_gpu_layers: 99,
            n_cpu_moe: 0,
            split_mode: "layer".into(),
            main_gpu: 0,
            no_kv_offload: false,
            flash_attn: -1,
            devices: "auto".into(),
            tensor_split: "0.00".into(),
            tensor_buft_overrides: "none".into(),
            load_mode: "mmap".into(),
            lazy_mode: "auto".into(),
            embeddings: false,
            no_op_offload: 0,
            no_host: false,
            repack: true,
            fit_target: 0,
            fit_min_ctx: 0,
            n_prompt: 512,
            n_gen: 0,
            n_depth: 0,
            test_time: "2026-12-01T00:00:00Z".into(),
            avg_ns: 522_000_000,
            stddev_ns: 1_000_000,
            avg_ts: ts,
            stddev_ts: 1.25,
            test: test.into(),
            n_ctx: 640,
            use_mmap: true,
            use_mlock: false,
            reps: 2,
            warmup: 1,
            samples_ns: vec![521_000_000, 523_000_000],
            samples_ts: vec![ts - 1.0, ts + 1.0],
            peak_rss_bytes: 150 << 20,
            load_ms: 40.0,
            ttft_ms: Some(520.5),
            kv_cache_bytes: Some(7 << 20),
            est_peak_bytes: Some(152 << 20),
            peak_anon_bytes: Some(50 << 20),
            peak_file_bytes: Some(100 << 20),
            mem_limit_bytes: None,
            mem_mechanism: None,
            mem_verdict: None,
            uncapped_tg_ts: None,
            llama_cpp: "x".into(),
            error: None,
        }
    }

    #[test]
    fn markdown_snapshot() {
        let md = String::from_utf8(to_markdown(&[row("pp512", 980.123)])).unwrap();
        let expected = [
            "| model                 |    size | params | backend | threads | test  |           t/s | peak RSS | est. peak | load ms | ttft ms |",
            "| --------------------- | ------: | -----: | ------- | ------: | ----- | ------------: | -------: | --------: | ------: | ------: |",
            "| m.gguf (llama Q4_K_M) | 100 MiB | 134.5M | CPU     |       2 | pp512 | 980.12 ± 1.25 |  150 MiB |   152 MiB |      40 |   520.5 |",
        ];
        assert_eq!(md, expected.join("\n") + "\n");
    }

    #[test]
    fn a_varying_parameter_gets_a_column() {
        let mut b = row("pp512", 900.0);
        b.type_k = "q8_0".into();
        let md = String::from_utf8(to_markdown(&[row("pp512", 980.0), b])).unwrap();
        assert!(md.lines().next().unwrap().contains("type_k"), "{md}");
        assert!(!md.lines().next().unwrap().contains("n_batch"), "{md}");
    }

    /// llama-bench's CSV header (this version's `get_fields()` with `test_time` and the
    /// timings), which ours starts with wherever llama-bench has a field.
    const LLAMA_BENCH_HEADER: &str = "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,cpu_mask,cpu_strict,poll,type_k,type_v,n_gpu_layers,n_cpu_moe,split_mode,main_gpu,no_kv_offload,flash_attn,devices,tensor_split,tensor_buft_overrides,load_mode,lazy_mode,embeddings,no_op_offload,no_host,repack,fit_target,fit_min_ctx,n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts";

    #[test]
    fn csv_follows_llama_bench_field_names_and_order() {
        let csv = String::from_utf8(to_csv(&[row("tg128", 200.0)]).unwrap()).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let llama_bench: Vec<&str> = LLAMA_BENCH_HEADER.split(',').collect();
        assert_eq!(&header[..llama_bench.len()], &llama_bench[..]);
        for ours in [
            "peak_rss_bytes",
            "load_ms",
            "ttft_ms",
            "samples_ns",
            "samples_ts",
        ] {
            assert!(header.contains(&ours), "{ours}");
        }
        let values: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = |name: &str| values[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(at("cpu_strict"), "0");
        assert_eq!(at("use_mmap"), "1");
        assert_eq!(at("samples_ns"), "521000000 523000000");
        assert_eq!(at("mem_verdict"), "");
    }

    #[test]
    fn the_field_list_is_every_field_in_order() {
        let v = serde_json::to_value(row("pp512", 1.0)).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = FIELDS.to_vec();
        keys.sort_unstable();
        listed.sort_unstable();
        assert_eq!(keys, listed);
    }

    #[test]
    fn sql_creates_the_table_and_inserts_each_row() {
        let sql =
            String::from_utf8(to_sql(&[row("pp512", 980.0), row("tg128", 90.0)]).unwrap()).unwrap();
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS test (\n  build_commit TEXT,"));
        assert!(sql.contains("  avg_ts REAL,"), "{sql}");
        assert_eq!(sql.matches("INSERT INTO test (").count(), 2);
        assert!(sql.contains("'tg128'"));
        let jsonl = String::from_utf8(to_jsonl(&[row("pp512", 980.0)]).unwrap()).unwrap();
        assert_eq!(jsonl.lines().count(), 1);
    }
}
