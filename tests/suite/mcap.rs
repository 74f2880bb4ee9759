//! MCAP ingest (ROS 2 CDR and ROS1 profiles): every shared `.mcap` and MCAP files written by
//! independent writers (PyPI `mcap`, `mcap-ros2-support`) from sample drives are compared field by
//! field with independent decoders (`mcap-ros2-support`, `rosbags`); the ROS 2 version of a drive
//! gives the same scenes as the ROS1 bag; torn MCAP files never panic and report what they
//! recovered; a rosbag2 folder of MCAP splits is one bag with every split's messages.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use serde_json::Value;

/// Ingests `mcap` into a fresh lake and compares it with the reference decoders. Returns the
/// per-topic statuses.
fn compare_with_reference(mcap: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(mcap, &lake, &[]);
    let report_path = dir.path().join("report.json");
    std::fs::write(&report_path, report.to_string()).unwrap();
    let out = Command::new(python())
        .current_dir(manifest_dir().join("tests/py"))
        .arg("compare_mcap.py")
        .arg(mcap)
        .arg(&lake)
        .arg(&report_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}: comparison failed:\n{stdout}\n{}", mcap.display(), String::from_utf8_lossy(&out.stderr));
    stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// MCAP fixtures (ros2/, ros1/, unchunked/) written from `bag` by the Python writers.
fn fixtures(bag: &Path, out: &Path) -> [PathBuf; 3] {
    let status = Command::new(python())
        .current_dir(manifest_dir().join("tests/py"))
        .arg("make_mcap_fixtures.py")
        .arg(bag)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "make_mcap_fixtures.py {}", bag.display());
    let name = format!("{}.mcap", bag.file_stem().unwrap().to_string_lossy());
    ["ros2", "ros1", "unchunked"].map(|kind| out.join(kind).join(&name))
}

#[test]
fn shared_mcap_files_match_mcap_ros2_support() {
    let Some(dir) = required_shared_bags() else {
        return;
    };
    let files = files_with_ext(&dir, "mcap");
    assert!(files.len() >= 3);
    let mut decoded_and_equal = 0;
    for file in files {
        for check in compare_with_reference(&file) {
            let status = check["status"].as_str().unwrap();
            assert!(status == "ok" || status == "counts only", "{}: {check}", file.display());
            if status == "ok" && check["ours"].as_u64().unwrap() > 0 {
                decoded_and_equal += 1;
            }
        }
    }
    assert!(decoded_and_equal >= 4, "most shared topics are decoded and equal ({decoded_and_equal})");
}

#[test]
fn mcap_written_from_sample_drives_matches_the_references() {
    let dir = tempfile::tempdir().unwrap();
    for bag in ["sample-bags/drive_a.bag", "sample-bags/drive_c.bag"] {
        for mcap in fixtures(&manifest_dir().join(bag), dir.path()) {
            let checks = compare_with_reference(&mcap);
            assert_eq!(checks.len(), 5, "{}: five topics", mcap.display());
            for check in checks {
                assert_eq!(check["status"], "ok", "{}: {check}", mcap.display());
                assert!(check["ours"].as_u64().unwrap() > 0);
            }
        }
    }
}

/// Scenes as the metadata store has them, without the bag's path.
fn scenes_of(lake: &Path) -> Vec<Value> {
    use scenes::meta::MetaStore;
    let store = scenes::meta::sqlite::SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    store
        .list_scenes()
        .unwrap()
        .into_iter()
        .map(|mut s| {
            s.bag_file_prefix.clear();
            // Bags from different sources have different keys: compare by name.
            let name = scenes::lake::name_of_key(&s.bag_file).to_string();
            s.scene_id = s.scene_id.replacen(&s.bag_file, &name, 1);
            s.bag_file = name;
            serde_json::to_value(s).unwrap()
        })
        .collect()
}

#[test]
fn ros2_drive_gives_the_same_scenes_as_the_ros1_bag() {
    let dir = tempfile::tempdir().unwrap();
    for bag in ["sample-bags/drive_a.bag", "sample-bags/drive_d.bag"] {
        let bag = manifest_dir().join(bag);
        let [ros2, ros1_profile, _] = fixtures(&bag, &dir.path().join("fixtures"));
        let mut lakes = Vec::new();
        for (i, input) in [&bag, &ros2, &ros1_profile].iter().enumerate() {
            let lake = dir.path().join(format!("lake-{}-{i}", bag.file_stem().unwrap().to_string_lossy()));
            let l = lake.to_str().unwrap();
            let out = scenes(&["ingest", "--lake", l, input.to_str().unwrap()]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let out = scenes(&["batch", "--all", "--lake", l]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            lakes.push(lake);
        }
        let ros1_scenes = scenes_of(&lakes[0]);
        assert!(!ros1_scenes.is_empty(), "{}: the drive has person-in-lane scenes", bag.display());
        assert_eq!(scenes_of(&lakes[1]), ros1_scenes, "{}: ROS 2 MCAP scenes", bag.display());
        assert_eq!(scenes_of(&lakes[2]), ros1_scenes, "{}: ROS1-profile MCAP scenes", bag.display());
    }
}

#[test]
fn torn_mcap_never_panics_and_reports_what_it_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let [ros2, _, unchunked] = fixtures(&manifest_dir().join("sample-bags/drive_c.bag"), dir.path());
    for file in [ros2, unchunked] {
        let bytes = std::fs::read(&file).unwrap();
        let full = 3600u64; // 2000 IMU + 1000 twist + 3 × 200 at 10 Hz
        let mut previous = 0;
        let mut recovered_some = 0;
        let cuts = 12;
        for i in 1..=cuts {
            let cut = bytes.len() * i / (cuts + 1);
            let torn = dir.path().join(format!("torn-{i}.mcap"));
            std::fs::write(&torn, &bytes[..cut]).unwrap();
            let out = scenes(&["--json", "info", torn.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(out.status.success(), "{}: {stderr}", torn.display());
            let info: Value = serde_json::from_slice(&out.stdout).unwrap();
            let messages = info[0]["messages"].as_u64().unwrap();
            assert!(messages <= full);
            assert!(messages >= previous, "a longer prefix never recovers fewer messages");
            previous = messages;
            assert_eq!(info[0]["index"]["state"], "scanned", "a torn file has no footer");
            assert!(!info[0]["damage"]["problems"].as_array().unwrap().is_empty());
            let lake = dir.path().join(format!("lake-{i}"));
            let report = ingest_json(&torn, &lake, &[]);
            let ingested = report["ingested"][0]["messages_ingested"].as_u64().unwrap();
            assert_eq!(ingested, messages, "ingest keeps every message info counts");
            if ingested > 0 {
                recovered_some += 1;
            }
        }
        assert!(recovered_some >= cuts - 2, "{}: most cuts recover messages", file.display());
        assert!(previous > full / 2);
    }
}

#[test]
fn rosbag2_folder_of_mcap_splits_is_one_bag() {
    let dir = tempfile::tempdir().unwrap();
    let [ros2, _, _] = fixtures(&manifest_dir().join("sample-bags/drive_c.bag"), &dir.path().join("fixtures"));
    let folder = dir.path().join("rosbag2_drive");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&ros2, folder.join("rosbag2_drive_0.mcap")).unwrap();
    std::fs::copy(&ros2, folder.join("rosbag2_drive_1.mcap")).unwrap();
    // Without relative_file_paths (a hand-made folder) the splits are taken in split order.
    std::fs::write(folder.join("metadata.yaml"), "rosbag2_bagfile_information:\n  storage_identifier: mcap\n").unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(&folder, &lake, &[]);
    let ingested: Vec<&str> = report["ingested"].as_array().unwrap().iter().map(|r| r["bag_name"].as_str().unwrap()).collect();
    assert_eq!(ingested, ["rosbag2_drive"], "one recording, one bag");
    assert_eq!(partition_rows(&lake.join("topics/imu_data"), "rosbag2_drive"), 4000, "both splits' messages");
}
