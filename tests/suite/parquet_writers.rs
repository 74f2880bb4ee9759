//! Both Parquet writers behind `lake::parquet` (`ingest.parquet_writer`: our fast column writer,
//! and the `parquet` crate's ArrowWriter) run the suite's table checks: every message of the
//! sample drives (and of every shared real bag) read back by Python rosbags field by field, and
//! the two lakes, ingested and batched, hold the same rows in every Delta table.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A config file choosing `writer`, in `dir`.
fn writer_config(dir: &Path, writer: &str) -> PathBuf {
    let path = dir.join(format!("config-{writer}.json"));
    std::fs::write(&path, format!(r#"{{"ingest": {{"parquet_writer": "{writer}"}}}}"#)).unwrap();
    path
}

/// Ingests and batches `bags` with `writer`; returns the lake.
fn build_lake(dir: &Path, writer: &str, bags: &[PathBuf]) -> PathBuf {
    let config = writer_config(dir, writer);
    let lake = dir.join(format!("lake-{writer}"));
    let mut args = vec!["--config", config.to_str().unwrap(), "ingest", "--lake", lake.to_str().unwrap()];
    args.extend(bags.iter().map(|b| b.to_str().unwrap()));
    run_ok(&args);
    run_ok(&["--config", config.to_str().unwrap(), "batch", "--all", "--lake", lake.to_str().unwrap()]);
    lake
}

#[test]
fn both_writers_give_lakes_with_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut bags = sample_bags();
    // Images and point clouds: the large binary columns take their own storage path.
    let sensors = dir.path().join("sensors.bag");
    run_ok(&["generate", sensors.to_str().unwrap(), "--duration-s", "5", "--image-bytes", "20000", "--lidar-points", "500"]);
    bags.push(sensors);
    let fast = lake_digest(&build_lake(dir.path(), "fast", &bags));
    let arrow = lake_digest(&build_lake(dir.path(), "arrow", &bags));
    let tables = fast.as_object().map(|t| t.len()).unwrap_or(0);
    assert!(tables >= 9, "topic tables plus synced, enriched and scenes: {fast}");
    assert_eq!(fast, arrow, "the two writers' lakes differ");
}

#[test]
fn rosbags_reads_what_the_arrow_writer_wrote_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = writer_config(dir.path(), "arrow");
    let mut bags = sample_bags();
    if let Some(shared) = required_shared_bags() {
        bags.extend(files_with_ext(&shared, "bag"));
    }
    let mut compared = 0;
    for bag in bags {
        let checks = differential_check_with(&bag, &["--config", config.to_str().unwrap()]);
        compared += checks.iter().map(|c| c.ours).sum::<u64>();
        for c in &checks {
            assert!(c.status == "ok" || c.status == "counts only", "{} {}: {} ({:?})", bag.display(), c.topic, c.status, c.detail);
            assert_eq!(c.ours, c.rosbags, "{} {}", bag.display(), c.topic);
        }
    }
    assert!(compared > 10_000, "only {compared} messages compared");
}

#[test]
fn an_unknown_writer_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = writer_config(dir.path(), "turbo");
    let bag = sample_bags().into_iter().next().unwrap();
    let stderr = run_exit(&["--config", config.to_str().unwrap(), "ingest", "--lake", dir.path().join("l").to_str().unwrap(), bag.to_str().unwrap()], 2);
    assert!(stderr.contains("ingest.parquet_writer") && stderr.contains("turbo"), "{stderr}");
}
