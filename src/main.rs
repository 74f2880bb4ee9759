//! The `scenes` binary: parses arguments and hands them to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: ingest allocates and frees column buffers of a few
/// MB per chunk, which glibc hands back to the kernel and faults in again every time. The
/// `override` feature of `libmimalloc-sys` makes it serve the C code's `malloc` (zstd) as well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keep_freed_memory_for_a_second();
    exit_cleanly_when_stdout_fails();
    // Bad flags exit 2 (clap's usage code); --help and --version exit 0.
    let cli = scenes::cli::Cli::parse();
    match scenes::cli::run(cli) {
        Ok(scenes::cli::Outcome::Done) => exit_without_allocator_cleanup(0),
        Ok(scenes::cli::Outcome::SomeFailed { .. }) => exit_without_allocator_cleanup(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(scenes::cli::exit_code_for(&e))
        }
    }
}

/// Ends the process once `run` has returned (every file, store connection, runtime and thread
/// of ours closed by then) without the allocator's exit-time cleanup: statically linked
/// mimalloc collects at exit, handing every page it holds back to the kernel one `madvise` at a
/// time, for memory the kernel reclaims anyway. Only the standard streams need flushing first.
fn exit_without_allocator_cleanup(code: i32) -> std::process::ExitCode {
    use std::io::Write;
    let flushed = std::io::stdout().flush().is_ok() && std::io::stderr().flush().is_ok();
    if !flushed {
        // Let the normal exit path report or retry; correctness over the saved milliseconds.
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // SAFETY: `_exit` ends the process immediately; nothing of ours is left to run or flush.
    unsafe { libc::_exit(code) }
}

/// mimalloc's `purge_delay` option (its index in the v2 line's `mi_option_e`; the sys crate has
/// no constant for it) and its default in milliseconds.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Lets freed memory stay with the allocator for a second before it goes back to the kernel
/// (mimalloc's default is 10 ms). Ingest frees a batch's column and page buffers and allocates
/// the next ones a few milliseconds later; returned pages would come back zero-filled by the
/// kernel, which costs more than keeping them. A `MIMALLOC_PURGE_DELAY` in the environment
/// still wins.
fn keep_freed_memory_for_a_second() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || std::env::var_os("MIMALLOC_RESET_DELAY").is_some() {
        return;
    }
    // SAFETY: mimalloc's option calls take plain integers and read or write its option table;
    // this runs on the main thread before any other thread exists.
    unsafe {
        // Only when the index really is purge_delay (it holds that option's default).
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000);
        }
    }
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`), unless
/// `MIMALLOC_ALLOW_THP` in the environment asks otherwise. mimalloc asks the kernel for huge pages
/// by default, and the kernel then zeroes 2 MiB at a time, whether the process uses it or not. On
/// virtual machines that hand freed memory back to the host, each fresh page also costs a fault in
/// the host. Ingest and batch allocate a few dozen MiB of buffers, and under huge pages the
/// first touch of that memory dominates a short run.
///
/// It runs from the executable's constructor list, before `main` and before the Rust runtime's
/// first allocation (called from `main`, it came after that allocation had faulted in one huge
/// page). It allocates nothing itself (`getenv`, not `std::env`).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static NO_TRANSPARENT_HUGE_PAGES: extern "C" fn() = no_transparent_huge_pages;

#[cfg(target_os = "linux")]
extern "C" fn no_transparent_huge_pages() {
    // SAFETY: `getenv` reads the environment, which nothing writes this early; the name is a
    // NUL-terminated literal.
    let allowed = unsafe { !libc::getenv(c"MIMALLOC_ALLOW_THP".as_ptr()).is_null() };
    if allowed {
        return;
    }
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag on this process.
    // It fails only on kernels older than 3.15; the process then runs as before.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
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
