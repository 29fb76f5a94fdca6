//! Records which llama.cpp this crate is built on, for the provenance every result carries:
//! the llama-cpp-sys-2 version Cargo.lock pins, the llama-cpp-rs commit it was cut from, and
//! ggml's version in its vendored sources.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The workspace's lock file, in this crate's folder or above it.
    let lock = manifest
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file());
    if let Some(lock) = &lock {
        println!("cargo:rerun-if-changed={}", lock.display());
    }
    let sys_version = lock
        .and_then(|l| locked_version(&l, "llama-cpp-sys-2"))
        .unwrap_or_else(|| "unknown".into());
    let (rs_commit, ggml_version) = registry_crate_dir("llama-cpp-sys-2", &sys_version)
        .map(|dir| (vcs_commit(&dir), ggml_version(&dir)))
        .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
    for (k, v) in [
        ("FRONTIER_LLAMA_SYS_VERSION", sys_version),
        ("FRONTIER_LLAMA_RS_COMMIT", rs_commit),
        ("FRONTIER_GGML_VERSION", ggml_version),
    ] {
        println!("cargo:rustc-env={k}={v}");
    }
}

/// The version Cargo.lock pins for a package.
fn locked_version(lock: &Path, package: &str) -> Option<String> {
    let text = fs::read_to_string(lock).ok()?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            let v = lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(v.to_string());
        }
    }
    None
}

/// Where cargo unpacked a registry crate.
fn registry_crate_dir(name: &str, version: &str) -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    fs::read_dir(home.join("registry/src"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join(format!("{name}-{version}")))
        .find(|p| p.is_dir())
}

fn vcs_commit(dir: &Path) -> String {
    fs::read_to_string(dir.join(".cargo_vcs_info.json"))
        .ok()
        .and_then(|t| {
            let i = t.find("\"sha1\"")?;
            let rest = &t[i + 6..];
            let start = rest.find('"')? + 1;
            let end = rest[start..].find('"')? + start;
            Some(rest[start..end].chars().take(12).collect())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn ggml_version(dir: &Path) -> String {
    let Ok(text) = fs::read_to_string(dir.join("llama.cpp/ggml/CMakeLists.txt")) else {
        return "unknown".into();
    };
    let part = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("set({name} "))?
                    .strip_suffix(')')
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{}.{}.{}",
        part("GGML_VERSION_MAJOR"),
        part("GGML_VERSION_MINOR"),
        part("GGML_VERSION_PATCH")
    )
}
