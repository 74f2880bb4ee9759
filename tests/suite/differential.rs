//! Differential decoding against Python `rosbags`, an independent ROS1 implementation: every
//! message of every bag is decoded by both and compared field by field (see
//! tests/py/compare_with_rosbags.py), and the Delta tables are read back by the `deltalake`
//! Python package and pyarrow.

use std::fmt::Write as _;
use std::path::Path;

use crate::common::*;

fn assert_all_match(bag: &Path, checks: &[TopicCheck]) {
    for c in checks {
        assert!(
            c.status == "ok" || c.status == "counts only",
            "{} {}: {} ({:?})",
            bag.display(),
            c.topic,
            c.status,
            c.detail
        );
        assert_eq!(c.ours, c.rosbags, "{} {}", bag.display(), c.topic);
    }
}

#[test]
fn shared_real_bags_decode_like_rosbags() {
    let Some(dir) = required_shared_bags() else {
        return;
    };
    let mut table = String::from("| bag | topics | messages ingested | messages rosbags counts | result |\n|---|---|---|---|---|\n");
    for bag in files_with_ext(&dir, "bag") {
        let checks = differential_check(&bag);
        assert_all_match(&bag, &checks);
        let ours: u64 = checks.iter().map(|c| c.ours).sum();
        let theirs: u64 = checks.iter().map(|c| c.rosbags).sum();
        let notes: Vec<&str> = checks.iter().filter_map(|c| c.detail.as_deref()).collect();
        let result = if notes.is_empty() { "all fields equal".to_string() } else { notes.join("; ") };
        let name = bag.file_name().unwrap().to_string_lossy();
        let _ = writeln!(table, "| {name} | {} | {ours} | {theirs} | {result} |", checks.len());
    }
    // Kept as evidence of the run (the closing notes quote it).
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-shared-bags.md");
    std::fs::write(&out, &table).unwrap();
    println!("{table}");
}

#[test]
fn sample_bags_we_wrote_are_read_identically_by_rosbags() {
    let bags = sample_bags();
    assert!(bags.len() >= 3, "sample-bags/ holds the generated drives");
    for bag in bags {
        let checks = differential_check(&bag);
        assert_all_match(&bag, &checks);
        assert!(checks.iter().all(|c| c.status == "ok"), "rosbags decodes all of {}", bag.display());
        assert!(checks.len() >= 5, "{} has all generated topics", bag.display());
    }
}

#[test]
fn bags_written_by_rosbags_decode_identically() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(python())
        .arg(py_script("make_rosbags_fixtures.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "fixture writer failed: {}", String::from_utf8_lossy(&out.stderr));
    let bags = files_with_ext(dir.path(), "bag");
    assert_eq!(bags.len(), 3, "none, bz2 and lz4 fixtures");
    for bag in bags {
        let checks = differential_check(&bag);
        assert_all_match(&bag, &checks);
        let total: u64 = checks.iter().map(|c| c.ours).sum();
        assert_eq!(total, 180, "{}: 60 messages on each of three topics", bag.display());
        // A message type without fields, nested alone and in fixed and variable arrays.
        assert!(checks.iter().any(|c| c.topic == "/holder" && c.status == "ok"), "{}: /holder decoded and equal", bag.display());
    }
}

#[test]
fn generated_camera_and_lidar_drive_decodes_like_rosbags() {
    // lz4 chunks are decompressed and their images copied; uncompressed chunks are read in place
    // and the image and point-cloud columns point into the mapped bag until written.
    for compression in ["lz4", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let bag = dir.path().join("sensors.bag");
        let out = scenes(&[
            "generate",
            bag.to_str().unwrap(),
            "--duration-s",
            "3",
            "--image-bytes",
            "2000",
            "--lidar-points",
            "500",
            "--compression",
            compression,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let checks = differential_check(&bag);
        assert_eq!(checks.len(), 7, "{compression}: 5 small topics + camera + lidar");
        for c in &checks {
            assert_eq!(c.status, "ok", "{compression}: {c:?}");
            assert_eq!(c.ours, c.rosbags);
        }
        let lidar = checks.iter().find(|c| c.topic == "/lidar/top/points").unwrap();
        assert_eq!(lidar.ours, 30, "{compression}: 10 Hz for 3 s");
    }
}
