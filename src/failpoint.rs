//! Pause points for the crash-safety tests. With `SCENES_PAUSE_AT=<name>` in the environment,
//! the process announces `scenes: paused at <name>` on stderr when it reaches that point and
//! waits there, so a test can kill it (SIGKILL) at exactly that step. Without the variable a
//! pause point does nothing.

use std::io::Write;
use std::time::Duration;

/// Environment variable naming the point to pause at.
pub const PAUSE_ENV: &str = "SCENES_PAUSE_AT";

/// Pauses forever at `name` when [`PAUSE_ENV`] names it.
pub fn pause_point(name: &str) {
    if std::env::var_os(PAUSE_ENV).is_some_and(|v| v == name) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "scenes: paused at {name}");
        let _ = err.flush();
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
