//! Records what this binary was built with, so every result can carry it: the enabled GPU
//! backends, the target CPU and its features, the profile, rustc and the frontier commit
//! (`crates/llama/build.rs` records which llama.cpp).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
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

fn command_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
