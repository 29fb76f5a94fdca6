//! `frontier version`: this build of frontier and llama.cpp, and the machine.

use anyhow::Result;
use serde_json::json;

use crate::build_info::BuildInfo;
use crate::cli::VersionArgs;
use frontier_core::system::Machine;

pub fn run(args: &VersionArgs) -> Result<i32> {
    let build = BuildInfo::get();
    let machine = Machine::describe();
    let system_info = frontier_llama::system_info();
    if args.json {
        let v = json!({ "build": build, "machine": machine, "llama_system_info": system_info });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "frontier {} ({})",
        build.frontier_version, build.frontier_commit
    );
    println!("llama.cpp: {}", build.llama_cpp);
    println!("backends: {}", build.backends);
    println!(
        "target: {} (cpu {}, {} profile)",
        build.target, build.target_cpu, build.profile
    );
    println!("rustc: {}", build.rustc);
    println!("llama.cpp system info: {system_info}");
    println!("machine: {}", machine.one_line());
    Ok(0)
}
