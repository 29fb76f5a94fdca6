//! `frontier probe URL`: what a server can do for the remote backend, and which tasks it
//! can run.

use anyhow::Result;

use crate::cli::ProbeArgs;

pub fn run(args: &ProbeArgs) -> Result<i32> {
    let mut spec = frontier_remote::RemoteSpec::parse(&args.url)?;
    spec.api_key_env = args.api_key_env.clone();
    spec.api_key()?;
    if let Some(w) = spec.plain_http_warning() {
        eprintln!("warning: {w}");
    }
    let caps = frontier_remote::probe(&spec)?;
    if args.json {
        crate::output::print(format!("{}\n", serde_json::to_string_pretty(&caps)?))?;
    } else {
        crate::output::print(caps.describe())?;
    }
    Ok(0)
}
