//! Exit codes, decided by `main` alone: 0 every input done, 1 some input failed (the others are
//! done), 2 a usage or configuration error found before any work.

use crate::common::*;

#[test]
fn exit_code_0_when_every_bag_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let bag = sample_bags().into_iter().next().unwrap();
    run_exit(&["ingest", "--lake", dir.path().join("lake").to_str().unwrap(), bag.to_str().unwrap()], 0);
}

#[test]
fn exit_code_1_when_one_bag_fails_and_the_others_are_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let bag = sample_bags().into_iter().next().unwrap();
    let broken = dir.path().join("broken.bag");
    std::fs::write(&broken, b"#ROSBAG V2.0\nthis is not a bag header").unwrap();
    let lake = dir.path().join("lake");
    let stderr = run_exit(&["ingest", "--lake", lake.to_str().unwrap(), broken.to_str().unwrap(), bag.to_str().unwrap()], 1);
    assert!(stderr.contains("broken.bag") && stderr.contains("1 of 2 bags failed"), "{stderr}");
    let bags = run_ok(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", "SELECT bag_file FROM bags"]);
    assert_eq!(bags.lines().count(), 2, "the good bag is recorded: {bags}");
}

#[test]
fn exit_code_2_for_a_config_file_that_cannot_be_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"ingest": {"threds": 2}}"#).unwrap();
    let stderr = run_exit(&["--config", config.to_str().unwrap(), "info", "x.bag"], 2);
    assert!(stderr.contains("config.json") && stderr.contains("threds"), "{stderr}");
    std::fs::write(&config, "{ not json").unwrap();
    run_exit(&["--config", config.to_str().unwrap(), "info", "x.bag"], 2);
    run_exit(&["--config", dir.path().join("missing.json").to_str().unwrap(), "info", "x.bag"], 2);
}

#[test]
fn exit_code_2_for_bad_flags_and_arguments() {
    run_exit(&["ingest"], 2);
    run_exit(&["ingest", "a.bag", "--no-such-flag"], 2);
    let stderr = run_exit(&["split", "a.bag", "--max-duration=-3"], 2);
    assert!(stderr.contains("--max-duration"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_exit(&["query", "--lake", dir.path().join("none").to_str().unwrap(), "SELECT 1"], 2);
    assert!(stderr.contains("no lake here yet"), "{stderr}");
}
