//! The `scenes` binary: parses arguments and hands them to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: ingest allocates and frees column buffers of a few
/// MB per chunk, which glibc hands back to the kernel and faults in again every time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = scenes::cli::Cli::parse();
    match scenes::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
