//! Pause points and injected failures for the crash-safety and concurrency tests. With `SCENES_PAUSE_AT=<name>` in
//! the environment, the process announces `scenes: paused at <name>` on stderr when it reaches
//! that point and waits there, so a test can kill it (SIGKILL) at exactly that step, or, with
//! `SCENES_RESUME_WHEN=<file>`, let another process act and then resume it by creating that
//! file. Without the variables a pause point does nothing.

use std::io::Write;
use std::time::Duration;

/// Environment variable naming the point to pause at.
pub const PAUSE_ENV: &str = "SCENES_PAUSE_AT";

/// Environment variable naming a file whose creation ends the pause.
pub const RESUME_ENV: &str = "SCENES_RESUME_WHEN";

/// Environment variable naming a step that fails on purpose (see [`injected_failure`]).
pub const FAIL_ENV: &str = "SCENES_FAIL_AT";

/// `Some(reason)` when [`FAIL_ENV`] names the step `name`: the caller fails that step, as a
/// real error there would (tests of what a failure leaves behind).
pub fn injected_failure(name: &str) -> Option<String> {
    std::env::var_os(FAIL_ENV).filter(|v| v == name).map(|_| format!("failure injected at {name} ({FAIL_ENV})"))
}

/// Pauses at `name` when [`PAUSE_ENV`] names it: until the file named by [`RESUME_ENV`]
/// exists, or forever without it.
pub fn pause_point(name: &str) {
    if std::env::var_os(PAUSE_ENV).is_some_and(|v| v == name) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "scenes: paused at {name}");
        let _ = err.flush();
        let resume = std::env::var_os(RESUME_ENV).map(std::path::PathBuf::from);
        loop {
            match &resume {
                Some(file) if file.exists() => return,
                Some(_) => std::thread::sleep(Duration::from_millis(20)),
                None => std::thread::sleep(Duration::from_secs(3600)),
            }
        }
    }
}
