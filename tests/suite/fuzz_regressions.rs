//! Every input the fuzzers (`fuzz/`) found a problem with, replayed through the same entry
//! points: each must return (no panic, no hang) now. Inputs live in
//! `tests/fuzz-regressions/<target>/`, one file per finding, named after what it exposed.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// Generous bound for one input in a debug build; the bugs these inputs caught ran for minutes.
const HANG_LIMIT: Duration = Duration::from_secs(60);

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = manifest_dir().join("tests/fuzz-regressions").join(target);
    // `.gitkeep` keeps a target's folder in git before it has findings.
    let inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    for input in inputs {
        run_one(&input, entry);
    }
}

fn run_one(input: &Path, entry: fn(&[u8])) {
    let bytes = std::fs::read(input).unwrap();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| entry(&bytes));
        let _ = done.send(outcome.is_ok());
    });
    match finished.recv_timeout(HANG_LIMIT) {
        Ok(true) => {}
        Ok(false) => panic!("{} panicked", input.display()),
        Err(_) => panic!("{} did not finish within {HANG_LIMIT:?}", input.display()),
    }
}

#[test]
fn bag_reader_findings_stay_fixed() {
    replay("bag_reader", scenes::fuzz_entry::read_bag);
}

#[test]
fn definition_decoder_findings_stay_fixed() {
    replay("definition_decoder", scenes::fuzz_entry::decode_with_definition);
}
