use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = adasid::cli::Cli::parse();
    match adasid::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
