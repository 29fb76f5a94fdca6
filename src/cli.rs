//! Command-line definitions (clap): what the user typed, before validation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use frontier_core::units::ByteSize;
use frontier_engine::FlashAttn;

#[derive(Debug, Parser)]
#[command(
    name = "frontier",
    version,
    about = "Find the efficient frontier of small language models on your own hardware",
    long_about = "Measures quality (MMLU, GSM8K, HumanEval), speed (prompt and generation tokens/s) \
                  and memory (peak RSS) of GGUF models through llama.cpp."
)]
pub struct Cli {
    /// More output on stderr: -v shows llama.cpp's log, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// No progress bars or informational messages.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// llama.cpp's multi-letter short flags, which clap cannot spell, and the long flags they
/// mean here.
const LLAMA_SPELLINGS: [(&str, &str); 6] = [
    ("-ngl", "--gpu-layers"),
    ("-ub", "--ubatch"),
    ("-fa", "--flash-attn"),
    ("-ctk", "--cache-type-k"),
    ("-ctv", "--cache-type-v"),
    ("-mmp", "--mmap"),
];

/// The command line with llama.cpp's spellings (`-ngl 99`, `-ctk q8_0`, `-fa=1`) rewritten
/// as the long flags clap parses.
pub fn with_llama_spellings(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|a| {
            let Some(text) = a.to_str() else { return a };
            let (flag, value) = match text.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (text, None),
            };
            match LLAMA_SPELLINGS.iter().find(|(short, _)| *short == flag) {
                Some((_, long)) => match value {
                    Some(v) => format!("{long}={v}").into(),
                    None => (*long).into(),
                },
                None => a,
            }
        })
        .collect()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a GGUF file's header (without llama.cpp) and describe the model.
    Inspect(InspectArgs),
    /// Measure prompt and generation speed, time to first token and peak memory (like llama-bench).
    Speed(SpeedArgs),
    /// Convert a GGUF model to another quantization with llama.cpp.
    Quantize(QuantizeArgs),
    /// Score a model on MMLU, GSM8K and HumanEval; every item is stored and resumable.
    Eval(EvalArgs),
    /// Print stored items: prompt, raw output, extracted answer, verdict.
    Show(ShowArgs),
    /// Write results.csv, comparison.csv/.md and frontier.svg from a results folder.
    Report(ReportArgs),
    /// Run models × quants × tasks (and speed), resumably, and write the comparison tables.
    Sweep(SweepArgs),
    /// Download models (MODEL[:QUANT,...]) from the Hugging Face Hub into the HF cache.
    Fetch(FetchArgs),
    /// Show the model catalog and what is cached.
    List(ListArgs),
    /// Which catalog models × quants × contexts fit in a given amount of RAM (estimated
    /// from GGUF headers read by HTTP range requests, without downloading the weights).
    Plan(PlanArgs),
    /// Report which protections the code sandbox has on this machine.
    SandboxCheck(SandboxCheckArgs),
    /// Chat with a model in the terminal (streaming; /reset, /system, /stats; EOF exits).
    Chat(ChatArgs),
    /// Run canned prompts (reasoning, code, chat) on several models to compare by eye.
    Demo(DemoArgs),
    /// Benchmark evaluation throughput: the batched, prefix-sharing path against the
    /// one-prompt-at-a-time path on the same items, with their agreement.
    Throughput(ThroughputArgs),
    /// How far each quant's next-token distributions move from the base file's on a text:
    /// KL divergence, top-token agreement and perplexity ratio (llama-perplexity's
    /// --kl-divergence), stored and resumable.
    Fidelity(FidelityCmdArgs),
    /// Describe this build of frontier and llama.cpp, and the machine.
    Version(VersionArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(CompletionsArgs),
    /// What a server (llama-server, vLLM) can do for --backend openai:URL: tokenizer,
    /// log-probabilities, context, slots, model and build.
    Probe(ProbeArgs),
    /// Write man pages (frontier.1 and one per command) to a folder, or frontier.1 to stdout.
    Man(ManArgs),
    /// Internal: run one job from stdin in a child process.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The server: http://HOST:PORT (or openai:http://HOST:PORT).
    pub url: String,
    /// The environment variable holding the server's API key.
    #[arg(long = "api-key-env", value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// Print the capabilities as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write frontier.1 and frontier-COMMAND.1 here (e.g. /usr/local/share/man/man1).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `frontier worker JOB`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The job: eval, speed or projection.
    pub job: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Models: GGUF files, catalog ids[:QUANT] or OWNER/REPO[:QUANT].
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Skip the sha256 of the file.
    #[arg(long)]
    pub no_hash: bool,
    /// Also estimate peak memory at these context sizes (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub ctx: Vec<u64>,
    #[command(flatten)]
    pub estimate: EstimateArgs,
    /// Print the estimate's arithmetic.
    #[arg(long)]
    pub explain: bool,
    /// Also show llama.cpp's own projection (it reads the model without allocating).
    #[arg(long = "llama-projection")]
    pub llama_projection: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Csv,
    Json,
    /// One JSON object per line.
    Jsonl,
    Md,
    /// SQL `CREATE TABLE` and `INSERT` statements, as llama-bench writes them.
    Sql,
}

/// A memory cap on every worker.
#[derive(Debug, Clone, Args)]
pub struct MemArgs {
    /// Run each model under this memory cap, e.g. 4GiB (the worker is OOM-killed, or its
    /// allocations fail, above it; the result says which and how).
    #[arg(long = "mem-limit", value_name = "SIZE")]
    pub mem_limit: Option<ByteSize>,
    /// How the cap is enforced.
    #[arg(long = "mem-cap", value_enum, default_value_t = frontier_process::cap::CapMethod::Auto)]
    pub mem_cap: frontier_process::cap::CapMethod,
    /// Run even when the cap is below the model's weights (normally refused up front).
    #[arg(long)]
    pub force: bool,
}

impl MemArgs {
    /// The cap, with the mechanism this machine will use for it.
    pub fn cap(&self) -> anyhow::Result<Option<frontier_process::cap::MemCap>> {
        self.mem_limit
            .map(|l| frontier_process::cap::MemCap::resolve(l.0, self.mem_cap, self.force))
            .transpose()
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "llama-bench's spellings work too: -m, -ngl, -ub, -fa, -ctk, -ctv, -mmp, -o; \
every test parameter takes a comma list and the grid is run as llama-bench runs it."
)]
pub struct SpeedArgs {
    /// GGUF models (files, catalog ids[:QUANT], owner/repo[:QUANT]); each test runs in its
    /// own process.
    pub models: Vec<String>,
    /// Models, as llama-bench takes them (repeatable, comma-separated).
    #[arg(
        short = 'm',
        long = "model",
        value_delimiter = ',',
        help_heading = "Tests"
    )]
    pub model: Vec<String>,
    /// Prompt tokens of each prompt-processing test (0 skips them).
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "512",
        help_heading = "Tests"
    )]
    pub n_prompt: Vec<u32>,
    /// Tokens of each generation test (0 skips them).
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128",
        help_heading = "Tests"
    )]
    pub n_gen: Vec<u32>,
    /// Tokens already in the context before each test, decoded untimed (llama-bench's -d).
    #[arg(
        short = 'd',
        long = "n-depth",
        value_delimiter = ',',
        default_value = "0",
        help_heading = "Tests"
    )]
    pub n_depth: Vec<u32>,
    /// Timed repetitions of each test.
    #[arg(
        short = 'r',
        long = "repetitions",
        default_value_t = 5,
        help_heading = "Tests"
    )]
    pub reps: u32,
    /// Untimed runs before each test's repetitions.
    #[arg(long, default_value_t = 1, help_heading = "Tests")]
    pub warmup: u32,
    /// No warm-up run (`--warmup 0`).
    #[arg(long = "no-warmup", help_heading = "Tests")]
    pub no_warmup: bool,
    /// CPU threads [default: physical cores].
    #[arg(
        short = 't',
        long = "threads",
        value_delimiter = ',',
        help_heading = "Model and context"
    )]
    pub threads: Vec<u32>,
    /// Layers offloaded to the GPU [default: llama.cpp's].
    #[arg(
        long = "gpu-layers",
        visible_alias = "n-gpu-layers",
        value_delimiter = ',',
        help_heading = "Model and context"
    )]
    pub gpu_layers: Vec<u32>,
    /// Logical batch size.
    #[arg(
        short = 'b',
        long = "batch",
        value_delimiter = ',',
        default_value = "2048",
        help_heading = "Model and context"
    )]
    pub batch: Vec<u32>,
    /// Physical batch size.
    #[arg(
        long = "ubatch",
        value_delimiter = ',',
        default_value = "512",
        help_heading = "Model and context"
    )]
    pub ubatch: Vec<u32>,
    /// Flash attention: auto, on (1), off (0).
    #[arg(
        long = "flash-attn",
        value_enum,
        value_delimiter = ',',
        default_value = "auto",
        help_heading = "Model and context"
    )]
    pub flash_attn: Vec<FlashAttn>,
    /// K cache type (f16, bf16, f32, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1).
    #[arg(
        long = "cache-type-k",
        value_delimiter = ',',
        default_value = "f16",
        help_heading = "Model and context"
    )]
    pub cache_type_k: Vec<frontier_engine::CacheType>,
    /// V cache type.
    #[arg(
        long = "cache-type-v",
        value_delimiter = ',',
        default_value = "f16",
        help_heading = "Model and context"
    )]
    pub cache_type_v: Vec<frontier_engine::CacheType>,
    /// Memory-map the model: 1 or 0 (llama-bench's -mmp).
    #[arg(long = "mmap", value_delimiter = ',', default_value = "1", value_parser = parse_flag, help_heading = "Model and context")]
    pub mmap: Vec<bool>,
    /// Read the model into memory instead of mapping it (the same as --mmap 0).
    #[arg(
        long = "no-mmap",
        conflicts_with = "mmap",
        help_heading = "Model and context"
    )]
    pub no_mmap: bool,
    /// Lock the model in RAM.
    #[arg(long, help_heading = "Model and context")]
    pub mlock: bool,
    /// Context size [default: depth + prompt + generated tokens, as llama-bench].
    #[arg(long, help_heading = "Model and context")]
    pub ctx: Option<u32>,
    /// The engine: `llama`, or `openai:URL` to measure a server from outside (time to first
    /// token and generated tokens/s at each --concurrency; no models needed).
    #[arg(long, default_value = "llama")]
    pub backend: crate::backend::Backend,
    /// With --backend openai:URL: requests sent at once (comma list).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub concurrency: Vec<u32>,
    /// With --backend openai:URL: the environment variable holding the server's API key.
    #[arg(long = "api-key-env", value_name = "NAME")]
    pub api_key_env: Option<String>,
    #[command(flatten, next_help_heading = "Memory cap")]
    pub mem: MemArgs,
    /// Write results in this format (to stdout, or to --out).
    #[arg(short = 'o', long, value_enum, help_heading = "Output")]
    pub output: Option<OutputFormat>,
    /// Write the results to this file (format from --output, else from the extension).
    #[arg(long, help_heading = "Output")]
    pub out: Option<PathBuf>,
}

/// `1`/`0` (llama-bench), or true/false.
fn parse_flag(s: &str) -> Result<bool, String> {
    match s {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(format!("{s}: 1 or 0")),
    }
}

/// How to run a model: threads, offload, batching, memory mapping.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// CPU threads (default: physical cores).
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// Layers to offload to the GPU (default: llama.cpp's, i.e. all when a GPU exists).
    #[arg(long = "gpu-layers", visible_alias = "ngl")]
    pub gpu_layers: Option<u32>,
    /// Logical batch size (tokens per llama_decode).
    #[arg(short = 'b', long = "batch", default_value_t = 2048)]
    pub batch: u32,
    /// Physical batch size.
    #[arg(long = "ubatch", default_value_t = 512)]
    pub ubatch: u32,
    /// Memory-map the model file (default).
    #[arg(long, overrides_with = "no_mmap")]
    pub mmap: bool,
    /// Read the model into anonymous memory instead of mapping it.
    #[arg(long = "no-mmap")]
    pub no_mmap: bool,
    /// Lock the model in RAM.
    #[arg(long)]
    pub mlock: bool,
    /// Flash attention.
    #[arg(long = "flash-attn", value_enum, default_value_t = FlashAttn::Auto)]
    pub flash_attn: FlashAttn,
    /// K cache type (f16, bf16, f32, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1).
    #[arg(long = "cache-type-k", default_value = "f16")]
    pub cache_type_k: frontier_engine::CacheType,
    /// V cache type.
    #[arg(long = "cache-type-v", default_value = "f16")]
    pub cache_type_v: frontier_engine::CacheType,
    /// The engine: `llama` (llama.cpp in this process's workers), or `openai:URL`, a
    /// llama-server or vLLM serving the same GGUF (MODEL then names the file it serves: its
    /// identity and templates).
    #[arg(long, default_value = "llama")]
    pub backend: crate::backend::Backend,
    /// With `--backend openai:URL`: the environment variable holding the server's API key
    /// (read when connecting; never stored or logged).
    #[arg(long = "api-key-env", value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// With `--backend openai:URL`: seconds one request may take before it is retried.
    #[arg(long = "request-timeout", value_name = "SECS", default_value_t = frontier_remote::spec::DEFAULT_TIMEOUT_S)]
    pub request_timeout: u64,
}

impl RunArgs {
    /// The backend with its key variable and timeout; warns once about plain http to
    /// another host.
    pub fn backend(&self, quiet: bool) -> anyhow::Result<crate::backend::Backend> {
        let mut backend = self
            .backend
            .clone()
            .with_api_key_env(self.api_key_env.as_deref())?;
        if let crate::backend::Backend::Remote(spec) = &mut backend {
            spec.timeout_s = self.request_timeout.max(1);
            spec.api_key()?;
            if let (Some(w), false) = (spec.plain_http_warning(), quiet) {
                eprintln!("warning: {w}");
            }
        }
        Ok(backend)
    }
}

/// How the run a memory estimate is for would be set up (`inspect --ctx`, `plan`).
#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Sequences sharing the KV cache.
    #[arg(long, default_value_t = 1)]
    pub parallel: u64,
    /// KV cache type.
    #[arg(
        long = "kv-type",
        visible_alias = "cache-type-k",
        default_value = "f16"
    )]
    pub kv_type: crate::memory::KvType,
    /// Weights read into memory instead of memory-mapped.
    #[arg(long = "no-mmap")]
    pub no_mmap: bool,
}

impl EstimateArgs {
    /// The run at `n_ctx` cells with these weight copies.
    pub fn run_shape(
        &self,
        n_ctx: u64,
        copies: crate::memory::WeightCopies,
    ) -> crate::memory::RunShape {
        crate::memory::RunShape {
            n_ctx,
            n_seq: self.parallel.max(1),
            n_ubatch: 512,
            kv_type: self.kv_type,
            mmap: !self.no_mmap,
            copies,
        }
    }
}

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Source GGUF file.
    pub src: PathBuf,
    /// Destination GGUF file.
    pub dst: PathBuf,
    /// Target type: F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q4_0, ...
    #[arg(value_name = "TYPE")]
    pub quant: String,
    /// Allow quantizing tensors that are already quantized (precision lost stays lost).
    #[arg(long)]
    pub allow_requantize: bool,
    /// Overwrite DST if it exists.
    #[arg(long)]
    pub force: bool,
    /// Threads (default: all logical CPUs).
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which tasks and how, shared by `eval` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct TaskArgs {
    /// Tasks, comma-separated (sweep also: speed).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        default_value = "mmlu,gsm8k,humaneval"
    )]
    pub tasks: Vec<TaskArg>,
    /// Items per task (per subject for MMLU), the first N in dataset order: one number for
    /// every task, or TASK=N pairs (`mmlu=10,gsm8k=100`), or both (`5,humaneval=164`).
    #[arg(long, value_delimiter = ',')]
    pub limit: Vec<String>,
    /// MMLU few-shot examples (first N dev questions of the subject).
    #[arg(long, default_value_t = 5)]
    pub shots: usize,
    /// MMLU subjects, comma-separated (default: all 57).
    #[arg(long, value_delimiter = ',')]
    pub subjects: Option<Vec<String>>,
    /// GSM8K few-shot examples from train.
    #[arg(long = "gsm8k-shots", default_value_t = 5)]
    pub gsm8k_shots: usize,
    /// How GSM8K examples are drawn: lmeval (a new draw per question, as lm-eval) or fixed.
    #[arg(long = "gsm8k-sampling", value_enum, default_value_t = crate::tasks::gsm8k::Sampling::Lmeval)]
    pub gsm8k_sampling: crate::tasks::gsm8k::Sampling,
    /// Most tokens generated for a GSM8K answer.
    #[arg(long = "gsm8k-max-tokens", default_value_t = 256)]
    pub gsm8k_max_tokens: usize,
    /// Most tokens generated for a HumanEval completion.
    #[arg(long = "humaneval-max-tokens", default_value_t = 1024)]
    pub humaneval_max_tokens: usize,
    /// Score HumanEval with the HumanEval+ tests.
    #[arg(long)]
    pub plus: bool,
    /// Read datasets from this folder (laid out like the original releases) instead of the
    /// copy embedded in the binary.
    #[arg(long = "data-dir", conflicts_with = "data_source")]
    pub data_dir: Option<PathBuf>,
    /// Where datasets come from: the copy embedded in the binary (pinned, offline), or the
    /// Hugging Face Hub (cais/mmlu, openai/gsm8k, openai/openai_humaneval parquet files,
    /// cached in the standard HF cache; HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE apply).
    #[arg(long = "data-source", value_enum)]
    pub data_source: Option<DataSourceArg>,
    /// Revision of the Hub datasets.
    #[arg(long = "data-revision", default_value = "main")]
    pub data_revision: String,
    /// Prompt formats, comma-separated, for every task; the first is the one comparison
    /// tables show [default: MMLU raw, GSM8K and HumanEval tuned].
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true)]
    pub format: Vec<FormatArg>,
    /// The family template for the tuned format: a built-in name (smollm2, smollm3, gemma,
    /// gemma-3, gemma-base, phi-2, llama-3, qwen, chatml, raw) or a TOML file; default:
    /// chosen from the model's metadata.
    #[arg(long)]
    pub template: Option<String>,
}

/// A task on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// MMLU, 57 subjects, multiple choice scored by log-probabilities.
    Mmlu,
    /// GSM8K grade-school arithmetic, generated and extracted.
    Gsm8k,
    /// GSM8K with lm-eval's 8 chain-of-thought exemplars.
    #[value(name = "gsm8k_cot", alias = "gsm8k-cot")]
    Gsm8kCot,
    /// HumanEval, completions run against tests in the sandbox.
    Humaneval,
    /// Prompt and generation speed (sweep only).
    Speed,
    /// Quantization fidelity: KL divergence from the base file's distributions (sweep only).
    Fidelity,
}

/// A prompt format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// lm-eval's completion prompts (comparable with published numbers).
    Raw,
    /// The model's own chat template with a plain instruction.
    Chat,
    /// The model family's template file.
    Tuned,
    /// Each of raw, chat and tuned, side by side.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataSourceArg {
    Embedded,
    Hub,
}

/// The code sandbox, for HumanEval.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Run generated code even when only resource limits are available (no bwrap/namespaces).
    #[arg(long = "allow-weak-sandbox")]
    pub allow_weak_sandbox: bool,
    /// Wall-clock limit per program, seconds, from the sandbox's start to the program's exit
    /// (lm-eval's code_eval: 3); the CPU-time limit is as many seconds, rounded up. Part of
    /// HumanEval's protocol: results stored under another limit are not resumed.
    #[arg(long = "sandbox-timeout", default_value_t = crate::tasks::humaneval::TIMEOUT_S)]
    pub timeout: f64,
    /// Address-space limit per program (part of HumanEval's protocol, as the timeout).
    #[arg(long = "sandbox-memory", default_value = "2GiB")]
    pub memory: ByteSize,
    /// Programs run at once (overlapping with generation).
    #[arg(long = "sandbox-jobs", default_value_t = 2)]
    pub jobs: usize,
}

/// How evaluation batches its work, shared by `eval` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Sequences evaluated together (default: up to 8, as many as the KV cache for the longest
    /// prompt fits in half the memory left after loading — the cap's, or free RAM; generating
    /// on the CPU, a multiple of 4; scoring on the CPU: 1).
    #[arg(long)]
    pub parallel: Option<u32>,
    /// The simple reference path: one prompt at a time, each evaluated whole (no batching,
    /// no shared prefixes).
    #[arg(long = "no-batch")]
    pub no_batch: bool,
    /// Context size (default: sized from the longest prompt × --parallel).
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Generation: decode the --parallel sequences in batches of N (rounded down to a
    /// divisor of --parallel), kept in order of depth (default: 4 on the CPU, else all in one
    /// batch). Every batch has N rows (idle sequences padded), so an item's result does not
    /// depend on the others, nor on --parallel; results differ between values of N
    /// (llama.cpp's logits depend on a batch's row count).
    #[arg(long = "batch-rows", value_name = "N")]
    pub batch_rows: Option<u32>,
    /// Generation: decode only the sequences still generating, without padding idle ones
    /// (as llama-server does). Faster when a few long generations are left at the end of a
    /// run (HumanEval), but an item's output then depends on which items ran beside it.
    #[arg(long = "no-padding")]
    pub no_padding: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model: a GGUF file, a catalog id[:QUANT] or OWNER/REPO[:QUANT] (from the Hugging
    /// Face cache, downloaded if missing; the quant defaults to Q4_K_M).
    pub model: String,
    #[command(flatten, next_help_heading = "Tasks")]
    pub tasks: TaskArgs,
    #[command(flatten, next_help_heading = "Model and context")]
    pub run: RunArgs,
    #[command(flatten, next_help_heading = "Code sandbox (HumanEval)")]
    pub sandbox: SandboxArgs,
    #[command(flatten, next_help_heading = "Memory cap")]
    pub mem: MemArgs,
    #[command(flatten, next_help_heading = "Batching")]
    pub batch: BatchArgs,
    /// Output folder; results.sqlite there is resumed when it exists.
    #[arg(long, default_value = "reports/eval")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// An output folder (with results.sqlite) or a results.sqlite file.
    pub results: PathBuf,
    /// Item ids (e.g. anatomy/12, test/5, HumanEval/0); none lists the stored task runs.
    pub items: Vec<String>,
    /// Only items of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only items of cells whose model name contains this.
    #[arg(long)]
    pub model: Option<String>,
    /// Print the full prompt (rebuilt from the dataset and checked against its stored hash).
    #[arg(long)]
    pub prompt: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SandboxCheckArgs {
    /// Also run a harmless program through the sandbox.
    #[arg(long)]
    pub run: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// An output folder (with results.sqlite) or a results.sqlite file.
    pub results: PathBuf,
    /// Write the reports here (default: the results folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// RAM tiers of the hardware table in decision.md, comma-separated [default: 4GiB,8GiB,16GiB].
    #[arg(long = "ram-tiers", value_delimiter = ',')]
    pub ram_tiers: Vec<ByteSize>,
    /// Merge shards (DIR/shards, from a Slurm sweep) from different frontier or llama.cpp
    /// builds or data.
    #[arg(long = "allow-mixed")]
    pub allow_mixed: bool,
}

/// Models from the catalog or the Hub.
#[derive(Debug, Clone, Args)]
pub struct ModelSourceArgs {
    /// More catalog entries (TOML, the built-in format), added to the built-in catalog.
    #[arg(long)]
    pub catalog: Vec<PathBuf>,
    /// Revision of the model repos.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Make a quant the Hub lacks locally from the highest-precision file (the row says so).
    #[arg(long)]
    pub derive: bool,
}

/// What the fidelity task compares on (`frontier fidelity`, `sweep --tasks fidelity`).
#[derive(Debug, Clone, Args)]
pub struct FidelityArgs {
    /// The reference: one of the model's quants (F16, BF16, ...) or a GGUF file [default:
    /// the model's file with the most bits per weight].
    #[arg(long, value_name = "QUANT|FILE")]
    pub base: Option<String>,
    /// A UTF-8 text file to compare on (e.g. wikitext-2's test split) [default: GSM8K train
    /// solutions and MMLU dev questions from the embedded datasets].
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Chunks of the text compared (fewer when the text is shorter).
    #[arg(long, default_value_t = crate::fidelity::DEFAULT_CHUNKS, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunks: u32,
    /// Per position, the base's most likely tokens are kept until those left out hold at
    /// most this probability; they are one bucket (a lower bound of the divergence). 0 keeps
    /// the whole vocabulary: the exact divergence, ~400 KiB a token for a 49k vocabulary.
    #[arg(long, default_value_t = crate::fidelity::DEFAULT_TAIL, value_parser = parse_tail)]
    pub tail: f32,
}

fn parse_tail(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if (0.0..0.5).contains(&t) => Ok(t),
        _ => Err(format!("{s}: a probability from 0 to 0.5 (e.g. 1e-4)")),
    }
}

#[derive(Debug, Args)]
pub struct FidelityCmdArgs {
    /// Models: catalog ids (with :QUANT,...), hf:OWNER/REPO, or local .gguf files (the
    /// files of one model are compared with its base).
    #[arg(required = true, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Quantizations for catalog and Hub models.
    #[arg(long, value_delimiter = ',', default_value = "Q4_K_M,Q8_0,F16")]
    pub quants: Vec<String>,
    #[command(flatten, next_help_heading = "Models from the Hub")]
    pub models_from: ModelSourceArgs,
    #[command(flatten)]
    pub fidelity: FidelityArgs,
    /// Tokens per chunk; the second half of each is scored, so every scored token has
    /// context (llama-perplexity's -c).
    #[arg(short = 'c', long, default_value_t = crate::fidelity::DEFAULT_CTX, value_parser = clap::value_parser!(u32).range(16..))]
    pub ctx: u32,
    #[command(flatten, next_help_heading = "Model and context")]
    pub run: RunArgs,
    #[command(flatten, next_help_heading = "Memory cap")]
    pub mem: MemArgs,
    /// Also write the text compared on to FILE (to run another tool, e.g. llama-perplexity,
    /// on exactly the same text).
    #[arg(long = "save-text", value_name = "FILE")]
    pub save_text: Option<PathBuf>,
    /// Output folder: results.sqlite (resumed when it exists) and the reports.
    #[arg(long, default_value = "reports/fidelity")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Models, comma-separated: catalog ids (with :QUANT,... to override --quants),
    /// hf:OWNER/REPO, or local .gguf files.
    #[arg(long, value_delimiter = ',', required_unless_present = "status")]
    pub models: Vec<String>,
    /// Quantizations for catalog and Hub models.
    #[arg(long, value_delimiter = ',', default_value = "Q4_K_M,Q8_0,F16")]
    pub quants: Vec<String>,
    #[command(flatten, next_help_heading = "Models from the Hub")]
    pub models_from: ModelSourceArgs,
    #[command(flatten, next_help_heading = "Slurm (--executor slurm)")]
    pub slurm: Box<SlurmArgs>,
    #[command(flatten, next_help_heading = "Tasks")]
    pub tasks: TaskArgs,
    #[command(flatten, next_help_heading = "Model and context")]
    pub run: RunArgs,
    #[command(flatten, next_help_heading = "Code sandbox (HumanEval)")]
    pub sandbox: SandboxArgs,
    #[command(flatten, next_help_heading = "Memory cap")]
    pub mem: MemArgs,
    #[command(flatten, next_help_heading = "Batching")]
    pub batch: BatchArgs,
    /// Prompt tokens of the speed test (when `speed` is among --tasks).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    pub n_prompt: u32,
    /// Generated tokens of the speed test.
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    pub n_gen: u32,
    /// Repetitions of the speed test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 3)]
    pub reps: u32,
    /// The context (tokens) a model's serving footprint is measured at: one sequence, as a
    /// user runs it. Memory columns, the frontier and the RAM tiers use this footprint.
    #[arg(long = "serve-ctx", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(256..))]
    pub serve_ctx: u32,
    #[command(flatten, next_help_heading = "Fidelity (--tasks fidelity)")]
    pub fidelity: FidelityArgs,
    /// Tokens per chunk of the fidelity text (the second half of each is scored).
    #[arg(long = "fidelity-ctx", default_value_t = crate::fidelity::DEFAULT_CTX, value_parser = clap::value_parser!(u32).range(16..))]
    pub fidelity_ctx: u32,
    /// Output folder: results.sqlite (resumed when it exists) and the reports.
    #[arg(long, default_value = "reports/sweep")]
    pub out: PathBuf,
}

/// Where a sweep's cells run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    /// Here, one cell after another.
    Local,
    /// As one Slurm job array: a task per cell, each writing its own store shard under
    /// --out (shared storage), merged at the end.
    Slurm,
}

/// `--executor slurm` and what each array task asks Slurm for.
#[derive(Debug, Clone, Args)]
pub struct SlurmArgs {
    /// Where the cells run: here, or as one Slurm job array (sbatch --array).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    /// Slurm partition for the array's tasks (sbatch --partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (sbatch --time, e.g. 2:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// Memory per task (sbatch --mem, e.g. 8G).
    #[arg(long)]
    pub mem: Option<String>,
    /// GPUs per task (sbatch --gpus).
    #[arg(long)]
    pub gpus: Option<String>,
    /// Most tasks running at once (sbatch --array=…%K).
    #[arg(long = "array-limit", value_parser = clap::value_parser!(u32).range(1..))]
    pub array_limit: Option<u32>,
    /// Submit, print the job id and return; `--status DIR` and `frontier report DIR` later.
    #[arg(long)]
    pub detach: bool,
    /// Show each Slurm task of the sweep in DIR: state, reason, attempt, items stored.
    #[arg(long, value_name = "DIR", conflicts_with = "detach")]
    pub status: Option<PathBuf>,
    /// Merge shards from different frontier or llama.cpp builds or data.
    #[arg(long = "allow-mixed")]
    pub allow_mixed: bool,
    /// Internal: an array task runs only cell N of the grid, into DIR/shards/cell-N.sqlite.
    #[arg(long, hide = true)]
    pub cell: Option<usize>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// MODEL[:QUANT,...] (catalog id or hf:OWNER/REPO); without quants, --quants.
    #[arg(required = true)]
    pub models: Vec<String>,
    /// Quantizations to download, comma-separated (for models that name none).
    #[arg(long, value_delimiter = ',', default_value = "Q4_K_M,Q8_0,F16")]
    pub quants: Vec<String>,
    #[command(flatten, next_help_heading = "Models from the Hub")]
    pub models_from: ModelSourceArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// More catalog entries (TOML).
    #[arg(long)]
    pub catalog: Vec<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// A model loaded in this process for interactive use.
#[derive(Debug, Clone, Args)]
pub struct InteractiveArgs {
    /// Context size in tokens.
    #[arg(long, default_value_t = 4096)]
    pub ctx: u32,
    /// Most tokens per reply.
    #[arg(long = "max-tokens", default_value_t = 512)]
    pub max_tokens: usize,
    /// The family template (name or TOML file) instead of the automatic choice.
    #[arg(long)]
    pub template: Option<String>,
    /// CPU threads (default: physical cores).
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The model: a GGUF file, a catalog id[:QUANT] or OWNER/REPO[:QUANT] (from the Hugging
    /// Face cache, downloaded if missing; the quant defaults to Q4_K_M).
    pub model: String,
    /// System prompt (default: the model family's).
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub interactive: InteractiveArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoKind {
    Reasoning,
    Code,
    Chat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which canned prompt: a word problem, a coding task, or a conversation.
    #[arg(value_enum)]
    pub kind: DemoKind,
    /// Models, comma-separated (GGUF files, catalog ids[:QUANT], OWNER/REPO[:QUANT]); run one
    /// after another.
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// Your own prompt instead of the canned one.
    #[arg(long)]
    pub prompt: Option<String>,
    #[command(flatten)]
    pub interactive: InteractiveArgs,
}

#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// The model: a GGUF file, a catalog id[:QUANT] or OWNER/REPO[:QUANT] (from the Hugging
    /// Face cache, downloaded if missing; the quant defaults to Q4_K_M).
    pub model: String,
    #[command(flatten, next_help_heading = "Tasks")]
    pub tasks: TaskArgs,
    #[command(flatten, next_help_heading = "Model and context")]
    pub run: RunArgs,
    #[command(flatten, next_help_heading = "Code sandbox (HumanEval)")]
    pub sandbox: SandboxArgs,
    /// Sequences of the batched path (default: chosen as for `eval`).
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Also run llama.cpp's whole-vs-split comparison (MMLU: each prompt with its prefix
    /// decoded first, one at a time) to measure the kernels' own noise.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub split: bool,
    /// Keep the paths' results stores here (default: a temporary folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `--weight-copies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightCopiesArg {
    Auto,
    Amx,
    /// x86 with AVX2.
    Repack,
    /// x86 with AVX-512.
    RepackAvx512,
    /// ARM with dot products.
    RepackArm,
    None,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Memory available, e.g. 4GiB, 8GB.
    #[arg(long)]
    pub ram: ByteSize,
    /// Context sizes to consider, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2048,4096,8192")]
    pub ctx: Vec<u64>,
    /// Catalog models (default: all), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Quantizations to consider, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Q4_K_M,Q8_0,F16")]
    pub quants: Vec<String>,
    #[command(flatten)]
    pub estimate: EstimateArgs,
    /// The weight copies llama.cpp's CPU backend makes (AMX or repacked layouts): `auto` is
    /// this build on this CPU; name another to plan for a different machine.
    #[arg(long = "weight-copies", value_enum, default_value_t = WeightCopiesArg::Auto)]
    pub weight_copies: WeightCopiesArg,
    /// Print the arithmetic of every estimate.
    #[arg(long)]
    pub explain: bool,
    /// Do not contact the Hub: use cached files and catalog shapes only.
    #[arg(long)]
    pub offline: bool,
    /// More catalog entries (TOML).
    #[arg(long)]
    pub catalog: Vec<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}
