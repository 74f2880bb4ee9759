//! rosbag2 recordings as people have them: folders of `.db3` or MCAP splits, zstd per file or
//! per message, `.db3` files without message definitions (before ROS 2 Iron), lone `.db3` files.
//! Each is one bag, checked against independent readers (tests/py/compare_rosbag2.py: Python
//! `rosbags`, SQLite, `mcap-ros2-support`) field by field; the recordings come from the rosbag2
//! project (../shared/bags/rosbag2) and from `rosbags`' writer (tests/py/make_rosbag2_fixtures.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use serde_json::Value;

/// `.msg` files of the types the recordings name without defining (test_msgs, std_msgs).
fn fixture_msgs() -> PathBuf {
    manifest_dir().join("tests/fixtures/msg")
}

/// Ingests `recording` into a fresh lake with `msg_dirs` as the message path and compares it
/// with the independent readers. Returns the ingest report and one line per topic.
fn ingest_and_compare(recording: &Path, msg_dirs: &[&Path]) -> (Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut extra = Vec::new();
    for d in msg_dirs {
        extra.push("--msg-path");
        extra.push(d.to_str().unwrap());
    }
    let report = ingest_json(recording, &lake, &extra);
    let report_path = dir.path().join("report.json");
    std::fs::write(&report_path, report.to_string()).unwrap();
    let out = Command::new(python())
        .current_dir(manifest_dir().join("tests/py"))
        .arg("compare_rosbag2.py")
        .arg(recording)
        .arg(&lake)
        .arg(&report_path)
        .args(msg_dirs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}: comparison failed:\n{stdout}\n{}", recording.display(), String::from_utf8_lossy(&out.stderr));
    (report, stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect())
}

/// Rows of the evidence table: topics, messages ingested, messages the reference reads,
/// messages SQLite counts, result.
fn table_row(name: &str, checks: &[Value]) -> String {
    let sum = |key: &str| checks.iter().filter_map(|c| c[key].as_u64()).sum::<u64>();
    let sqlite = if checks.iter().all(|c| c["sqlite"].is_null()) { "—".to_string() } else { sum("sqlite").to_string() };
    let reader = checks.first().and_then(|c| c["reader"].as_str()).unwrap_or("");
    let all_ok = checks.iter().all(|c| c["status"] == "ok");
    let result = if all_ok { "every field equal".to_string() } else { checks.iter().map(|c| format!("{}: {}", c["topic"], c["status"])).collect::<Vec<_>>().join("; ") };
    format!("| {name} | {} | {} | {} ({reader}) | {sqlite} | {result} |\n", checks.len(), sum("ours"), sum("reference"))
}

fn write_evidence(file: &str, table: &str) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
    std::fs::write(&out, table).unwrap();
    println!("{table}");
}

#[test]
fn shared_rosbag2_recordings_are_one_bag_each_and_match_the_independent_readers() {
    let Some(shared) = required_shared_bags() else {
        return;
    };
    let dir = shared.join("rosbag2");
    let inventory: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("INVENTORY.json")).unwrap()).unwrap();
    let mut table = String::from("| recording | topics | messages ingested | messages the reference reads | SQLite counts | result |\n|---|---|---|---|---|---|\n");
    for entry in inventory.as_array().unwrap() {
        let name = entry["folder"].as_str().unwrap();
        let (report, checks) = ingest_and_compare(&dir.join(name), &[&fixture_msgs()]);
        let ingested = report["ingested"].as_array().unwrap();
        assert_eq!(ingested.len(), 1, "{name}: one bag");
        assert_eq!(ingested[0]["bag_name"], name);
        for check in &checks {
            assert_eq!(check["status"], "ok", "{name}: {check}");
            let topic = check["topic"].as_str().unwrap();
            assert_eq!(check["ours"], entry["topics"][topic]["count"], "{name} {topic}: the inventory's count");
        }
        assert_eq!(checks.len(), entry["topics"].as_object().unwrap().len(), "{name}: every topic, also those without messages");
        table.push_str(&table_row(name, &checks));
    }
    write_evidence("rosbag2-shared.md", &table);
}

/// Recordings written by `rosbags` (see tests/py/make_rosbag2_fixtures.py) in `dir`.
fn generated_recordings(dir: &Path) -> PathBuf {
    let out = dir.join("rosbag2");
    let status = Command::new(python()).arg(py_script("make_rosbag2_fixtures.py")).arg(&out).output().unwrap();
    assert!(status.status.success(), "make_rosbag2_fixtures.py: {}", String::from_utf8_lossy(&status.stderr));
    out
}

#[test]
fn generated_rosbag2_recordings_split_compressed_with_and_without_definitions_and_with_idl_match_rosbags() {
    let dir = tempfile::tempdir().unwrap();
    let out = generated_recordings(dir.path());
    let msgs = out.join("msg");
    let mut table = String::from("| recording | topics | messages ingested | messages the reference reads | SQLite counts | result |\n|---|---|---|---|---|---|\n");
    let cases = [
        ("sqlite_defs", 60),
        ("sqlite_nodefs", 60),
        ("sqlite_split", 120),
        ("sqlite_zstd_file", 60),
        ("sqlite_zstd_msg", 60),
        ("mcap_split", 120),
        ("mcap_idl", 60),
        ("lone.db3", 60),
    ];
    for (name, messages) in cases {
        let (report, checks) = ingest_and_compare(&out.join(name), &[&msgs, &fixture_msgs()]);
        let ingested = report["ingested"].as_array().unwrap();
        assert_eq!(ingested.len(), 1, "{name}: one bag");
        assert_eq!(ingested[0]["bag_name"], name.trim_end_matches(".db3"));
        assert_eq!(checks.len(), 3, "{name}: /sample, /chatter and the silent topic");
        for check in &checks {
            assert_eq!(check["status"], "ok", "{name}: {check}");
        }
        assert_eq!(checks.iter().map(|c| c["ours"].as_u64().unwrap()).sum::<u64>(), messages, "{name}");
        table.push_str(&table_row(name, &checks));
    }
    write_evidence("rosbag2-generated.md", &table);
}

#[test]
fn a_type_without_a_definition_is_kept_raw_named_and_the_other_topics_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let out = generated_recordings(dir.path());
    // std_msgs/String is on the path; fixture_msgs/Sample needs std_msgs/Header, which is not.
    let partial = dir.path().join("partial");
    std::fs::create_dir_all(partial.join("std_msgs/msg")).unwrap();
    std::fs::copy(fixture_msgs().join("std_msgs/msg/String.msg"), partial.join("std_msgs/msg/String.msg")).unwrap();
    let (report, checks) = ingest_and_compare(&out.join("sqlite_nodefs"), &[&out.join("msg"), &partial]);
    let status = |topic: &str| checks.iter().find(|c| c["topic"] == topic).map(|c| c["status"].as_str().unwrap().to_string());
    assert_eq!(status("/chatter").as_deref(), Some("ok"), "{checks:?}");
    assert_eq!(status("/sample").as_deref(), Some("counts only"), "kept raw, every message: {checks:?}");
    let sample = report["ingested"][0]["topics"].as_array().unwrap().iter().find(|t| t["topic"] == "/sample").unwrap();
    assert_eq!(sample["messages_ingested"], 40);
    let error = sample["first_error"].as_str().unwrap();
    assert!(error.contains("std_msgs/msg/Header") && error.contains("--msg-path"), "names the missing type and what to do: {error}");
    // Every raw row says its type and why it is raw.
    let lake = dir.path().join("lake2");
    ingest_json(&out.join("sqlite_nodefs"), &lake, &["--msg-path", out.join("msg").to_str().unwrap(), "--msg-path", partial.to_str().unwrap()]);
    let sql = "SELECT _message_type, count(*) AS n, min(_decode_status) AS status FROM sample GROUP BY _message_type";
    let answer = run_ok(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", sql]);
    assert!(answer.contains("fixture_msgs/msg/Sample,40,") && answer.contains("std_msgs/msg/Header"), "{answer}");
}

#[test]
fn an_unchanged_recording_is_skipped_and_a_changed_split_ingested_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = generated_recordings(dir.path());
    let recording = out.join("sqlite_split");
    let lake = dir.path().join("lake");
    let (msgs, fixtures) = (out.join("msg"), fixture_msgs());
    let args = ["--msg-path", msgs.to_str().unwrap(), "--msg-path", fixtures.to_str().unwrap()];
    ingest_json(&recording, &lake, &args);
    let again = ingest_json(&recording, &lake, &args);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 1, "{again}");
    // Rewrite the second split (same content, new modification time).
    let split = recording.join("sqlite_split_1.db3");
    let bytes = std::fs::read(&split).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&split, bytes).unwrap();
    let changed = ingest_json(&recording, &lake, &args);
    assert_eq!(changed["ingested"].as_array().unwrap().len(), 1, "{changed}");
    assert_eq!(partition_rows(&lake.join("topics/sample"), "sqlite_split"), 80, "replaced, not added to");
}

#[test]
fn info_describes_a_rosbag2_folder_and_a_lone_db3() {
    let dir = tempfile::tempdir().unwrap();
    let out = generated_recordings(dir.path());
    for name in ["sqlite_split", "lone.db3"] {
        let text = run_ok(&["info", out.join(name).to_str().unwrap()]);
        assert!(text.contains("rosbag2") && text.contains("/sample") && text.contains("/chatter"), "{name}:\n{text}");
    }
}

#[test]
fn broken_recordings_are_refused_with_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let folder = dir.path().join("broken");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("metadata.yaml"), "rosbag2_bagfile_information:\n  relative_file_paths:\n    - gone_0.db3\n").unwrap();
    let stderr = run_exit(&["ingest", "--lake", lake.to_str().unwrap(), folder.to_str().unwrap()], 1);
    assert!(stderr.contains("metadata.yaml") && stderr.contains("gone_0.db3"), "{stderr}");
    std::fs::write(folder.join("metadata.yaml"), "rosbag2_bagfile_information: [not, a, map\n").unwrap();
    let stderr = run_exit(&["ingest", "--lake", lake.to_str().unwrap(), folder.to_str().unwrap()], 1);
    assert!(stderr.contains("metadata.yaml") && stderr.contains("not a rosbag2 metadata file"), "{stderr}");
    // A .db3 that is not a rosbag2 database.
    let db = dir.path().join("other.db3");
    std::fs::write(&db, b"SQLite format 3\0 and then nothing").unwrap();
    let stderr = run_exit(&["ingest", "--lake", lake.to_str().unwrap(), db.to_str().unwrap()], 1);
    assert!(stderr.contains("other.db3") && !stderr.contains("panicked"), "{stderr}");
}
