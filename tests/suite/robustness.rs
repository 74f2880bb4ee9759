//! No panic on any input: every real bag (ROS1 and MCAP) and other file in ../shared/bags,
//! every truncation of sample bags, unindexed bags, and files that are not ROS1 v2.0 bags.

use std::path::Path;
use std::process::Stdio;

use crate::common::*;
use scenes::bag::{Bag, IndexState};
use scenes::ingest::{ingest_bag, IngestOptions};
use scenes::lake::Lake;
use scenes::meta::sqlite::SqliteStore;

fn assert_no_panic(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{what}: exit {:?}: {stderr}", out.status);
}

#[test]
fn every_shared_file_is_read_or_refused_cleanly() {
    let Some(dir) = required_shared_bags() else {
        return;
    };
    let lake = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let p = path.to_str().unwrap();
        let info = scenes(&["info", p]);
        assert_no_panic(&info, &format!("info {p}"));
        let ingest = scenes(&["ingest", "--lake", lake.path().to_str().unwrap(), p]);
        assert_no_panic(&ingest, &format!("ingest {p}"));
        if p.ends_with(".bag") || p.ends_with(".mcap") {
            assert!(info.status.success(), "{p}: {}", String::from_utf8_lossy(&info.stderr));
            assert!(ingest.status.success(), "{p}: {}", String::from_utf8_lossy(&ingest.stderr));
        } else if path.is_dir() {
            // The folder of rosbag2 recordings: one bag each (`info` describes one recording).
            assert!(ingest.status.success(), "{p}: {}", String::from_utf8_lossy(&ingest.stderr));
        } else {
            // Not a bag: one clear line naming the file.
            let err = String::from_utf8_lossy(&ingest.stderr);
            assert!(!ingest.status.success());
            assert!(err.contains(path.file_name().unwrap().to_str().unwrap()), "{err}");
        }
    }
}

fn ingest_bytes(name: &str, bytes: &[u8], lake: &Lake, store: &SqliteStore, rt: &tokio::runtime::Runtime) -> scenes::Result<scenes::ingest::IngestReport> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    ingest_bag(&path, lake, store, &IngestOptions { threads: 2, ..Default::default() }, rt)
}

/// Cuts `bag` at many offsets; each cut either fails with an error or ingests a prefix of the
/// messages, never more than the whole and never by panicking.
fn truncations_never_panic(bag: &Path, cuts: usize) {
    let bytes = std::fs::read(bag).unwrap();
    let full = Bag::open(bag).unwrap().message_count();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(lake_dir.path().to_str().unwrap()).unwrap();
    let store = SqliteStore::open(&lake.metadata_file().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut recovered_some = 0;
    for i in 1..=cuts {
        let cut = bytes.len() * i / (cuts + 1);
        match ingest_bytes("cut.bag", &bytes[..cut], &lake, &store, &rt) {
            Ok(report) => {
                assert!(report.messages_ingested <= full, "cut at {cut}: more messages than the bag holds");
                assert!(matches!(report.index, IndexState::Scanned(_)), "cut at {cut}: the index cannot be intact");
                if report.messages_ingested > 0 {
                    recovered_some += 1;
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("cut.bag"), "error names the file: {msg}");
            }
        }
    }
    assert!(recovered_some > cuts / 2, "most cuts recover messages ({recovered_some}/{cuts})");
}

#[test]
fn truncated_uncompressed_bag_is_salvaged() {
    truncations_never_panic(&manifest_dir().join("sample-bags/drive_c.bag"), 40);
}

#[test]
fn truncated_bz2_bag_is_salvaged() {
    truncations_never_panic(&manifest_dir().join("sample-bags/drive_a.bag"), 25);
}

#[test]
fn truncated_lz4_bag_is_salvaged() {
    truncations_never_panic(&manifest_dir().join("sample-bags/drive_d.bag"), 25);
}

#[test]
fn cut_inside_the_index_keeps_every_message() {
    let path = manifest_dir().join("sample-bags/drive_c.bag");
    let bytes = std::fs::read(&path).unwrap();
    let bag = Bag::open(&path).unwrap();
    let full = bag.message_count();
    let last_chunk_end = bag.chunks.iter().map(|c| c.data_end).max().unwrap();
    // Cut after all chunks but inside the index section (index data + index records).
    let cut = (last_chunk_end + bytes.len()) / 2;
    let torn = Bag::from_bytes("torn.bag", bytes[..cut].to_vec()).unwrap();
    assert!(!torn.is_indexed());
    assert_eq!(torn.message_count(), full, "every message is recovered by the scan");
}

#[test]
fn unindexed_bag_is_scanned_and_complete() {
    let path = manifest_dir().join("sample-bags/drive_d.bag");
    let mut bytes = std::fs::read(&path).unwrap();
    let full = Bag::open(&path).unwrap().message_count();
    // Zero index_pos in the bag header, as a bag still being recorded has it.
    let needle = b"index_pos=";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    bytes[at..at + 8].fill(0);
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(lake_dir.path().to_str().unwrap()).unwrap();
    let store = SqliteStore::open(&lake.metadata_file().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = ingest_bytes("active.bag", &bytes, &lake, &store, &rt).unwrap();
    assert!(matches!(report.index, IndexState::Scanned(ref r) if r.contains("index_pos is 0")));
    assert_eq!(report.messages_ingested, full);
    let info = scenes::info::summarize(&Bag::from_bytes("active.bag", bytes).unwrap());
    assert_eq!(info.messages, full, "info counts by scanning");
}

#[test]
fn non_bags_get_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("old.bag", b"#ROSBAG V1.2\nrest of an old bag", "V1.2"),
        ("text.bag", b"hello, I am not a bag", "not a ROS bag"),
        ("empty.bag", b"", "not a ROS bag"),
        ("header_only.bag", b"#ROSBAG V2.0\n\x05\x00", "bag header"),
        ("encrypted.bag", &encrypted_bag(), "encrypted"),
    ];
    for (name, bytes, expect) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for cmd in ["info", "ingest"] {
            let lake = dir.path().join("lake");
            let out = if cmd == "info" {
                scenes(&["info", path.to_str().unwrap()])
            } else {
                scenes(&["ingest", "--lake", lake.to_str().unwrap(), path.to_str().unwrap()])
            };
            assert_no_panic(&out, name);
            assert_eq!(out.status.code(), Some(1), "{cmd} {name}");
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("");
            assert!(first.contains(name) && first.contains(expect), "{cmd} {name}: {err}");
        }
    }
}

fn encrypted_bag() -> Vec<u8> {
    use scenes::bag::record::{push_field, push_record};
    let mut header = Vec::new();
    push_field(&mut header, "op", &[3]);
    push_field(&mut header, "index_pos", &0u64.to_le_bytes());
    push_field(&mut header, "conn_count", &0u32.to_le_bytes());
    push_field(&mut header, "chunk_count", &0u32.to_le_bytes());
    push_field(&mut header, "encryptor", b"rosbag/AesCbcEncryptor");
    let mut bytes = b"#ROSBAG V2.0\n".to_vec();
    push_record(&mut bytes, &header, b"    ");
    bytes
}

/// Output that cannot be written (a full disk behind a redirect: `/dev/full`) is a one-line
/// error, not a panic; a reader that closes the pipe early ends the run quietly.
#[test]
fn unwritable_stdout_is_an_error_not_a_panic() {
    let bag = manifest_dir().join("sample-bags/drive_a.bag");
    let full = std::fs::File::options().write(true).open("/dev/full").unwrap();
    let out = scenes_command(&[]).args(["info", bag.to_str().unwrap()]).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_no_panic(&out, "info > /dev/full");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to standard output") && err.contains("No space left"), "{err}");

    let mut child = scenes_command(&[])
        .args(["info", bag.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().unwrap();
    assert_no_panic(&out, "info | (closed)");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
