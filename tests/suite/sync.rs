//! `scenes sync` on a sample drive: the tick range, inclusive latest-at semantics, ages, nulls
//! before a topic's first message, blob topics left out, and idempotent re-runs.

use crate::common::*;

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
         FROM synced JOIN bags USING (bag_file) WHERE bag_name = 'drive_c'",
    );
    assert_eq!(stats, "ticks,gps,gmin,gmax,dmin,dmax,imax\n199,198,50,50,80,80,7\n");
    // Every synced sample is at or before its tick (inclusive), never after.
    let after = csv(&lake, "SELECT count(*) AS n FROM synced WHERE imu_data['log_time'] > tick OR vehicle_twist['log_time'] > tick");
    assert_eq!(after, "n\n0\n");
    // Ticks are whole multiples of 100 ms, in exact nanoseconds and in the µs timestamp.
    let odd = csv(&lake, "SELECT count(*) AS n FROM synced WHERE tick_ns % 100000000 <> 0 OR CAST(tick AS BIGINT) * 1000 <> tick_ns");
    assert_eq!(odd, "n\n0\n");
    // The image topic of drive_b stays out of the synced table.
    let cols = csv(&lake, "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'synced' AND column_name LIKE 'camera%'");
    assert_eq!(cols, "n\n0\n");
    // Re-running replaces, never duplicates.
    assert!(scenes(&["sync", "--lake", l, "--bag", "drive_c"]).status.success());
    let again = csv(&lake, "SELECT count(*) AS n FROM synced JOIN bags USING (bag_file) WHERE bag_name = 'drive_c'");
    assert_eq!(again, "n\n199\n");
}

/// A stamped message: std_msgs/Header with the given stamp, then an int32.
fn stamped(seq: u32, stamp_ns: u64, value: i32) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    v.extend(((stamp_ns / 1_000_000_000) as u32).to_le_bytes());
    v.extend(((stamp_ns % 1_000_000_000) as u32).to_le_bytes());
    v.extend(0u32.to_le_bytes()); // empty frame_id
    v.extend(value.to_le_bytes());
    v
}

#[test]
fn header_stamp_time_source_and_staleness() {
    use scenes::bag::writer::{BagWriter, ConnectionSpec};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stamped.bag");
    let def = "Header header\nint32 value\n================\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n";
    let md5 = scenes::decode::Registry::parse("t/Stamped", def).unwrap().md5sum("t/Stamped").unwrap();
    let mut w = BagWriter::create(&path, scenes::bag::Compression::None).unwrap();
    let c = w.add_connection(ConnectionSpec {
        topic: "/stamped".into(),
        msg_type: "t/Stamped".into(),
        md5sum: md5,
        definition: def.into(),
        callerid: None,
        latching: false,
    });
    let base = 1_000_000_000_000u64; // 1000 s
    // Recorded 250 ms after their stamps, every 500 ms, for 3 s.
    for i in 0..6u64 {
        let stamp = base + i * 500_000_000;
        w.write(c, stamp + 250_000_000, &stamped(i as u32, stamp, i as i32)).unwrap();
    }
    w.finish().unwrap();
    let lake_dir = dir.path().join("lake");
    let out = scenes(&["ingest", "-q", "--lake", lake_dir.to_str().unwrap(), path.to_str().unwrap()]);
    assert!(out.status.success());
    let lake = scenes::lake::Lake::open(lake_dir.to_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = |opts: scenes::sync::SyncOptions| {
        let batch = rt.block_on(scenes::sync::synced_batch(&lake, &key_of(&path), &opts)).unwrap().unwrap();
        let ages = batch.column_by_name("stamped_age_ms").unwrap();
        let ages = ages.as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
        (0..ages.len()).map(|i| if ages.is_null(i) { None } else { Some(ages.value(i)) }).collect::<Vec<_>>()
    };
    use arrow::array::Array;
    // header_stamp: ticks 1000.0 .. 1002.4 (t_max = last stamp 1002.5 → exclusive).
    let by_stamp = run(scenes::sync::SyncOptions { time_source: scenes::sync::TimeSource::HeaderStamp, ..Default::default() });
    assert_eq!(by_stamp.len(), 25);
    assert_eq!(&by_stamp[..6], &[Some(0), Some(100), Some(200), Some(300), Some(400), Some(0)]);
    // log_time: everything 250 ms later, ticks 1000.2 .. 1002.6; the first tick has no message yet.
    let by_log = run(scenes::sync::SyncOptions::default());
    assert_eq!(by_log.len(), 25);
    assert_eq!(&by_log[..4], &[None, Some(50), Some(150), Some(250)]);
    // Staleness 200 ms: older samples become null.
    let stale = run(scenes::sync::SyncOptions {
        time_source: scenes::sync::TimeSource::HeaderStamp,
        max_staleness_ns: Some(200_000_000),
        ..Default::default()
    });
    assert_eq!(&stale[..6], &[Some(0), Some(100), Some(200), None, None, Some(0)]);
}
