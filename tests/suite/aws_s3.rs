//! Bags and lake on S3, against moto_server (started by `tests/run.sh` on 127.0.0.1) with the
//! metadata in DynamoDB Local: the sample drives are uploaded with boto3, ingested from `s3://`
//! (ranged GETs) into a lake on `s3://`, batched with the DynamoDB store, then compared with a
//! local run — scenes in DynamoDB, SQL answers over the S3 lake, and every Delta table read back
//! by the Python `deltalake` package. The same again through a proxy injecting S3's and
//! DynamoDB's 500/503/throttling answers must give identical results.

use std::path::Path;
use std::process::Command;

use crate::common::aws::{dynamo_settings, start_proxy, unique_id, write_aws_config};
use crate::common::*;
use scenes::meta::dynamo::{DynamoSettings, DynamoStore};
use scenes::meta::MetaStore;

struct Endpoints {
    s3: String,
    dynamodb: String,
}

fn endpoints() -> Option<Endpoints> {
    let found = match (std::env::var("SCENES_TEST_S3_ENDPOINT"), std::env::var("SCENES_TEST_DYNAMODB_ENDPOINT")) {
        (Ok(s3), Ok(dynamodb)) => Some(Endpoints { s3, dynamodb }),
        _ => None,
    };
    let what = "moto_server and DynamoDB Local (SCENES_TEST_S3_ENDPOINT, SCENES_TEST_DYNAMODB_ENDPOINT; bash tests/run.sh starts them)";
    require(what, found.is_some()).then_some(found).flatten()
}

fn s3_tool(args: &[&str]) -> String {
    let out = Command::new(python()).arg(py_script("s3_tool.py")).args(args).output().unwrap();
    assert!(out.status.success(), "s3_tool.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Row digests of every Delta table (Python `deltalake`), without the columns that say where a
/// bag came from (a path here, an S3 key there).
fn lake_digest(lake: &str) -> serde_json::Value {
    let out = Command::new(python())
        .arg(py_script("lake_digest.py"))
        .arg(lake)
        .env("SCENES_DIGEST_DROP", "bag_file_prefix,bag_file_bucket")
        .output()
        .unwrap();
    assert!(out.status.success(), "lake_digest.py {lake}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What a run over the lake answered, to compare runs. Scene records keep where their bag came
/// from (a local path, an S3 key and bucket); that is blanked before comparing.
#[derive(Debug)]
struct Answers {
    scenes: Vec<scenes::meta::SceneRecord>,
    bags: Vec<String>,
    imu_counts: String,
    scenes_table: String,
    digest: serde_json::Value,
}

// Bags are compared by name: their keys hash where they were read from (a path, an S3 URI).
const IMU_SQL: &str = "SELECT bag_name, count(*) AS n, min(log_time) AS t0, max(log_time) AS t1 FROM imu_data JOIN bags USING (bag_file) GROUP BY bag_name ORDER BY bag_name";
const SCENES_SQL: &str = "SELECT bag_name, replace(scene_id, bag_file, bag_name) AS scene, start_time, end_time FROM scenes JOIN bags USING (bag_file) ORDER BY bag_name, scene";

fn without_origin(mut scenes: Vec<scenes::meta::SceneRecord>) -> Vec<scenes::meta::SceneRecord> {
    for s in &mut scenes {
        s.bag_file_prefix.clear();
        s.bag_file_bucket = None;
        let name = scenes::lake::name_of_key(&s.bag_file).to_string();
        s.scene_id = s.scene_id.replacen(&s.bag_file, &name, 1);
        s.bag_file = name;
    }
    scenes.sort_by(|a, b| a.scene_id.cmp(&b.scene_id));
    scenes
}

/// The names of the bags of `records`, sorted.
fn bag_names(records: Vec<scenes::meta::BagRecord>) -> Vec<String> {
    let mut names: Vec<String> = records.iter().map(|b| b.name().to_string()).collect();
    names.sort();
    names
}

/// Compares two runs part by part (the whole structure is too long to read in one message).
fn assert_same(remote: &Answers, local: &Answers, what: &str) {
    assert_eq!(remote.bags, local.bags, "{what}: bags");
    assert_eq!(remote.scenes.len(), local.scenes.len(), "{what}: scene count");
    for (r, l) in remote.scenes.iter().zip(&local.scenes) {
        assert_eq!(r, l, "{what}: scene");
    }
    assert_eq!(remote.imu_counts, local.imu_counts, "{what}: SQL over imu_data");
    assert_eq!(remote.scenes_table, local.scenes_table, "{what}: SQL over scenes");
    let tables: Vec<&String> = local.digest.as_object().unwrap().keys().collect();
    assert_eq!(remote.digest.as_object().unwrap().keys().collect::<Vec<_>>(), tables, "{what}: the same Delta tables");
    for table in tables {
        assert_eq!(remote.digest[table], local.digest[table], "{what}: rows of Delta table {table} (read by Python deltalake)");
    }
}

/// The local run everything is compared with: local files, local lake, SQLite store.
fn local_run(dir: &Path) -> Answers {
    let lake_dir = dir.join("local");
    let lake = lake_dir.to_str().unwrap();
    let bags: Vec<String> = sample_bags().iter().map(|b| b.to_string_lossy().into_owned()).collect();
    let mut args = vec!["ingest", "--lake", lake];
    args.extend(bags.iter().map(String::as_str));
    run_ok(&args);
    run_ok(&["batch", "--all", "--lake", lake]);
    let store = scenes::meta::sqlite::SqliteStore::open(&lake_dir.join("_scenes/metadata.sqlite")).unwrap();
    Answers {
        scenes: without_origin(store.list_scenes().unwrap()),
        bags: bag_names(store.list_bags().unwrap()),
        imu_counts: run_ok(&["query", "--lake", lake, "--format", "csv", IMU_SQL]),
        scenes_table: run_ok(&["query", "--lake", lake, "--format", "csv", SCENES_SQL]),
        digest: lake_digest(lake),
    }
}

/// Uploads the sample drives to `s3://<bucket>/drives/2026-11-19/`.
fn upload_samples(bucket: &str) -> Vec<String> {
    sample_bags()
        .iter()
        .map(|bag| {
            let uri = format!("s3://{bucket}/drives/2026-11-19/{}", bag.file_name().unwrap().to_string_lossy());
            s3_tool(&["put", bag.to_str().unwrap(), &uri]);
            uri
        })
        .collect()
}

/// Ingest from S3 into a lake on S3 and batch, with `config`; answers read back directly.
fn s3_run(config: &Path, bag_prefix: &str, lake: &str, settings: &DynamoSettings) -> Answers {
    let cfg = config.to_str().unwrap();
    run_ok(&["--config", cfg, "init-store"]);
    // A prefix ending in `/` means every bag below it.
    let ingested = run_ok(&["--config", cfg, "--json", "ingest", "--lake", lake, bag_prefix]);
    let ingested: serde_json::Value = serde_json::from_str(&ingested).unwrap();
    assert_eq!(ingested["ingested"].as_array().unwrap().len(), sample_bags().len(), "{ingested}");
    // The same prefix again: every object has the ETag and size it was ingested with.
    let again: serde_json::Value = serde_json::from_str(&run_ok(&["--config", cfg, "--json", "ingest", "--lake", lake, bag_prefix])).unwrap();
    assert_eq!(again["skipped"].as_array().map(Vec::len), Some(sample_bags().len()), "{again}");
    assert_eq!(again["ingested"].as_array().map(Vec::len), Some(0), "{again}");
    run_ok(&["--config", cfg, "batch", "--all", "--lake", lake]);
    let store = DynamoStore::connect(settings.clone()).unwrap();
    assert!(store.list_bags().unwrap().iter().all(|b| b.source_version.as_deref().is_some_and(|v| v.contains("etag="))), "S3 bag records keep size and ETag");
    assert!(store.list_batches().unwrap().iter().all(|b| b.status == "done"));
    for bag in store.list_bags().unwrap() {
        assert!(bag.bag_file_prefix.starts_with("drives/2026-11-19/"), "bag items keep the S3 key: {}", bag.bag_file_prefix);
        assert!(bag.bag_file_bucket.is_some(), "and the bucket");
    }
    Answers {
        scenes: without_origin(store.list_scenes().unwrap()),
        bags: bag_names(store.list_bags().unwrap()),
        imu_counts: run_ok(&["--config", cfg, "query", "--lake", lake, "--format", "csv", IMU_SQL]),
        scenes_table: run_ok(&["--config", cfg, "query", "--lake", lake, "--format", "csv", SCENES_SQL]),
        digest: lake_digest(lake),
    }
}

#[test]
fn ingest_from_s3_into_an_s3_lake_equals_the_local_run() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    let local = local_run(dir.path());
    assert!(local.scenes.len() >= 10, "the sample drives have scenes");

    let id = unique_id();
    let (drives, lake_bucket) = (format!("drives-{id}"), format!("lake-{id}"));
    s3_tool(&["mb", &drives, &lake_bucket]);
    upload_samples(&drives);
    let settings = dynamo_settings(&format!("s3e2e{id}"), &ep.dynamodb);
    let config = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let lake = format!("s3://{lake_bucket}/lake");
    let remote = s3_run(&config, &format!("s3://{drives}/drives/2026-11-19/"), &lake, &settings);
    assert_same(&remote, &local, "S3 + DynamoDB run vs local run");
    // Vacuum lists the lake on S3: every file there is referenced.
    let cfg = config.to_str().unwrap();
    let vacuum = run_ok(&["--config", cfg, "vacuum", "--retain-hours", "0", "--lake", &lake]);
    assert!(vacuum.contains("removed 0 unreferenced files"), "{vacuum}");

    // The lake is on S3 only: tables under the prefix, nothing written locally.
    let keys = s3_tool(&["ls", &format!("s3://{lake_bucket}/lake/")]);
    assert!(keys.contains("lake/topics/imu_data/_delta_log/00000000000000000000.json"), "{keys}");
    assert!(keys.contains("lake/scenes/_delta_log/"), "{keys}");

    // Athena DDL for the lake on S3 names its S3 locations.
    let ddl = run_ok(&["--config", config.to_str().unwrap(), "catalog", "athena", "--lake", &lake]);
    assert!(ddl.contains(&format!("LOCATION 's3://{lake_bucket}/lake/topics/imu_data/'")), "{ddl}");
    assert!(ddl.contains(&format!("LOCATION 's3://{lake_bucket}/lake/scenes/'")), "{ddl}");
}

#[test]
fn s3_and_dynamodb_faults_do_not_change_the_results() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    let local = local_run(dir.path());

    let id = unique_id();
    let (drives, lake_bucket) = (format!("fdrives-{id}"), format!("flake-{id}"));
    s3_tool(&["mb", &drives, &lake_bucket]);
    upload_samples(&drives);
    let s3_stats = dir.path().join("s3-proxy.json");
    let ddb_stats = dir.path().join("ddb-proxy.json");
    let (mut s3_proxy, s3_url) = start_proxy(&ep.s3, &s3_stats, true);
    let (mut ddb_proxy, ddb_url) = start_proxy(&ep.dynamodb, &ddb_stats, false);
    let settings = dynamo_settings(&format!("s3flt{id}"), &ep.dynamodb);
    let config = write_aws_config(dir.path(), &settings, &ddb_url, Some(&s3_url));
    let lake = format!("s3://{lake_bucket}/lake");
    let bag_uris: Vec<String> = sample_bags()
        .iter()
        .map(|b| format!("s3://{drives}/drives/2026-11-19/{}", b.file_name().unwrap().to_string_lossy()))
        .collect();
    let cfg = config.to_str().unwrap();
    run_ok(&["--config", cfg, "init-store"]);
    let mut args = vec!["--config", cfg, "ingest", "--lake", lake.as_str()];
    args.extend(bag_uris.iter().map(String::as_str));
    run_ok(&args);
    let after_ingest: serde_json::Value = serde_json::from_slice(&std::fs::read(&s3_stats).unwrap()).unwrap();
    run_ok(&["--config", cfg, "batch", "--all", "--lake", &lake]);
    let query_cfg = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let store = DynamoStore::connect(settings.clone()).unwrap();
    let remote = Answers {
        scenes: without_origin(store.list_scenes().unwrap()),
        bags: bag_names(store.list_bags().unwrap()),
        imu_counts: run_ok(&["--config", cfg, "query", "--lake", &lake, "--format", "csv", IMU_SQL]),
        scenes_table: run_ok(&["--config", query_cfg.to_str().unwrap(), "query", "--lake", &lake, "--format", "csv", SCENES_SQL]),
        digest: lake_digest(&lake),
    };
    let _ = s3_proxy.kill();
    let _ = ddb_proxy.kill();
    let _ = s3_proxy.wait();
    let _ = ddb_proxy.wait();
    assert_same(&remote, &local, "run through injected faults vs local run");

    let s3: serde_json::Value = serde_json::from_slice(&std::fs::read(&s3_stats).unwrap()).unwrap();
    let ddb: serde_json::Value = serde_json::from_slice(&std::fs::read(&ddb_stats).unwrap()).unwrap();
    eprintln!("S3 proxy: {s3}\nDynamoDB proxy: {ddb}");
    for key in ["http_500", "http_503", "throttled"] {
        assert!(s3[key].as_u64().unwrap() > 0, "S3 faults injected: {key}: {s3}");
        assert!(ddb[key].as_u64().unwrap() > 0, "DynamoDB faults injected: {key}: {ddb}");
    }
    assert!(after_ingest["ranged_gets"].as_u64().unwrap() >= 2 * sample_bags().len() as u64, "{after_ingest}");
}

/// What [`ingest_through_fault_proxy`] did: where the bag went, and what the proxy counted.
struct Proxied {
    uri: String,
    bucket: String,
    settings: DynamoSettings,
    /// The local lake it was ingested into (every GET through the proxy is a read of the bag).
    lake: std::path::PathBuf,
    /// The process's `TMPDIR`.
    tmp: std::path::PathBuf,
    report: serde_json::Value,
    /// The proxy's counts (GETs, ranged GETs, bytes, injected faults).
    s3: serde_json::Value,
}

/// Uploads `bag` to a new bucket named after `name`, ingests it from S3 into a local lake
/// through the fault-injecting proxy, and returns the proxy's counts.
fn ingest_through_fault_proxy(ep: &Endpoints, dir: &Path, bag: &Path, name: &str) -> Proxied {
    let id = unique_id();
    let bucket = format!("{name}-{id}");
    s3_tool(&["mb", &bucket]);
    let uri = format!("s3://{bucket}/drives/{}", bag.file_name().unwrap().to_string_lossy());
    s3_tool(&["put", bag.to_str().unwrap(), &uri]);
    let stats = dir.join("s3-proxy.json");
    let (mut proxy, proxy_url) = start_proxy(&ep.s3, &stats, true);
    let settings = dynamo_settings(&format!("s3{}{id}", name.replace('-', "")), &ep.dynamodb);
    let config = write_aws_config(dir, &settings, &ep.dynamodb, Some(&proxy_url));
    let cfg = config.to_str().unwrap();
    run_ok(&["--config", cfg, "init-store"]);
    let lake = dir.join("lake");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let args = ["--config", cfg, "--json", "ingest", "--lake", lake.to_str().unwrap(), &uri];
    let out = scenes_command(&args).env("TMPDIR", &tmp).output().unwrap();
    assert!(out.status.success(), "{}", describe(&args, &out));
    let _ = proxy.kill();
    let _ = proxy.wait();
    let s3 = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    Proxied { uri, bucket, settings, lake, tmp, report: serde_json::from_slice(&out.stdout).unwrap(), s3 }
}

#[test]
fn a_bag_on_s3_is_read_by_ranges_not_downloaded() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A 60 s drive with 100 KB camera frames: ~60 MB in many chunks.
    let bag = dir.path().join("camera_drive.bag");
    run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "60", "--image-bytes", "100000", "--compression", "none"]);
    let size = std::fs::metadata(&bag).unwrap().len();
    let info: serde_json::Value = serde_json::from_str(&run_ok(&["--json", "info", bag.to_str().unwrap()])).unwrap();
    let chunks = info[0]["chunks"].as_u64().unwrap();
    assert!(chunks >= 20, "{info}");

    let proxied = ingest_through_fault_proxy(&ep, dir.path(), &bag, "rng");
    let (uri, bucket, settings, lake_dir, s3) = (proxied.uri, proxied.bucket, proxied.settings, proxied.lake, proxied.s3);
    let remote = proxied.report;
    eprintln!("bag {size} bytes, {chunks} chunks; S3 proxy: {s3}");
    let gets = s3["gets"].as_u64().unwrap();
    assert!(gets > chunks, "one GET per chunk plus header and index: {s3}");
    assert_eq!(s3["ranged_gets"].as_u64().unwrap(), gets, "every GET asked for a range: {s3}");
    assert!(s3["max_get_bytes"].as_u64().unwrap() < size / 10, "no GET fetched a large part of the bag: {s3}");
    assert!(s3["get_bytes"].as_u64().unwrap() <= size + size / 20, "the bag was read about once: {s3}");
    assert!(s3["http_503"].as_u64().unwrap() > 0, "faults were injected: {s3}");

    // Same rows as ingesting the local file.
    let local_lake = dir.path().join("local-lake");
    let local = ingest_json(&bag, &local_lake, &[]);
    let counts = |report: &serde_json::Value| -> Vec<(String, u64)> {
        report["ingested"][0]["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["topic"].as_str().unwrap().to_string(), t["messages_ingested"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(counts(&remote), counts(&local));
    // Every row, image bytes included, read back by Python deltalake.
    let digest = |lake: &Path| -> serde_json::Value {
        let mut d = lake_digest(lake.to_str().unwrap());
        d.as_object_mut().unwrap().retain(|table, _| table.starts_with("topics/"));
        d
    };
    assert_eq!(digest(&lake_dir), digest(&local_lake));

    // The same bag into a lake on S3 (direct, no proxy) reads back equal.
    let direct = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let s3_lake = format!("s3://{bucket}/lake");
    run_ok(&["--config", direct.to_str().unwrap(), "ingest", "--lake", &s3_lake, &uri]);
    let mut remote_digest = lake_digest(&s3_lake);
    remote_digest.as_object_mut().unwrap().retain(|table, _| table.starts_with("topics/"));
    assert_eq!(remote_digest, digest(&local_lake));
}

#[test]
fn an_mcap_file_on_s3_is_read_by_ranges_guided_by_its_summary() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A ROS 2 MCAP file (written by mcap-ros2-support, 64 KiB zstd chunks) of a drive with
    // 100 KB camera frames: many chunks.
    let bag = dir.path().join("camera_drive.bag");
    run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "20", "--image-bytes", "100000", "--compression", "none"]);
    let made = Command::new(python()).current_dir(manifest_dir().join("tests/py")).arg("make_mcap_fixtures.py").arg(&bag).arg(dir.path().join("mcap")).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mcap = dir.path().join("mcap/ros2/camera_drive.mcap");
    let size = std::fs::metadata(&mcap).unwrap().len();
    let proxied = ingest_through_fault_proxy(&ep, dir.path(), &mcap, "mcaprng");
    let (lake_dir, tmp, s3) = (proxied.lake, proxied.tmp, proxied.s3);
    let info: serde_json::Value = serde_json::from_str(&run_ok(&["--json", "info", mcap.to_str().unwrap()])).unwrap();
    let chunks = info[0]["chunks"].as_u64().unwrap();
    eprintln!("MCAP {size} bytes, {chunks} chunks; S3 proxy: {s3}");
    assert!(chunks >= 20, "{info}");
    assert_eq!(s3["ranged_gets"].as_u64().unwrap(), s3["gets"].as_u64().unwrap(), "every GET asked for a range: {s3}");
    assert!(s3["gets"].as_u64().unwrap() > chunks, "one GET per chunk plus the head, footer and summary: {s3}");
    assert!(s3["max_get_bytes"].as_u64().unwrap() < size / 10, "no GET fetched a large part of the file: {s3}");
    assert!(s3["get_bytes"].as_u64().unwrap() <= size + size / 20, "the file was read about once: {s3}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "no local copy was made");
    // Same rows as ingesting the local file.
    let local_lake = dir.path().join("local-lake");
    ingest_json(&mcap, &local_lake, &[]);
    let digest = |lake: &Path| -> serde_json::Value {
        let mut d = lake_digest(lake.to_str().unwrap());
        d.as_object_mut().unwrap().retain(|table, _| table.starts_with("topics/"));
        d
    };
    assert_eq!(digest(&lake_dir), digest(&local_lake));
}

#[test]
fn large_lake_files_are_uploaded_in_parts() {
    let Some(ep) = endpoints() else { return };
    let bucket = format!("mp-{}", unique_id());
    s3_tool(&["mb", &bucket]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = scenes::config::S3Config {
        endpoint_url: Some(ep.s3.clone()),
        ..Default::default()
    };
    let remote = scenes::source::s3::connect(&bucket, &settings, runtime.handle()).unwrap();
    let location = scenes::lake::location::TableLocation::remote(remote.clone(), "lake/t").unwrap();
    let bytes: Vec<u8> = (0..40u32 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    location.put_blocking("bag_file=x/part-0.parquet", bytes.clone()).unwrap();
    let keys = s3_tool(&["ls", &format!("s3://{bucket}/lake/t/")]);
    assert!(keys.trim_end().ends_with("-3\""), "40 MiB in three 16 MiB parts (multipart ETag): {keys}");
    use object_store::ObjectStoreExt;
    let path = location.object_path("bag_file=x/part-0.parquet");
    let back = runtime.block_on(async { remote.store.get(&path).await.unwrap().bytes().await.unwrap() });
    assert!(back.as_ref() == bytes.as_slice(), "the object reads back byte for byte");
}

#[test]
fn s3_inputs_that_cannot_be_read_get_clear_errors() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    let id = unique_id();
    let bucket = format!("bad-{id}");
    s3_tool(&["mb", &bucket]);
    // A torn upload: the first half of a bag, so its index is missing.
    let bag = std::fs::read(manifest_dir().join("sample-bags/drive_c.bag")).unwrap();
    let torn = dir.path().join("torn.bag");
    std::fs::write(&torn, &bag[..bag.len() / 2]).unwrap();
    s3_tool(&["put", torn.to_str().unwrap(), &format!("s3://{bucket}/torn.bag")]);
    let settings = dynamo_settings(&format!("s3bad{id}"), &ep.dynamodb);
    let config = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let cfg = config.to_str().unwrap();
    let lake = format!("s3://{bucket}/lake");
    run_ok(&["--config", cfg, "init-store"]);

    let out = scenes(&["--config", cfg, "ingest", "--lake", &lake, &format!("s3://{bucket}/missing.bag")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("missing.bag") && err.contains("no such object"), "{err}");

    // An S3 lake with the embedded store: refused, saying what to set.
    let local_store_config = dir.path().join("local-store.json");
    std::fs::write(&local_store_config, serde_json::json!({ "s3": { "endpoint_url": ep.s3 } }).to_string()).unwrap();
    let out = scenes(&["--config", local_store_config.to_str().unwrap(), "batch", "--lake", &lake]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("dynamodb"), "{err}");
}

/// Rows per (table, bag name) of a lake, through `scenes query` with `config`.
fn rows_by_bag(config: &str, lake: &str, tables: &[&str]) -> std::collections::BTreeMap<String, String> {
    tables
        .iter()
        .map(|table| {
            let sql = format!("SELECT bag_name, count(*) AS n FROM {table} JOIN bags USING (bag_file) GROUP BY bag_name ORDER BY bag_name");
            (table.to_string(), run_ok(&["--config", config, "query", "--lake", lake, "--format", "csv", &sql]))
        })
        .collect()
}

#[test]
fn every_bag_format_is_ingested_from_s3_as_from_local_disk_and_no_local_copy_stays() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    let id = unique_id();
    let bucket = format!("formats-{id}");
    s3_tool(&["mb", &bucket]);
    // rosbag2 recordings written by rosbags, an MCAP file, and a ROS1 bag without its index.
    let fixtures = dir.path().join("fixtures");
    let made = Command::new(python()).arg(py_script("make_rosbag2_fixtures.py")).arg(&fixtures).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let local = dir.path().join("local");
    std::fs::create_dir_all(local.join("split")).unwrap();
    for name in ["metadata.yaml", "sqlite_split_0.db3", "sqlite_split_1.db3"] {
        std::fs::copy(fixtures.join("sqlite_split").join(name), local.join("split").join(name)).unwrap();
    }
    std::fs::copy(fixtures.join("lone.db3"), local.join("lone.db3")).unwrap();
    std::fs::copy(fixtures.join("mcap_split/mcap_split_0.mcap"), local.join("alone.mcap")).unwrap();
    let bag = std::fs::read(manifest_dir().join("sample-bags/drive_c.bag")).unwrap();
    std::fs::write(local.join("torn.bag"), &bag[..bag.len() / 2]).unwrap();
    for (relative, key) in [
        ("split/metadata.yaml", "in/split/metadata.yaml"),
        ("split/sqlite_split_0.db3", "in/split/sqlite_split_0.db3"),
        ("split/sqlite_split_1.db3", "in/split/sqlite_split_1.db3"),
        ("lone.db3", "in/lone.db3"),
        ("alone.mcap", "in/alone.mcap"),
        ("torn.bag", "in/torn.bag"),
    ] {
        s3_tool(&["put", local.join(relative).to_str().unwrap(), &format!("s3://{bucket}/{key}")]);
    }
    let settings = dynamo_settings(&format!("s3fmt{id}"), &ep.dynamodb);
    let config = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let cfg = config.to_str().unwrap();
    run_ok(&["--config", cfg, "init-store"]);
    let msgs = fixtures.join("msg");
    let std_msgs = manifest_dir().join("tests/fixtures/msg");
    let msg_args = ["--msg-path", msgs.to_str().unwrap(), "--msg-path", std_msgs.to_str().unwrap()];

    // From S3, with the temporary copies in a folder of the test's own.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let s3_lake = format!("s3://{bucket}/lake");
    let mut args = vec!["--config", cfg, "--json", "ingest", "--lake", &s3_lake];
    args.extend(msg_args);
    let prefix = format!("s3://{bucket}/in/");
    args.push(&prefix);
    let out = scenes_command(&args).env("TMPDIR", &tmp).output().unwrap();
    assert!(out.status.success(), "{}", describe(&args, &out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = report["ingested"].as_array().unwrap().iter().map(|b| b["bag_name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["alone", "lone", "split", "torn"], "the recording folder is one bag: {report}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the local copies are deleted");
    // A split named on its own (as the deploy does for every uploaded object) is left to its
    // recording.
    let split = format!("s3://{bucket}/in/split/sqlite_split_1.db3");
    let alone: serde_json::Value = serde_json::from_str(&run_ok(&["--config", cfg, "--json", "ingest", "--lake", &s3_lake, &split])).unwrap();
    assert_eq!((alone["ingested"].as_array().map(Vec::len), alone["skipped"].as_array().map(Vec::len)), (Some(0), Some(1)), "{alone}");

    // The same files from local disk, into a local lake with its own store.
    let local_lake = dir.path().join("local-lake");
    for input in ["split", "lone.db3", "alone.mcap", "torn.bag"] {
        ingest_json(&local.join(input), &local_lake, &msg_args);
    }
    let tables = ["sample", "chatter", "imu_data", "vehicle_gps_fix"];
    let from_s3 = rows_by_bag(cfg, &s3_lake, &tables);
    let local_config = dir.path().join("local.json");
    std::fs::write(&local_config, "{}").unwrap();
    let from_disk = rows_by_bag(local_config.to_str().unwrap(), local_lake.to_str().unwrap(), &tables);
    assert_eq!(from_s3, from_disk);
    assert!(from_s3["sample"].contains("split,80") && from_s3["sample"].contains("lone,40"), "{from_s3:?}");
    assert!(from_s3["imu_data"].contains("torn,"), "the torn bag's recovered rows: {from_s3:?}");
}

/// (key, count) rows of `sql`'s CSV answer (`key,n` per line).
fn counts_by_key(csv: &str) -> std::collections::BTreeMap<String, u64> {
    csv.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(k, n)| (k.to_string(), n.parse().unwrap())).collect()
}

#[test]
fn same_names_under_two_prefixes_by_eight_ingest_and_four_batch_processes_at_once_on_s3_with_dynamodb() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    let id = unique_id();
    let (drives, lake_bucket) = (format!("cdrives-{id}"), format!("clake-{id}"));
    s3_tool(&["mb", &drives, &lake_bucket]);
    // Every sample drive under two vehicles' prefixes: eight objects, four names, each name twice.
    let mut uris = Vec::new();
    for vehicle in ["vehicle_a", "vehicle_b"] {
        for bag in sample_bags() {
            let uri = format!("s3://{drives}/{vehicle}/2026-12-01/{}", bag.file_name().unwrap().to_string_lossy());
            s3_tool(&["put", bag.to_str().unwrap(), &uri]);
            uris.push(uri);
        }
    }
    let settings = dynamo_settings(&format!("s3conc{id}"), &ep.dynamodb);
    let config = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let cfg = config.to_str().unwrap();
    let lake = format!("s3://{lake_bucket}/lake");
    run_ok(&["--config", cfg, "init-store"]);
    let spawn_all = |commands: Vec<Vec<String>>| -> Vec<String> {
        let outputs = std::thread::scope(|s| {
            let handles: Vec<_> = commands
                .iter()
                .map(|args| s.spawn(move || scenes_command(&[]).args(args).env("RUST_LOG", "scenes::lake::delta=info").output().unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        });
        outputs
            .iter()
            .map(|out| {
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8_lossy(&out.stderr).into_owned()
            })
            .collect()
    };
    let ingests: Vec<Vec<String>> = uris.iter().map(|uri| ["--config", cfg, "ingest", "-q", "--lake", &lake, uri].map(String::from).to_vec()).collect();
    let ingest_logs = spawn_all(ingests);
    let batches: Vec<Vec<String>> = (0..4).map(|_| ["--config", cfg, "batch", "--all", "-q", "--batch-size", "1", "--lake", &lake].map(String::from).to_vec()).collect();
    let batch_logs = spawn_all(batches);
    let met = |logs: &[String]| logs.iter().map(|l| l.matches("concurrent commits:").count()).sum::<usize>();
    println!("on S3: {} ingest commits and {} batch commits met other writers' commits", met(&ingest_logs), met(&batch_logs));

    // Eight bags, eight keys, four names; each bag's rows and scenes exactly once.
    let store = DynamoStore::connect(settings.clone()).unwrap();
    let records = store.list_bags().unwrap();
    assert_eq!(records.len(), 8);
    let key_of_record: std::collections::BTreeMap<String, String> = records.iter().map(|r| (r.bag_file.clone(), r.name().to_string())).collect();
    assert_eq!(key_of_record.len(), 8, "eight distinct keys");
    let imu = counts_by_key(&run_ok(&["--config", cfg, "query", "--lake", &lake, "--format", "csv", "SELECT bag_file, count(*) AS n FROM imu_data GROUP BY bag_file"]));
    let scenes = counts_by_key(&run_ok(&["--config", cfg, "query", "--lake", &lake, "--format", "csv", "SELECT bag_file, count(*) AS n FROM scenes GROUP BY bag_file"]));
    let expected_imu = [("drive_a", 6000), ("drive_b", 4500), ("drive_c", 2000), ("drive_d", 6000)];
    let expected_scenes = [("drive_a", 4), ("drive_b", 3), ("drive_c", 1), ("drive_d", 5)];
    for (key, name) in &key_of_record {
        let want_imu = expected_imu.iter().find(|(n, _)| n == name).unwrap().1;
        let want_scenes = expected_scenes.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(imu.get(key), Some(&want_imu), "{key}: {imu:?}");
        assert_eq!(scenes.get(key), Some(&want_scenes), "{key}: {scenes:?}");
    }
    assert_eq!(imu.len(), 8);
    let store_scenes = store.list_scenes().unwrap();
    assert_eq!(store_scenes.len(), 2 * (4 + 3 + 1 + 5), "every scene of every bag in DynamoDB");
    // (A claim that found no bag left is recorded as an abandoned, empty batch.)
    let batches: Vec<_> = store.list_batches().unwrap().into_iter().filter(|b| !b.bags.is_empty()).collect();
    assert!(batches.iter().all(|b| b.status == "done"), "{batches:?}");
    assert_eq!(batches.iter().map(|b| b.bags.len()).sum::<usize>(), 8, "each bag batched once");
    // Every commit kept: each table's log has versions 0..n without a gap.
    let keys = s3_tool(&["ls", &format!("s3://{lake_bucket}/lake/")]);
    let mut versions: std::collections::BTreeMap<String, Vec<u64>> = std::collections::BTreeMap::new();
    for line in keys.lines() {
        let key = line.split_whitespace().next().unwrap_or_default();
        let Some((table, file)) = key.split_once("/_delta_log/") else { continue };
        if let Some(v) = file.strip_suffix(".json").and_then(|v| v.parse().ok()) {
            versions.entry(table.to_string()).or_default().push(v);
        }
    }
    assert!(versions.len() >= 8, "{versions:?}");
    for (table, mut v) in versions {
        v.sort();
        assert_eq!(v, (0..v.len() as u64).collect::<Vec<_>>(), "{table}: a gap in the log");
    }
}

#[test]
fn one_key_in_two_buckets_gives_two_bags_with_their_own_records() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    let id = unique_id();
    let (staging, production, lake_bucket) = (format!("kstaging-{id}"), format!("kprod-{id}"), format!("klake-{id}"));
    s3_tool(&["mb", &staging, &production, &lake_bucket]);
    // The same key in two buckets, holding different drives.
    let key = "drives/2026-12-01/drive_0.bag";
    let sample = |name: &str| manifest_dir().join(format!("sample-bags/{name}.bag"));
    s3_tool(&["put", sample("drive_c").to_str().unwrap(), &format!("s3://{staging}/{key}")]);
    s3_tool(&["put", sample("drive_a").to_str().unwrap(), &format!("s3://{production}/{key}")]);
    let settings = dynamo_settings(&format!("s3keys{id}"), &ep.dynamodb);
    let config = write_aws_config(dir.path(), &settings, &ep.dynamodb, Some(&ep.s3));
    let cfg = config.to_str().unwrap();
    let lake = format!("s3://{lake_bucket}/lake");
    run_ok(&["--config", cfg, "init-store"]);
    let (a, b) = (format!("s3://{staging}/{key}"), format!("s3://{production}/{key}"));
    run_ok(&["--config", cfg, "ingest", "-q", "--lake", &lake, &a, &b]);
    run_ok(&["--config", cfg, "batch", "--all", "-q", "--lake", &lake]);
    let store = DynamoStore::connect(settings.clone()).unwrap();
    let mut records: Vec<(String, Option<String>, String)> =
        store.list_bags().unwrap().into_iter().map(|r| (r.bag_file_prefix, r.bag_file_bucket, r.bag_file)).collect();
    records.sort();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!((records[0].0.as_str(), records[0].1.as_deref()), (key, Some(staging.as_str())), "the first keeps the plain key");
    assert_eq!((records[1].0.clone(), records[1].1.as_deref()), (format!("{production}/{key}"), Some(production.as_str())));
    assert_ne!(records[0].2, records[1].2, "two partitions");
    let imu = counts_by_key(&run_ok(&["--config", cfg, "query", "--lake", &lake, "--format", "csv", "SELECT bag_file, count(*) AS n FROM imu_data GROUP BY bag_file"]));
    assert_eq!(imu.get(&records[0].2), Some(&2000), "drive_c's rows: {imu:?}");
    assert_eq!(imu.get(&records[1].2), Some(&6000), "drive_a's rows: {imu:?}");
    let scenes = counts_by_key(&run_ok(&["--config", cfg, "query", "--lake", &lake, "--format", "csv", "SELECT bag_file, count(*) AS n FROM scenes GROUP BY bag_file"]));
    assert_eq!((scenes.get(&records[0].2), scenes.get(&records[1].2)), (Some(&1), Some(&4)), "{scenes:?}");
    // Both unchanged: a re-run skips both.
    let again: serde_json::Value = serde_json::from_str(&run_ok(&["--config", cfg, "--json", "ingest", "--lake", &lake, &a, &b])).unwrap();
    assert_eq!(again["skipped"].as_array().map(Vec::len), Some(2), "{again}");
}

#[test]
fn a_clip_of_a_bag_on_s3_reads_only_its_windows_chunks_and_is_written_to_s3_with_a_presigned_url() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A 60 s drive with 100 KB camera frames: ~60 MB in many chunks.
    let bag = dir.path().join("camera_drive.bag");
    run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "60", "--image-bytes", "100000", "--compression", "none", "--start-unix-s", "1700000000"]);
    let size = std::fs::metadata(&bag).unwrap().len();
    let bucket = format!("clips-{}", unique_id());
    s3_tool(&["mb", &bucket]);
    let uri = format!("s3://{bucket}/drives/camera_drive.bag");
    s3_tool(&["put", bag.to_str().unwrap(), &uri]);

    let stats = dir.path().join("s3-proxy.json");
    let (mut proxy, proxy_url) = start_proxy(&ep.s3, &stats, true);
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"s3": {"endpoint_url": proxy_url}, "detect": {"replay_url": "https://viewer.example/?ds.url={url}&time={start_iso}"}}).to_string(),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let args = [
        "--config", config.to_str().unwrap(), "--json", "clip", "--lake", lake.to_str().unwrap(), "--bag", &uri,
        "--from", "1700000020", "--to", "1700000022", "--out", &format!("s3://{bucket}/clips/"), "--presign",
    ];
    let out = scenes(&args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let clip: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clip = &clip[0];
    let url = clip["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&proxy_url) && url.contains("X-Amz-Signature="), "{clip}");
    let downloaded = dir.path().join("downloaded.bag");
    s3_tool(&["get-url", &url, downloaded.to_str().unwrap()]);
    let _ = proxy.kill();
    let _ = proxy.wait();
    let s3: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    eprintln!("bag {size} bytes; clip {clip}; S3 proxy: {s3}");

    assert_eq!(clip["location"], format!("s3://{bucket}/clips/camera_drive_1700000020000_1700000022000.bag"));
    assert!(clip["replay_url"].as_str().unwrap().starts_with("https://viewer.example/?ds.url=http%3A%2F%2F127.0.0.1"), "{clip}");
    assert!(clip["replay_url"].as_str().unwrap().ends_with("&time=2023-11-14T22:13:40.000Z"), "{clip}");
    // Only the window's chunks were fetched: a small share of the bag.
    let read = s3["get_bytes"].as_u64().unwrap();
    assert!(read < size / 5, "read {read} of {size} bytes: {s3}");
    assert!(clip["chunks_read"].as_u64().unwrap() * 5 < clip["chunks_total"].as_u64().unwrap(), "{clip}");
    // The clip fetched by its URL holds the source's window, checked by rosbags.
    let checked = crate::clip::check_clip(&bag, &downloaded, 1_700_000_020_000_000_000, 1_700_000_022_000_000_000);
    assert!(checked["messages"].as_u64().unwrap() > 100, "{checked}");
}
