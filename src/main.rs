//! The `scenes` binary: parses arguments and hands them to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: ingest allocates and frees column buffers of a few
/// MB per chunk, which glibc hands back to the kernel and faults in again every time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    exit_cleanly_when_stdout_fails();
    let cli = scenes::cli::Cli::parse();
    match scenes::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `println!` panics when standard output cannot be written: a full disk behind a redirect, or
/// a reader that went away (`scenes query ... | head`). Say so in one line instead of a panic
/// and a backtrace; a closed pipe is the reader's choice and ends the run quietly.
fn exit_cleanly_when_stdout_fails() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        match message.and_then(|m| m.strip_prefix("failed printing to stdout: ")) {
            Some(reason) if reason.contains("Broken pipe") => std::process::exit(0),
            Some(reason) => {
                eprintln!("error: cannot write to standard output: {reason}");
                std::process::exit(1);
            }
            None => default_hook(info),
        }
    }));
}
