//! Person-in-lane scenes on every sample drive equal its ground truth (start and end to the
//! tick) under the default rule; the reference rule, kept for parity, differs on them because
//! of the sidewalk walker beside the right adjacent lane line.

use crate::common::*;
use scenes::detect::{detect_bag, DetectConfig};
use scenes::lake::Lake;
use scenes::sync::{sync_bag, SyncOptions};

#[test]
fn sample_drives_give_their_ground_truth_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let out = scenes(&["ingest", "-q", "--lake", lake_dir.to_str().unwrap(), manifest_dir().join("sample-bags").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut reference_total = 0;
    let mut truth_total = 0;
    for bag in sample_bags() {
        let name = scenes::lake::bag_name(&bag);
        let truth: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(bag.with_file_name(format!("{name}.ground_truth.json"))).unwrap(),
        )
        .unwrap();
        let key = key_of(&bag);
        rt.block_on(sync_bag(&lake, &key, &SyncOptions::default())).unwrap();
        let (found, reference) = rt.block_on(detect_bag(&lake, &key, &DetectConfig::default())).unwrap().unwrap();
        let expected: Vec<(i64, i64, u32)> = truth["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["start_time_ns"].as_i64().unwrap(), s["end_time_ns"].as_i64().unwrap(), s["max_people_in_scene"].as_u64().unwrap() as u32))
            .collect();
        let got: Vec<(i64, i64, u32)> = found.iter().map(|s| (s.start_time_ns, s.end_time_ns.unwrap(), s.max_people_in_scene)).collect();
        assert_eq!(got, expected, "{name}: scenes under the default rule");
        // The lane topic also says which lines bound the ego lane: using that role field instead
        // of ego_x gives the same scenes.
        let by_role = DetectConfig { lane_role_field: Some("role".into()), ..DetectConfig::default() };
        let (role_found, _) = rt.block_on(detect_bag(&lake, &key, &by_role)).unwrap().unwrap();
        let role_got: Vec<(i64, i64, u32)> = role_found.iter().map(|s| (s.start_time_ns, s.end_time_ns.unwrap(), s.max_people_in_scene)).collect();
        assert_eq!(role_got, expected, "{name}: scenes with the lane role field");
        assert!(found.iter().all(|s| !s.open_at_start && !s.open_at_end));
        reference_total += reference.len();
        truth_total += expected.len();
        println!("{name}: ground truth {} scenes, ego_footprint {}, reference {}", expected.len(), found.len(), reference.len());
    }
    assert_ne!(reference_total, truth_total, "the reference rule must differ on the sample drives");
}

/// The `ego_footprint` quality of `detect --report --json` per bag, under `config` (a file).
fn report_quality(lake: &std::path::Path, config: Option<&std::path::Path>) -> Vec<serde_json::Value> {
    let l = lake.to_str().unwrap();
    let mut args = vec!["detect", "--report", "--json", "--lake", l];
    let c;
    if let Some(path) = config {
        c = path.to_str().unwrap().to_string();
        args.splice(0..0, ["--config", c.as_str()]);
    }
    let reports: serde_json::Value = serde_json::from_str(&run_ok(&args)).unwrap();
    reports.as_array().unwrap().iter().map(|r| r["quality"]["ego_footprint"].clone()).collect()
}

#[test]
fn scenes_survive_missed_detections_and_lane_dropouts_under_the_default_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("flicker.bag");
    // Ten minutes; the detector misses 10 % of the in-lane person's detections and 5 % of the
    // lane messages lack the right line of the ego lane. The ground truth is the real episodes.
    run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "600", "--seed", "3", "--missed-detections", "0.1", "--lane-dropouts", "0.05"]);
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, bag.to_str().unwrap()]);
    run_ok(&["sync", "-q", "--lake", l]);

    let robust = report_quality(&lake, None);
    let q = &robust[0];
    println!("default: {q}");
    assert!(q["truth"].as_u64().unwrap() >= 30, "{q}");
    assert!(q["precision"].as_f64().unwrap() >= 0.95, "{q}");
    assert!(q["recall"].as_f64().unwrap() >= 0.95, "{q}");

    // The replaced pipeline's semantics, one setting away, split episodes at every miss.
    let reference = dir.path().join("reference.json");
    std::fs::write(&reference, r#"{"detect": {"max_gap_ms": 0}}"#).unwrap();
    let split = report_quality(&lake, Some(&reference));
    let q = &split[0];
    println!("max_gap_ms 0: {q}");
    assert!(q["precision"].as_f64().unwrap() < 0.5, "{q}");
    assert!(q["found"].as_u64().unwrap() > 2 * q["truth"].as_u64().unwrap(), "{q}");
}

#[test]
fn every_scenario_rule_finds_the_generated_events_of_a_30_minute_drive() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("drive30.bag");
    let out = run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "1800", "--seed", "5"]);
    println!("{out}");
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, bag.to_str().unwrap()]);
    run_ok(&["sync", "-q", "--lake", l]);
    let reports: serde_json::Value = serde_json::from_str(&run_ok(&["detect", "--report", "--json", "--lake", l])).unwrap();
    let quality = &reports[0]["quality"];
    println!("{quality}");
    assert!(quality["ego_footprint"]["precision"].as_f64().unwrap() >= 0.95, "{quality}");
    assert!(quality["ego_footprint"]["recall"].as_f64().unwrap() >= 0.95, "{quality}");
    for name in ["HardBraking", "Stopped", "HighYawRate"] {
        let q = &quality["scenarios"][name];
        assert!(q["truth"].as_u64().unwrap() >= 10, "{name}: {q}");
        assert!(q["precision"].as_f64().unwrap() >= 0.95, "{name}: {q}");
        assert!(q["recall"].as_f64().unwrap() >= 0.95, "{name}: {q}");
    }
    // Every rule's scenes are in the scenes table under their scenario, with ids naming it.
    let per_scenario = run_ok(&["query", "--lake", l, "--format", "csv", "SELECT scenario, count(*) AS n, sum(CASE WHEN scene_id LIKE '%\\_' || scenario || '\\_%' ESCAPE '\\' THEN 1 ELSE 0 END) AS named FROM scenes GROUP BY scenario ORDER BY scenario"]);
    let rows: Vec<&str> = per_scenario.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{per_scenario}");
    for row in rows {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[1], fields[2], "{row}");
        let name = fields[0];
        let expected = if name == "PersonInLane" { &quality["ego_footprint"]["found"] } else { &quality["scenarios"][name]["found"] };
        assert_eq!(fields[1], expected.to_string(), "{row}");
    }
    // And in the metadata store.
    let store = scenes::meta::sqlite::SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let stored = scenes::meta::MetaStore::list_scenes(&store).unwrap();
    assert!(stored.iter().any(|s| s.scenario == "HardBraking" && s.scene_id.contains("_HardBraking_")));
}

#[test]
fn a_rule_that_does_not_plan_stops_detect_before_any_table_changes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, manifest_dir().join("sample-bags/drive_c.bag").to_str().unwrap()]);
    run_ok(&["batch", "-q", "--all", "--lake", l]);
    let log = lake.join("scenes/_delta_log");
    let versions = || std::fs::read_dir(&log).unwrap().count();
    let before = versions();
    for (rule, says) in [("nosuch_topic['x'] > 1", "nosuch_topic"), ("speed >>> 3 (", "ParserError")] {
        let config = dir.path().join("bad.json");
        std::fs::write(&config, serde_json::json!({"detect": {"scenarios": [{"name": "PersonInLane", "when": "num_people_in_lane > 0"}, {"name": "Broken", "when": rule}]}}).to_string()).unwrap();
        let err = run_exit(&["--config", config.to_str().unwrap(), "detect", "--lake", l], 1);
        assert!(err.contains("detect.scenarios 'Broken'") && err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(versions(), before, "no commit to the scenes table");
}
