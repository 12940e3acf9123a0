//! The `adasid` program: the command line over the library.

mod cli;

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

/// Whether the command given asked for JSON (its own parsed `--json` flag,
/// not a scan of the arguments, where `--json` may be another option's value).
fn wants_json(matches: &ArgMatches) -> bool {
    matches
        .subcommand()
        .is_some_and(|(_, m)| matches!(m.try_get_one::<bool>("json"), Ok(Some(true))))
}

fn main() -> ExitCode {
    // Training and evaluation spend most of their time in page faults
    // otherwise (see the function's docs).
    adasid::heap::keep_freed_memory();
    let matches = cli::Cli::command().get_matches();
    let json = wants_json(&matches);
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json => {
            eprintln!("{}", cli::error_json(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
