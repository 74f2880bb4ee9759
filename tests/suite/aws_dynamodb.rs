//! The DynamoDB metadata store against AWS's DynamoDB Local (started by `tests/run.sh` on
//! 127.0.0.1): the store contract, conditional claims from concurrent processes, abandoned
//! batches, the reference item layout, and `scenes batch` end to end through a proxy that
//! injects 500/503/throttling answers and partial BatchWriteItem results — the scenes must equal
//! those of a local run.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::aws::{dynamo_settings, start_proxy, unique_id, write_aws_config};
use crate::common::*;
use scenes::meta::dynamo::{DynamoSettings, DynamoStore};
use scenes::meta::{BagRecord, MetaStore, SceneRecord, TopicRecord};

fn endpoint() -> Option<String> {
    let endpoint = std::env::var("SCENES_TEST_DYNAMODB_ENDPOINT").ok();
    require("DynamoDB Local (SCENES_TEST_DYNAMODB_ENDPOINT; bash tests/run.sh starts it)", endpoint.is_some()).then_some(endpoint).flatten()
}

fn settings(endpoint: &str) -> DynamoSettings {
    dynamo_settings(&format!("t{}", unique_id()), endpoint)
}

fn store(settings: &DynamoSettings) -> DynamoStore {
    let store = DynamoStore::connect(settings.clone()).unwrap();
    store.create_missing_tables().unwrap();
    store
}

fn bag(i: usize) -> BagRecord {
    BagRecord {
        bag_file_prefix: format!("drives/2026-11-19/bag{i}.bag"),
        bag_file: format!("bag{i}"),
        bag_name: format!("bag{i}"),
        source_uri: Some(format!("s3://ingest-bucket/drives/2026-11-19/bag{i}.bag")),
        bag_file_bucket: Some("ingest-bucket".into()),
        size_bytes: 1000 + i as u64,
        start_time_ns: Some(1),
        end_time_ns: Some(2),
        message_count: 10,
        status: "ingested".into(),
        ingest_seconds: 0.5,
        ingested_at: "2026-11-25T00:00:00Z".into(),
        source_version: None,
        lake: None,
        topics: BTreeMap::from([(
            "/imu/data".to_string(),
            TopicRecord {
                msg_type: "sensor_msgs/Imu".into(),
                message_count: 10,
                frequency_hz: Some(100.0),
                tables: vec!["imu_data".into()],
                messages_ingested: 10,
                decode_errors: 0,
            },
        )]),
    }
}

fn scene(bag: &str, start: f64) -> SceneRecord {
    SceneRecord {
        bag_file: bag.into(),
        scene_id: format!("{bag}_PersonInLane_{start}"),
        scenario: "PersonInLane".into(),
        bag_file_prefix: format!("drives/{bag}.bag"),
        bag_file_bucket: None,
        start_time: start,
        end_time: Some(start + 1.5),
        scene_length: Some(1.5),
        num_people_in_scene_start: 1,
        max_people_in_scene: 2,
        topics_analyzed: "detections,lanes".into(),
        rule: "ego_footprint".into(),
        open_at_start: false,
        open_at_end: false,
        ego_speed_min: Some(3.0),
        ego_speed_max: None,
    }
}

#[test]
fn store_contract_on_dynamodb_local() {
    let Some(endpoint) = endpoint() else { return };
    let settings = settings(&endpoint);
    let store = store(&settings);
    assert!(store.create_missing_tables().unwrap().is_empty(), "a second init creates nothing");
    for i in 0..3 {
        store.put_bag(&bag(i)).unwrap();
    }
    assert_eq!(store.get_bag("drives/2026-11-19/bag1.bag").unwrap(), Some(bag(1)));
    assert_eq!(store.get_bag("nope").unwrap(), None);
    assert_eq!(store.list_bags().unwrap(), vec![bag(0), bag(1), bag(2)]);

    // Scenes: a replace removes the scenes that are gone (27 scenes: more than one BatchWriteItem).
    let many: Vec<SceneRecord> = (0..27).map(|k| scene("bag0", 1000.0 + k as f64)).collect();
    store.replace_scenes("bag0", &many).unwrap();
    store.replace_scenes("bag1", &[scene("bag1", 5.0)]).unwrap();
    assert_eq!(store.list_scenes().unwrap().len(), 28);
    store.replace_scenes("bag0", &many[..2]).unwrap();
    let scenes = store.list_scenes().unwrap();
    assert_eq!(scenes.len(), 3);
    assert_eq!(scenes[0], many[0]);

    // Claims: full batches only, then the partial last one.
    let lease = Duration::from_secs(3600);
    let first = store.claim_batch(2, false, lease).unwrap().expect("two bags wait");
    assert_eq!(first.bags.len(), 2);
    assert!(store.claim_batch(2, false, lease).unwrap().is_none(), "one bag left: no full batch");
    let mut last = store.claim_batch(2, true, lease).unwrap().expect("the partial batch");
    assert_eq!(last.bags.len(), 1);
    assert!(store.claim_batch(2, true, lease).unwrap().is_none());
    last.status = "done".into();
    store.finish_batch(&last).unwrap();
    let statuses: Vec<String> = store.list_batches().unwrap().into_iter().map(|b| b.status).collect();
    assert!(statuses.contains(&"done".to_string()) && statuses.contains(&"running".to_string()), "{statuses:?}");

    // A re-ingested bag waits again.
    store.put_bag(&bag(2)).unwrap();
    let again = store.claim_batch(2, true, lease).unwrap().expect("re-ingested bag is claimable");
    assert_eq!(again.bags, vec!["drives/2026-11-19/bag2.bag".to_string()]);
}

#[test]
fn concurrent_claims_never_take_a_bag_twice() {
    let Some(endpoint) = endpoint() else { return };
    let settings = settings(&endpoint);
    let setup = store(&settings);
    for i in 0..10 {
        setup.put_bag(&bag(i)).unwrap();
    }
    let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let settings = settings.clone();
                scope.spawn(move || {
                    let store = DynamoStore::connect(settings).unwrap();
                    let mut mine = Vec::new();
                    while let Some(batch) = store.claim_batch(1, true, Duration::from_secs(3600)).unwrap() {
                        mine.extend(batch.bags);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<String> = claimed.into_iter().flatten().collect();
    all.sort();
    let expected: Vec<String> = (0..10).map(|i| bag(i).bag_file_prefix).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    assert_eq!(all, expected, "every bag claimed exactly once");
}

#[test]
fn batch_of_a_dead_process_is_abandoned_and_its_bags_reclaimed() {
    let Some(endpoint) = endpoint() else { return };
    let settings = settings(&endpoint);
    let store = store(&settings);
    store.put_bag(&bag(0)).unwrap();
    let lease = Duration::from_secs(3600);
    let mut batch = store.claim_batch(1, true, lease).unwrap().unwrap();
    // The owner: a process on this host that no longer exists.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    batch.owner = format!("{host}:4194000:12345");
    store.finish_batch(&batch).unwrap(); // still "running"
    let again = store.claim_batch(1, true, lease).unwrap().expect("the dead batch's bag is claimed again");
    assert_eq!(again.bags, batch.bags);
    let old = store.list_batches().unwrap().into_iter().find(|b| b.batch_id == batch.batch_id).unwrap();
    assert_eq!(old.status, "abandoned");
}

#[test]
fn batch_with_dynamodb_through_injected_faults_equals_the_local_run() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bags: Vec<String> = sample_bags().iter().map(|b| b.to_string_lossy().into_owned()).collect();

    // The local run: SQLite store.
    let local_lake = dir.path().join("local");
    let local = local_lake.to_str().unwrap();
    let mut args = vec!["ingest", "--lake", local];
    args.extend(bags.iter().map(String::as_str));
    run_ok(&args);
    run_ok(&["batch", "--all", "--lake", local]);
    let local_store = scenes::meta::sqlite::SqliteStore::open(&local_lake.join("_scenes/metadata.sqlite")).unwrap();
    let local_scenes = local_store.list_scenes().unwrap();
    assert!(local_scenes.len() >= 10, "the sample drives have scenes");

    // The same through the proxy, DynamoDB store.
    let stats = dir.path().join("proxy-stats.json");
    let (mut proxy, proxy_url) = start_proxy(&endpoint, &stats, false);
    let settings = settings(&endpoint);
    let config = write_aws_config(dir.path(), &settings, &proxy_url, None);
    let cfg = config.to_str().unwrap();
    let aws_lake = dir.path().join("aws");
    let lake = aws_lake.to_str().unwrap();
    run_ok(&["--config", cfg, "init-store"]);
    let mut args = vec!["--config", cfg, "ingest", "--lake", lake];
    args.extend(bags.iter().map(String::as_str));
    run_ok(&args);
    run_ok(&["--config", cfg, "batch", "--all", "--lake", lake]);
    let _ = proxy.kill();
    let _ = proxy.wait();

    // Read back directly (not through the proxy).
    let direct = DynamoStore::connect(settings.clone()).unwrap();
    assert_eq!(direct.list_scenes().unwrap(), local_scenes, "scenes in DynamoDB equal the local run's");
    let local_bags: Vec<String> = local_store.list_bags().unwrap().into_iter().map(|b| b.bag_file).collect();
    let aws_bags: Vec<String> = direct.list_bags().unwrap().into_iter().map(|b| b.bag_file).collect();
    assert_eq!(aws_bags, local_bags);
    assert!(direct.list_batches().unwrap().iter().all(|b| b.status == "done"));
    assert!(!aws_lake.join("_scenes/metadata.sqlite").exists(), "no SQLite store with kind dynamodb");

    let injected: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    eprintln!("faults injected: {injected}");
    for key in ["http_500", "http_503", "throttled", "unprocessed_items"] {
        assert!(injected[key].as_u64().unwrap() > 0, "the proxy injected {key}: {injected}");
    }
}

#[test]
fn items_keep_the_reference_attributes() {
    let Some(endpoint) = endpoint() else { return };
    let settings = settings(&endpoint);
    let store = store(&settings);
    store.put_bag(&bag(7)).unwrap();
    store.replace_scenes("bag7", &[scene("bag7", 1605803285.1)]).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bag_item, scene_item) = rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(&endpoint).build());
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let bag = client
            .get_item()
            .table_name(&settings.bags_table)
            .key("bag_file_prefix", A::S("drives/2026-11-19/bag7.bag".into()))
            .send()
            .await
            .unwrap();
        let scene = client
            .get_item()
            .table_name(&settings.scenes_table)
            .key("bag_file", A::S("bag7".into()))
            .key("scene_id", A::S("bag7_PersonInLane_1605803285.1".into()))
            .send()
            .await
            .unwrap();
        (bag.item().cloned().unwrap(), scene.item().cloned().unwrap())
    });
    use aws_sdk_dynamodb::types::AttributeValue as A;
    assert_eq!(bag_item["bag_file"], A::S("bag7".into()));
    assert_eq!(bag_item["bag_file_bucket"], A::S("ingest-bucket".into()));
    let topic = bag_item["/imu/data"].as_m().unwrap();
    assert_eq!(topic["Types"], A::S("sensor_msgs/Imu".into()));
    assert_eq!(topic["Message Count"], A::S("10".into()));
    assert_eq!(topic["Frequency"], A::S("100".into()));
    assert_eq!(scene_item["start_time"], A::N("1605803285.1".into()));
    assert_eq!(scene_item["scene_length"], A::N("1.5".into()));
    assert_eq!(scene_item["num_people_in_scene_start"], A::N("1".into()));
    assert_eq!(scene_item["topics_analyzed"], A::S("detections,lanes".into()));
    assert!(scene_item.contains_key("end_time"));
    assert_eq!(scene_item["scenario"], A::S("PersonInLane".into()));
}
