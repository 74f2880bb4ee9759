//! `scenes sync` on a sample drive: the tick range, inclusive latest-at semantics, ages, nulls
//! before a topic's first message, blob topics left out, and idempotent re-runs.

mod common;

use common::*;

fn csv(lake: &std::path::Path, sql: &str) -> String {
    let out = scenes(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", sql]);
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sync_puts_topics_on_the_100ms_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    for bag in ["drive_b", "drive_c"] {
        let path = manifest_dir().join(format!("sample-bags/{bag}.bag"));
        assert!(scenes(&["ingest", "-q", "--lake", l, path.to_str().unwrap()]).status.success());
    }
    let out = scenes(&["sync", "--lake", l]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // drive_c: 20 s; first message at +3 ms, last at +19.993 s → ticks 0..199 (exclusive).
    let stats = csv(
        &lake,
        "SELECT count(*) AS ticks, count(vehicle_gps_fix_age_ms) AS gps, min(vehicle_gps_fix_age_ms) AS gmin, \
         max(vehicle_gps_fix_age_ms) AS gmax, min(perception_rgb_front_detections_age_ms) AS dmin, \
         max(perception_rgb_front_detections_age_ms) AS dmax, max(imu_data_age_ms) AS imax \
         FROM synced WHERE bag_file = 'drive_c'",
    );
    assert_eq!(stats, "ticks,gps,gmin,gmax,dmin,dmax,imax\n199,198,50,50,80,80,7\n");
    // Every synced sample is at or before its tick (inclusive), never after.
    let after = csv(&lake, "SELECT count(*) AS n FROM synced WHERE imu_data['log_time'] > tick OR vehicle_twist['log_time'] > tick");
    assert_eq!(after, "n\n0\n");
    // Ticks are whole multiples of 100 ms.
    let odd = csv(&lake, "SELECT count(*) AS n FROM synced WHERE CAST(tick AS BIGINT) % 100000000 <> 0");
    assert_eq!(odd, "n\n0\n");
    // The image topic of drive_b stays out of the synced table.
    let cols = csv(&lake, "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'synced' AND column_name LIKE 'camera%'");
    assert_eq!(cols, "n\n0\n");
    // Re-running replaces, never duplicates.
    assert!(scenes(&["sync", "--lake", l, "--bag", "drive_c"]).status.success());
    let again = csv(&lake, "SELECT count(*) AS n FROM synced WHERE bag_file = 'drive_c'");
    assert_eq!(again, "n\n199\n");
}
