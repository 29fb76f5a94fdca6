//! The `frontier` binary: parse arguments, run the command, print the whole error chain
//! on one line and exit with 2 for bad input, 1 for other failures.

use clap::{CommandFactory, Parser};

fn main() {
    let args = frontier::cli::with_llama_spellings(std::env::args_os());
    // Defaults from the config file, for the flags the command line does not set.
    let args = match frontier::config::apply(args, &frontier::cli::Cli::command()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(frontier_core::error::exit_code(&err));
        }
    };
    let cli = frontier::cli::Cli::parse_from(args);
    frontier::logging::init(cli.verbose);
    let code = match frontier::commands::run(cli) {
        Ok(code) => code,
        // `frontier … | head`: the reader has what it wanted.
        Err(err) if frontier::output::is_broken_pipe(&err) => 0,
        Err(err) => {
            eprintln!("error: {err:#}");
            frontier_core::error::exit_code(&err)
        }
    };
    std::process::exit(code);
}
