//! `scenes info` against the inventory of ../shared/bags (counts found there by an independent
//! reader) and on our sample bags, in text and JSON.

use crate::common::*;

#[test]
fn info_matches_the_independent_inventory_of_real_bags() {
    let Some(dir) = required_shared_bags() else {
        return;
    };
    let inventory: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("INVENTORY.json")).unwrap()).unwrap();
    let mut checked = 0;
    for item in inventory.as_array().unwrap() {
        if item["format"] != "ros1-bag" {
            continue;
        }
        let path = dir.join(item["file"].as_str().unwrap());
        let out = scenes(&["info", "--json", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let info = &info[0];
        let expected = &item["rosbags"];
        assert_eq!(info["messages"], expected["message_count"], "{}", path.display());
        assert_eq!(info["chunks"], item["chunk_count"], "{}", path.display());
        assert_eq!(info["connections"], item["conn_count"], "{}", path.display());
        assert_eq!(info["index"]["state"], "indexed");
        for (topic, t) in expected["topics"].as_object().unwrap() {
            let ours = info["topics"].as_array().unwrap().iter().find(|x| x["topic"] == topic.as_str()).unwrap();
            assert_eq!(ours["messages"], t["count"], "{} {topic}", path.display());
            assert_eq!(ours["msg_type"], t["type"], "{} {topic}", path.display());
            assert_eq!(ours["connections"], t["connections"], "{} {topic}", path.display());
        }
        for (compression, n) in item["chunk_compression"].as_object().unwrap() {
            assert_eq!(&info["compression"][compression], n, "{}", path.display());
        }
        if expected["message_count"].as_u64().unwrap() > 0 {
            assert_eq!(info["start_time_ns"], expected["start_ns"], "{}", path.display());
            assert_eq!(info["end_time_ns"].as_u64().unwrap() + 1, expected["end_ns"].as_u64().unwrap(), "{} (inventory end is exclusive)", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 15, "all ROS1 bags of the inventory were checked ({checked})");
}

#[test]
fn info_text_summarizes_a_sample_bag() {
    let bag = manifest_dir().join("sample-bags/drive_a.bag");
    let out = scenes(&["info", bag.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in ["messages:    10800", "compression: bz2", "/imu/data", "6000 msgs", "100.00 Hz", "sensor_msgs/Imu", "index:       ok"] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
