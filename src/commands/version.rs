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
        crate::output::print(serde_json::to_string_pretty(&v)? + "\n")?;
        return Ok(0);
    }
    crate::output::print(format!(
        "frontier {} ({})\nllama.cpp: {}\nbackends: {}\ntarget: {} (cpu {}, {} profile)\nrustc: {}\nllama.cpp system info: {system_info}\nmachine: {}\n",
        build.frontier_version,
        build.frontier_commit,
        build.llama_cpp,
        build.backends,
        build.target,
        build.target_cpu,
        build.profile,
        build.rustc,
        machine.one_line()
    ))?;
    Ok(0)
}
