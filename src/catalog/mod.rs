//! The model catalog: built-in models (an embedded TOML file) plus the user's additions, and
//! the parsing of what a user names on the command line (`smollm2-1.7b:Q4_K_M,Q8_0`,
//! `hf:owner/repo`, a local `.gguf` path).

pub mod quant;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use frontier_core::error::bad_input;

const BUILT_IN: &str = include_str!("models.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogModel {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub params: String,
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub license: String,
    /// Hugging Face repos holding its GGUF files, tried in order.
    pub repos: Vec<String>,
    #[serde(default)]
    pub notes: String,
    /// The architecture's numbers (from its config), for memory estimates without a header.
    #[serde(default)]
    pub shape: Option<CatalogShape>,
}

/// A model's size and attention shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogShape {
    pub n_params: u64,
    pub n_layer: u64,
    pub n_embd: u64,
    pub n_ff: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub head_dim: u64,
    pub n_vocab: u64,
    /// The output layer reuses the embedding table.
    #[serde(default)]
    pub tied: bool,
    #[serde(default)]
    pub sliding_window: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct CatalogFile {
    #[serde(default)]
    model: Vec<CatalogModel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub models: Vec<CatalogModel>,
}

impl Catalog {
    /// The built-in catalog, then `~/.config/frontier/models.toml` if present, then `extra`
    /// files; a later entry with the same id replaces an earlier one.
    pub fn load(extra: &[PathBuf]) -> Result<Catalog> {
        let mut cat = Catalog::parse(BUILT_IN, "built-in catalog")?;
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            let user = PathBuf::from(home).join(".config/frontier/models.toml");
            if user.is_file() {
                files.push(user);
            }
        }
        files.extend(extra.iter().cloned());
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| bad_input(format!("{}: {e}", f.display())))?;
            let more = Catalog::parse(&text, &f.display().to_string())?;
            for m in more.models {
                match cat.models.iter_mut().find(|x| x.id == m.id) {
                    Some(existing) => *existing = m,
                    None => cat.models.push(m),
                }
            }
        }
        Ok(cat)
    }

    pub fn parse(text: &str, label: &str) -> Result<Catalog> {
        let file: CatalogFile =
            toml::from_str(text).map_err(|e| bad_input(format!("{label}: {e}")))?;
        for m in &file.model {
            if m.repos.is_empty() {
                return Err(bad_input(format!(
                    "{label}: model '{}' lists no repos",
                    m.id
                )));
            }
        }
        Ok(Catalog { models: file.model })
    }

    pub fn get(&self, id: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|m| m.id.eq_ignore_ascii_case(id))
    }
}

/// What a user named as a model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelRef {
    Catalog(Box<CatalogModel>),
    /// `hf:owner/repo`
    Repo(String),
    Local(PathBuf),
}

impl ModelRef {
    /// The name reports use for the model (quant excluded).
    pub fn display_name(&self) -> String {
        match self {
            ModelRef::Catalog(m) => m.name.clone(),
            ModelRef::Repo(r) => r
                .rsplit('/')
                .next()
                .unwrap_or(r)
                .trim_end_matches("-GGUF")
                .to_string(),
            ModelRef::Local(p) => quant::strip_quant_suffix(
                &p.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Parses `ID[:Q1,Q2]`, `owner/repo[:Q...]` (llama.cpp's `-hf` habit), `hf:owner/repo[:Q...]`
/// or `PATH.gguf`; returns the model and the quants named after it (empty when none).
pub fn parse_model_spec(spec: &str, catalog: &Catalog) -> Result<(ModelRef, Vec<String>)> {
    let spec = spec.trim();
    if spec.ends_with(".gguf") || Path::new(spec).is_file() {
        return Ok((ModelRef::Local(PathBuf::from(spec)), Vec::new()));
    }
    let (mut head, quants) = match spec.strip_prefix("hf:") {
        Some(rest) => match rest.split_once(':') {
            Some((repo, q)) => (format!("hf:{repo}"), q),
            None => (spec.to_string(), ""),
        },
        None => match spec.split_once(':') {
            Some((id, q)) => (id.to_string(), q),
            None => (spec.to_string(), ""),
        },
    };
    let quants: Vec<String> = quants
        .split(',')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_string)
        .collect();
    // A bare owner/repo is a Hub repo.
    if !head.starts_with("hf:") && head.matches('/').count() == 1 && catalog.get(&head).is_none() {
        head = format!("hf:{head}");
    }
    if let Some(repo) = head.strip_prefix("hf:") {
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            return Err(bad_input(format!("'{spec}': a Hub model is hf:OWNER/REPO")));
        }
        return Ok((ModelRef::Repo(repo.to_string()), quants));
    }
    let Some(model) = catalog.get(&head).cloned() else {
        let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
        return Err(bad_input(format!(
            "unknown model '{head}'{}: not a catalog id ({}), not OWNER/REPO, not a .gguf file",
            frontier_core::suggest::hint(&head, ids.iter().copied()),
            ids.join(", ")
        )));
    };
    Ok((ModelRef::Catalog(Box::new(model)), quants))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_has_the_contenders() {
        let c = Catalog::parse(BUILT_IN, "built-in").unwrap();
        for id in [
            "phi-2",
            "gemma-2b",
            "smollm2-1.7b",
            "smollm3-3b",
            "smollm2-135m",
            "smollm2-360m",
            "gemma-3-270m",
        ] {
            assert!(c.get(id).is_some(), "{id}");
        }
    }

    #[test]
    fn specs_parse() {
        let c = Catalog::parse(BUILT_IN, "built-in").unwrap();
        let (m, q) = parse_model_spec("smollm2-1.7b:Q4_K_M,q8_0", &c).unwrap();
        assert!(matches!(m, ModelRef::Catalog(ref x) if x.id == "smollm2-1.7b"));
        assert_eq!(q, ["Q4_K_M", "q8_0"]);
        let (m, q) = parse_model_spec("hf:owner/Some-Model-GGUF:F16", &c).unwrap();
        assert_eq!(m, ModelRef::Repo("owner/Some-Model-GGUF".into()));
        assert_eq!(m.display_name(), "Some-Model");
        assert_eq!(q, ["F16"]);
        let (m, _) = parse_model_spec("/tmp/x/SmolLM2-135M-Instruct.Q8_0.gguf", &c).unwrap();
        assert_eq!(m.display_name(), "SmolLM2-135M-Instruct");
        let e = parse_model_spec("gpt-5", &c).unwrap_err();
        assert!(e.to_string().contains("unknown model 'gpt-5'"), "{e}");
        assert!(e.downcast_ref::<frontier_core::error::BadInput>().is_some());
        let e = parse_model_spec("smolm2-135m:Q8_0", &c).unwrap_err();
        assert!(
            e.to_string().contains("did you mean 'smollm2-135m'?"),
            "{e}"
        );
        let (m, q) = parse_model_spec("bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M", &c).unwrap();
        assert_eq!(
            m,
            ModelRef::Repo("bartowski/SmolLM2-135M-Instruct-GGUF".into())
        );
        assert_eq!(q, ["Q4_K_M"]);
        assert!(parse_model_spec("hf:justone", &c).is_err());
    }
}
