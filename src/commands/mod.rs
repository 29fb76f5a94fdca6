//! One module per subcommand; `run` dispatches and returns the exit code.

mod chat;
mod demo;
mod eval;
mod fetch;
mod fidelity;
mod inspect;
mod interactive;
mod list;
mod plan;
mod probe;
mod quantize;
mod report;
mod sandbox_check;
mod shell;
mod show;
mod speed;
mod sweep;
mod throughput;
mod version;
mod worker;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs a parsed command line; `Ok(code)` for a run that finished (1 if some part failed).
pub fn run(cli: Cli) -> Result<i32> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Inspect(args) => inspect::run(&args, quiet),
        Command::Speed(args) => speed::run(&args, cli.verbose, quiet),
        Command::Quantize(args) => quantize::run(&args, quiet),
        Command::Version(args) => version::run(&args),
        Command::Completions(args) => shell::completions(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Man(args) => shell::man(&args),
        Command::Eval(args) => eval::run(&args, cli.verbose, quiet),
        Command::Show(args) => show::run(&args),
        Command::Report(args) => report::run(&args, quiet),
        Command::Sweep(args) => sweep::run(&args, cli.verbose, quiet),
        Command::Fetch(args) => fetch::run(&args, quiet),
        Command::List(args) => list::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Chat(args) => chat::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Fidelity(args) => fidelity::run(&args, cli.verbose, quiet),
        Command::Throughput(args) => throughput::run(&args, cli.verbose, quiet),
        Command::SandboxCheck(args) => sandbox_check::run(&args),
        Command::Worker(args) => worker::run(&args),
    }
}
