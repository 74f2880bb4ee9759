//! `scenes clip`: a clip holds exactly its source's messages in the window, bytes unchanged,
//! plus the last earlier message of each latched or static topic — checked by independent
//! readers (Python `rosbags` for bags, `mcap` for MCAP files: tests/py/check_clip.py); missing
//! scenes, windows outside the bag and bags gone from their source are one line each, and the
//! other clips are still written. The S3 case is in `aws_s3.rs`.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Checks `clip` against `source` over `[from_ns, to_ns]` with the configured latched topics.
pub fn check_clip(source: &Path, clip: &Path, from_ns: u64, to_ns: u64) -> serde_json::Value {
    let patterns = ["/tf_static", "*camera_info", "/map", "*/map", "*map_metadata"];
    let out = Command::new(python())
        .arg(py_script("check_clip.py"))
        .args([source.to_str().unwrap(), clip.to_str().unwrap(), &from_ns.to_string(), &to_ns.to_string()])
        .args(patterns)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn scene_clips_hold_the_sources_window_and_bad_requests_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Copies, so that one can be gone from its source later.
    for name in ["drive_b", "drive_c"] {
        std::fs::copy(manifest_dir().join(format!("sample-bags/{name}.bag")), dir.path().join(format!("{name}.bag"))).unwrap();
    }
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, dir.path().join("drive_b.bag").to_str().unwrap(), dir.path().join("drive_c.bag").to_str().unwrap()]);
    run_ok(&["batch", "-q", "--all", "--lake", l]);
    let first_scene = |bag: &str| {
        let csv = run_ok(&["query", "--lake", l, "--format", "csv", &format!("SELECT scene_id FROM scene_bags WHERE bag_name = '{bag}' ORDER BY start_time LIMIT 1")]);
        csv.lines().nth(1).unwrap().to_string()
    };
    let (b_scene, c_scene) = (first_scene("drive_b"), first_scene("drive_c"));
    std::fs::remove_file(dir.path().join("drive_c.bag")).unwrap();

    let clips = dir.path().join("clips");
    let b_bag = dir.path().join("drive_b.bag");
    let args = [
        "--json", "clip", "--lake", l, "--out", clips.to_str().unwrap(), &b_scene, "no_such_scene", &c_scene,
        "--bag", b_bag.to_str().unwrap(), "--from", "1000", "--to", "1001",
    ];
    let out = scenes(&args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&args, &out));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "one line per failed clip: {err}");
    assert!(lines.iter().any(|l| l.contains("no_such_scene") && l.contains("no such scene")), "{err}");
    assert!(lines.iter().any(|l| l.contains(&c_scene) && l.contains("gone from its source")), "{err}");
    assert!(lines.iter().any(|l| l.contains("is outside the bag")), "{err}");

    let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written.as_array().unwrap().len(), 1, "{written}");
    let clip = &written[0];
    assert_eq!(clip["format"], "bag");
    let (from, to) = (clip["from_ns"].as_u64().unwrap(), clip["to_ns"].as_u64().unwrap());
    let clip_path = Path::new(clip["location"].as_str().unwrap()).to_path_buf();
    assert_eq!(clip_path, clips.join(format!("{b_scene}.bag")));
    let checked = check_clip(&dir.path().join("drive_b.bag"), &clip_path, from, to);
    println!("{checked}");
    assert!(checked["messages"].as_u64().unwrap() > 100, "{checked}");
    assert!(clip["chunks_read"].as_u64().unwrap() < clip["chunks_total"].as_u64().unwrap(), "only the window's chunks: {clip}");

    // The same scene as MCAP, checked by the mcap reader.
    let mcap: serde_json::Value =
        serde_json::from_str(&run_ok(&["--json", "clip", "--lake", l, "--out", clips.to_str().unwrap(), "--format", "mcap", "--pad-s", "0.5", &b_scene])).unwrap();
    let mcap = &mcap[0];
    let checked = check_clip(&dir.path().join("drive_b.bag"), Path::new(mcap["location"].as_str().unwrap()), mcap["from_ns"].as_u64().unwrap(), mcap["to_ns"].as_u64().unwrap());
    assert_eq!(checked["equal"], true, "{checked}");
    assert_eq!(mcap["from_ns"].as_u64().unwrap(), from + 1_500_000_000, "--pad-s 0.5 instead of 2");
}

#[test]
fn latched_and_static_topics_bring_their_last_message_from_before_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("latched.bag");
    let t0: u64 = 1_700_000_000_000_000_000;
    let made = Command::new(python()).arg(py_script("make_latched_bag.py")).arg(&bag).arg(t0.to_string()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let lake = dir.path().join("lake");
    let clips = dir.path().join("clips");
    for format in ["bag", "mcap"] {
        let out = run_ok(&[
            "--json", "clip", "--lake", lake.to_str().unwrap(), "--out", clips.to_str().unwrap(), "--format", format,
            "--bag", bag.to_str().unwrap(), "--from", "1700000010", "--to", "2023-11-14T22:13:32Z",
        ]);
        let clip: serde_json::Value = serde_json::from_str(&out).unwrap();
        let clip = &clip[0];
        assert_eq!(clip["latched"], 3, "{clip}");
        let checked = check_clip(&bag, Path::new(clip["location"].as_str().unwrap()), t0 + 10_000_000_000, t0 + 12_000_000_000);
        assert_eq!(checked["latched"], serde_json::json!(["/camera/front/camera_info", "/map", "/tf_static"]), "{checked}");
        assert_eq!(checked["messages"], 20 + 3, "{checked}");
    }
}

#[test]
fn an_mcap_recording_is_clipped_as_mcap_and_a_ros1_bag_of_it_is_refused() {
    let Some(shared) = required_shared_bags() else { return };
    let source = shared.join("rosbag2_multiple_files_0.mcap");
    let dir = tempfile::tempdir().unwrap();
    let (lake, clips) = (dir.path().join("lake"), dir.path().join("clips"));
    let window = ["--bag", source.to_str().unwrap(), "--from", "1616653333.5", "--to", "1616653334.5"];
    let base = ["--json", "clip", "--lake", lake.to_str().unwrap(), "--out", clips.to_str().unwrap()];
    let clip: serde_json::Value = serde_json::from_str(&run_ok(&[&base[..], &window[..]].concat())).unwrap();
    assert_eq!(clip[0]["format"], "mcap", "the source's format: {clip}");
    let checked = check_clip(&source, Path::new(clip[0]["location"].as_str().unwrap()), 1_616_653_333_500_000_000, 1_616_653_334_500_000_000);
    assert!(checked["messages"].as_u64().unwrap() > 100, "{checked}");
    let err = run_exit(&[&base[..], &["--format", "bag"], &window[..]].concat(), 1);
    assert!(err.contains("ROS 2 (CDR) messages") && err.contains("--format mcap"), "{err}");
}
