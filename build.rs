//! Records what this binary was built with, so every result can carry it: the llama.cpp
//! bindings (llama-cpp-sys-2 version, the llama-cpp-rs commit it was cut from, ggml version),
//! the enabled GPU backends, the target CPU and its features, the profile, rustc and the
//! frontier commit.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let sys_version = locked_version(&manifest.join("Cargo.lock"), "llama-cpp-sys-2")
        .unwrap_or_else(|| "unknown".into());
    let (rs_commit, ggml_version) = registry_crate_dir("llama-cpp-sys-2", &sys_version)
        .map(|dir| (vcs_commit(&dir), ggml_version(&dir)))
        .unwrap_or_else(|| ("unknown".into(), "unknown".into()));

    let mut backends = vec!["cpu"];
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if env::var_os("CARGO_FEATURE_METAL").is_some()
        || (target_os == "macos" && target_arch == "aarch64")
    {
        backends.push("metal");
    }
    if env::var_os("CARGO_FEATURE_CUDA").is_some() {
        backends.push("cuda");
    }
    if env::var_os("CARGO_FEATURE_VULKAN").is_some() {
        backends.push("vulkan");
    }

    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let target_cpu = rustflags
        .split('\x1f')
        .find_map(|f| f.split("target-cpu=").nth(1))
        .unwrap_or("generic")
        .to_string();

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = command_output(Command::new(rustc).arg("--version")).unwrap_or_default();
    let git_commit = command_output(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(&manifest),
    )
    .unwrap_or_else(|| "unknown".into());
    if manifest.join(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
    }

    let vars = [
        ("FRONTIER_LLAMA_SYS_VERSION", sys_version),
        ("FRONTIER_LLAMA_RS_COMMIT", rs_commit),
        ("FRONTIER_GGML_VERSION", ggml_version),
        ("FRONTIER_BACKENDS", backends.join(",")),
        ("FRONTIER_TARGET_CPU", target_cpu),
        (
            "FRONTIER_TARGET_FEATURES",
            env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default(),
        ),
        ("FRONTIER_TARGET", env::var("TARGET").unwrap_or_default()),
        ("FRONTIER_PROFILE", env::var("PROFILE").unwrap_or_default()),
        ("FRONTIER_RUSTC", rustc_version),
        ("FRONTIER_GIT_COMMIT", git_commit),
    ];
    for (k, v) in vars {
        println!("cargo:rustc-env={k}={}", v.replace('\n', " "));
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

fn command_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
