//! The `frontier` binary: parse arguments, run the command, print the whole error chain
//! on one line and exit with 2 for bad input, 1 for other failures.

use clap::Parser;

fn main() {
    let cli = frontier::cli::Cli::parse();
    frontier::logging::init(cli.verbose);
    let code = match frontier::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            frontier_core::error::exit_code(&err)
        }
    };
    std::process::exit(code);
}
