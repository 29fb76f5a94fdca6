//! Where benchmark files come from: the copy embedded in the binary (default, offline,
//! pinned), a folder laid out like the original releases (`--data-dir`), or the Hugging
//! Face Hub (parquet). A source hands out files by their path in the original layout
//! (`mmlu/test/anatomy_test.csv`) and checks them against the dataset's manifest.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};

use super::manifest::Manifest;
use crate::hashing::sha256_hex;
use frontier_core::error::bad_input;

/// The vendored archives (see `scripts/vendor-datasets`).
const EMBEDDED: &[(&str, &[u8])] = &[
    ("mmlu", include_bytes!("../../datasets/mmlu.tar.gz")),
    ("gsm8k", include_bytes!("../../datasets/gsm8k.tar.gz")),
    (
        "humaneval",
        include_bytes!("../../datasets/humaneval.tar.gz"),
    ),
];

/// A benchmark data source chosen by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Dir(PathBuf),
    /// The parquet files on the Hugging Face Hub, at a revision.
    Hub {
        revision: String,
    },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Embedded => "embedded copy".into(),
            Source::Dir(d) => format!("folder {}", d.display()),
            Source::Hub { revision } => format!("hub revision {revision}"),
        }
    }

    /// The inverse of [`Source::describe`] (for rebuilding stored prompts).
    pub fn from_description(s: &str) -> Source {
        if let Some(d) = s.strip_prefix("folder ") {
            Source::Dir(PathBuf::from(d))
        } else if let Some(r) = s.strip_prefix("hub revision ") {
            Source::Hub {
                revision: r.to_string(),
            }
        } else {
            Source::Embedded
        }
    }
}

/// Files held in memory (the embedded archive, or the Hub's rows laid out as files).
pub type FileMap = Arc<BTreeMap<String, Vec<u8>>>;

/// One file of a dataset, with its content hash and where it came from.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Path in the original layout, e.g. `gsm8k/test.jsonl`.
    pub path: String,
    /// Where a person can find it (for error messages).
    pub shown: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// The files of one dataset from one source, checked against the manifest.
#[derive(Debug)]
pub struct DatasetFiles {
    pub manifest: &'static Manifest,
    source: Source,
    /// For the embedded and Hub sources: every file, by its original path.
    in_memory: Option<FileMap>,
}

impl DatasetFiles {
    pub fn open(dataset: &str, source: &Source) -> Result<DatasetFiles> {
        let manifest = super::manifest::get(dataset)?;
        let in_memory = match source {
            Source::Embedded => Some(embedded_archive(dataset)?),
            Source::Hub { revision } => Some(hub_files(dataset, revision)?),
            Source::Dir(dir) => {
                if !dir.is_dir() {
                    return Err(bad_input(format!(
                        "{}: no such data directory",
                        dir.display()
                    )));
                }
                None
            }
        };
        Ok(DatasetFiles {
            manifest,
            source: source.clone(),
            in_memory,
        })
    }

    /// A file set already in memory (tests, and sources fetched elsewhere).
    pub fn from_files(dataset: &str, source: &Source, files: FileMap) -> Result<DatasetFiles> {
        Ok(DatasetFiles {
            manifest: super::manifest::get(dataset)?,
            source: source.clone(),
            in_memory: Some(files),
        })
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Reads one file (original layout path). Files the manifest knows must match its
    /// hash when embedded; from a folder a different hash is allowed (another copy of the
    /// data) but is recorded, since results then carry that hash.
    pub fn read(&self, path: &str) -> Result<DataFile> {
        let (bytes, shown) = match (&self.source, &self.in_memory) {
            (Source::Embedded, Some(files)) => (
                files
                    .get(path)
                    .cloned()
                    .ok_or_else(|| anyhow!("the embedded {} data has no file {path}", self.manifest.name))?,
                format!("embedded:{path}"),
            ),
            (Source::Hub { .. }, Some(files)) => (
                files.get(path).cloned().ok_or_else(|| {
                    bad_input(format!(
                        "{path} is not available from the Hub ({}); use the embedded copy or --data-dir",
                        super::hub::repo_of(&self.manifest.name).unwrap_or("?")
                    ))
                })?,
                format!("hub:{path}"),
            ),
            (Source::Dir(dir), _) => {
                let full = dir.join(path);
                let bytes = std::fs::read(&full)
                    .map_err(|e| bad_input(format!("{}: cannot read: {e}", full.display())))?;
                (bytes, full.display().to_string())
            }
            _ => bail!("dataset source and contents disagree"),
        };
        let sha256 = sha256_hex(&bytes);
        if let (Source::Embedded, Some(entry)) = (&self.source, self.manifest.file(path)) {
            if entry.sha256 != sha256 {
                bail!("embedded {path} does not match its manifest (binary corrupted?)");
            }
        }
        Ok(DataFile {
            path: path.to_string(),
            shown,
            bytes,
            sha256,
        })
    }

    /// Files under `dir` (original layout) with the given suffix, sorted.
    pub fn list(&self, dir: &str, suffix: &str) -> Result<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut names: Vec<String> = match (&self.source, &self.in_memory) {
            (Source::Embedded | Source::Hub { .. }, Some(files)) => files
                .keys()
                .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                .cloned()
                .collect(),
            (Source::Dir(root), _) => {
                let full = root.join(dir);
                std::fs::read_dir(&full)
                    .map_err(|e| bad_input(format!("{}: cannot list: {e}", full.display())))?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().map(|n| format!("{prefix}{n}")))
                    .collect()
            }
            _ => bail!("dataset source and contents disagree"),
        };
        names.retain(|n| n.ends_with(suffix));
        names.sort();
        Ok(names)
    }

    /// Checks a parsed file's row count against the manifest.
    pub fn check_rows(&self, file: &DataFile, rows: usize) -> Result<()> {
        if let Some(expected) = self.manifest.file(&file.path).and_then(|f| f.rows) {
            if expected != rows as u64 {
                return Err(bad_input(format!(
                    "{}: {rows} rows, but the {} manifest says {expected}",
                    file.shown, self.manifest.name
                )));
            }
        }
        Ok(())
    }
}

/// Unpacks an embedded archive once per process.
fn embedded_archive(dataset: &str) -> Result<FileMap> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, FileMap>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| anyhow!("dataset cache poisoned"))?;
    if let Some(files) = cache.get(dataset) {
        return Ok(files.clone());
    }
    let bytes = EMBEDDED
        .iter()
        .find(|(name, _)| *name == dataset)
        .map(|(_, b)| *b)
        .ok_or_else(|| anyhow!("no embedded dataset named {dataset}"))?;
    let files = Arc::new(unpack_tar_gz(bytes)?);
    cache.insert(dataset.to_string(), files.clone());
    Ok(files)
}

/// Fetches a dataset from the Hub once per process.
fn hub_files(dataset: &str, revision: &str) -> Result<FileMap> {
    static CACHE: OnceLock<Mutex<BTreeMap<(String, String), FileMap>>> = OnceLock::new();
    let key = (dataset.to_string(), revision.to_string());
    if let Some(files) = CACHE
        .get_or_init(Default::default)
        .lock()
        .ok()
        .and_then(|c| c.get(&key).cloned())
    {
        return Ok(files);
    }
    let files = Arc::new(super::hub::fetch(dataset, revision)?);
    if let Ok(mut c) = CACHE.get_or_init(Default::default).lock() {
        c.insert(key, files.clone());
    }
    Ok(files)
}

fn unpack_tar_gz(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    for entry in archive
        .entries()
        .context("reading an embedded dataset archive")?
    {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        files.insert(path, data);
    }
    Ok(files)
}

/// Reads a possibly gzip-compressed file's text (by its `.gz` name).
pub fn text_of(file: &DataFile) -> Result<String> {
    let raw = if file.path.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(file.bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| bad_input(format!("{}: not valid gzip: {e}", file.shown)))?;
        out
    } else {
        file.bytes.clone()
    };
    String::from_utf8(raw).map_err(|e| bad_input(format!("{}: not UTF-8 text: {e}", file.shown)))
}

/// sha256 over the `path sha256` lines of the files used: the dataset identity results carry.
pub fn content_hash(files: &[&DataFile]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{} {}\n", f.sha256, f.path))
        .collect();
    lines.sort();
    sha256_hex(lines.concat().as_bytes())
}
