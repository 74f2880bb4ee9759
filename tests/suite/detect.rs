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
