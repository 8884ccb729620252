//! The `tidings` binary: parse the command line and run it (`cli::run` sets up
//! logging once it knows the configured format).

use clap::Parser;

/// mimalloc rather than the system allocator: measured, it keeps less memory per idle
/// connection and spends less CPU per delivery (see `docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = tidings::cli::Cli::parse();
    if let Err(message) = tidings::cli::run(cli) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
