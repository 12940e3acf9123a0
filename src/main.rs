use std::process::ExitCode;

use clap::Parser;

// Training allocates many short-lived tensors; glibc's malloc returns large
// blocks to the kernel and faults them back in (measured: ~20% of training time).
//#[global_allocator]
//static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
