//! Lake behaviour: one table per topic, re-ingest replaces (never duplicates), topic
//! selection, several connections per topic, non-UTF-8 strings, messages that do not match
//! their definition, and the bag record in the metadata store.

use std::path::Path;

use arrow::array::{Array, AsArray};
use crate::common::*;
use scenes::bag::writer::BagWriter;
use scenes::bag::Compression;
use scenes::meta::{sqlite::SqliteStore, MetaStore};


fn string_msg(bytes: &[u8]) -> Vec<u8> {
    let mut v = (bytes.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

fn read_table(dir: &Path) -> Vec<arrow::array::RecordBatch> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let location = scenes::lake::location::TableLocation::local(dir).unwrap();
    let files = rt.block_on(scenes::lake::delta::active_files(&location)).unwrap();
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(dir.join(&f.relative_path)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

#[test]
fn reingest_replaces_the_partition_and_records_the_bag() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let bag = manifest_dir().join("sample-bags/drive_c.bag");
    let first = ingest_json(&bag, &lake, &[]);
    let imu = lake.join("topics/imu_data");
    let rows = partition_rows(&imu, "drive_c");
    assert_eq!(rows, 2000, "20 s of IMU at 100 Hz");
    ingest_json(&bag, &lake, &[]);
    assert_eq!(partition_rows(&imu, "drive_c"), rows, "re-ingest does not duplicate");
    let on_disk = std::fs::read_dir(imu.join(format!("bag_file={}", key_of(&bag)))).unwrap().count();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let location = scenes::lake::location::TableLocation::local(&imu).unwrap();
    let active = rt.block_on(scenes::lake::delta::active_files(&location)).unwrap().len();
    assert_eq!(on_disk, active, "the replaced files were deleted");
    assert_eq!(first["ingested"][0]["tables"].as_array().unwrap().len(), 5);
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let bags = store.list_bags().unwrap();
    assert_eq!(bags.len(), 1);
    let rec = &bags[0];
    assert_eq!(rec.bag_file, key_of(&bag));
    assert_eq!(rec.bag_name, "drive_c");
    assert_eq!(rec.source_uri.as_deref(), Some(std::fs::canonicalize(&bag).unwrap().to_str().unwrap()));
    assert_eq!(rec.message_count, 3600);
    assert_eq!(rec.status, "ingested");
    let imu_topic = &rec.topics["/imu/data"];
    assert_eq!(imu_topic.msg_type, "sensor_msgs/Imu");
    assert_eq!(imu_topic.message_count, 2000);
    let f = imu_topic.frequency_hz.unwrap();
    assert!((f - 100.0).abs() < 0.5, "{f}");
}

#[test]
fn topics_option_limits_tables() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let bag = manifest_dir().join("sample-bags/drive_a.bag");
    let report = ingest_json(&bag, &lake, &["--topics", "/imu/data,/vehicle/gps/fix"]);
    let tables: Vec<&str> = report["ingested"][0]["tables"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tables, ["imu_data", "vehicle_gps_fix"]);
    assert!(!lake.join("topics/vehicle_twist").exists());
    assert_eq!(partition_rows(&lake.join("topics/vehicle_gps_fix"), "drive_a"), 600);
}


#[test]
fn bags_of_one_commit_group_with_conflicting_definitions_go_to_their_own_tables() {
    let dir = tempfile::tempdir().unwrap();
    let ints = status_bag(dir.path(), "ints", "int32 code\n", &7i32.to_le_bytes());
    let floats = status_bag(dir.path(), "floats", "float64 code\n", &7f64.to_le_bytes());
    let lake = dir.path().join("lake");
    // Both bags in one commit group: the second is planned against the first's columns.
    let out = run_ok(&["ingest", "--json", "--lake", lake.to_str().unwrap(), ints.to_str().unwrap(), floats.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(0), "{report}");
    let tables: Vec<String> = report["ingested"].as_array().unwrap().iter().map(|r| r["topics"][0]["tables"][0].as_str().unwrap().to_string()).collect();
    assert_eq!(tables[0], "status");
    assert!(tables[1].starts_with("status__"), "{tables:?}");
    assert_eq!(partition_rows(&lake.join("topics/status"), "ints"), 4);
    assert_eq!(partition_rows(&lake.join("topics").join(&tables[1]), "floats"), 4);
}

#[test]
fn a_group_whose_table_another_writer_changed_meanwhile_fails_cleanly_and_a_rerun_ingests_it() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let ints_a = status_bag(dir.path(), "ints_a", "int32 code\n", &7i32.to_le_bytes());
    let ints_b = status_bag(dir.path(), "ints_b", "int32 code\n", &8i32.to_le_bytes());
    let floats = status_bag(dir.path(), "floats", "float64 code\n", &7f64.to_le_bytes());
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    // The first writer plans both int bags into a new `status` table and pauses before its commit.
    let go = dir.path().join("go");
    let mut first = scenes_command(&["ingest", "-q", "--lake", l, ints_a.to_str().unwrap(), ints_b.to_str().unwrap()])
        .env("SCENES_PAUSE_AT", "ingest:parts-written")
        .env("SCENES_RESUME_WHEN", &go)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("paused at") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the first ingest ended before its pause");
    }
    // Meanwhile another writer creates `status` with a float column of the same name.
    run_ok(&["ingest", "-q", "--lake", l, floats.to_str().unwrap()]);
    std::fs::write(&go, b"").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = first.wait().unwrap();
    // Both int bags fail (the group, then each alone), naming the bag and the table; the float
    // bag's rows are all the table has, and no uncommitted file of theirs stays behind.
    assert_eq!(status.code(), Some(1), "{rest}");
    for bag in [&ints_a, &ints_b] {
        assert!(rest.contains(&format!("bag {}: commit failed", key_of(bag))) && rest.contains("table status"), "{rest}");
    }
    let table = lake.join("topics/status");
    assert_eq!(partition_rows(&table, "floats"), 4);
    assert_eq!(partition_rows(&table, "ints_a") + partition_rows(&table, "ints_b"), 0);
    let part_files: usize = std::fs::read_dir(&table)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("bag_file="))
        .map(|partition| files_with_ext(&partition, "parquet").len())
        .sum();
    assert_eq!(part_files, 1, "only the float bag's part file");
    // A re-run plans against the float table and puts the int bags into their own table.
    run_ok(&["ingest", "-q", "--lake", l, ints_a.to_str().unwrap(), ints_b.to_str().unwrap()]);
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    assert_eq!(store.list_bags().unwrap().len(), 3);
}

#[test]
fn connections_with_compatible_and_conflicting_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.bag");
    let mut w = BagWriter::create(&path, Compression::None).unwrap();
    let a = w.add_connection(conn("/status", "x/Status", "int32 code\n"));
    let b = w.add_connection(conn("/status", "x/StatusV2", "int32 code\nstring note\n"));
    let c = w.add_connection(conn("/status", "y/Status", "float64 code\n"));
    for i in 0..10u64 {
        w.write(a, 1_000 + i, &(i as i32).to_le_bytes()).unwrap();
        let mut v2 = (i as i32 + 100).to_le_bytes().to_vec();
        v2.extend(string_msg(b"ok"));
        w.write(b, 2_000 + i, &v2).unwrap();
        if i < 3 {
            w.write(c, 3_000 + i, &(i as f64).to_le_bytes()).unwrap();
        }
    }
    w.finish().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(&path, &lake, &[]);
    let topic = &report["ingested"][0]["topics"][0];
    let tables: Vec<&str> = topic["tables"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tables.len(), 2, "{tables:?}");
    assert!(tables.contains(&"status"));
    let other = tables.iter().find(|t| t.starts_with("status__")).expect("md5-named table");
    assert_eq!(partition_rows(&lake.join("topics/status"), "multi"), 20, "compatible definitions merged");
    assert_eq!(partition_rows(&lake.join("topics").join(other), "multi"), 3);
    assert_eq!(topic["messages_ingested"], 23);
    // The merged table's schema has both columns; rows of the first definition have no note.
    let batches = read_table(&lake.join("topics/status"));
    let notes: usize = batches.iter().filter_map(|b| b.column_by_name("note")).map(|c| c.len() - c.null_count()).sum();
    assert_eq!(notes, 10);
}

#[test]
fn non_utf8_strings_are_kept_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.bag");
    let mut w = BagWriter::create(&path, Compression::Lz4).unwrap();
    let c = w.add_connection(conn("/chatter", "std_msgs/String", "string data\n"));
    w.write(c, 10, &string_msg(b"caf\xe9")).unwrap();
    w.write(c, 20, &string_msg("café".as_bytes())).unwrap();
    w.finish().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(&path, &lake, &[]);
    assert_eq!(report["ingested"][0]["topics"][0]["lossy_utf8"], 1);
    let batches = read_table(&lake.join("topics/chatter"));
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let text = batch.column_by_name("data").unwrap().as_string::<i32>();
    assert_eq!(text.value(0), "caf\u{fffd}");
    assert_eq!(text.value(1), "café");
    let raw = batch.column_by_name("_raw_message").unwrap().as_binary::<i32>();
    assert_eq!(raw.value(0), string_msg(b"caf\xe9").as_slice(), "raw bytes keep the original");
    assert!(raw.is_null(1));
}

#[test]
fn messages_that_do_not_match_their_definition_are_counted_not_shifted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.bag");
    let mut w = BagWriter::create(&path, Compression::None).unwrap();
    let c = w.add_connection(conn("/pair", "x/Pair", "int32 a\nfloat64 b\n"));
    let good = |a: i32, b: f64| {
        let mut v = a.to_le_bytes().to_vec();
        v.extend(b.to_le_bytes());
        v
    };
    w.write(c, 1, &good(1, 1.5)).unwrap();
    w.write(c, 2, &[1, 2, 3]).unwrap(); // too short
    w.write(c, 3, &[good(9, 9.0), vec![0]].concat()).unwrap(); // trailing byte
    w.write(c, 4, &good(2, 2.5)).unwrap();
    w.finish().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(&path, &lake, &[]);
    let t = &report["ingested"][0]["topics"][0];
    assert_eq!(t["messages_ingested"], 2);
    assert_eq!(t["decode_errors"], 2);
    assert!(t["first_error"].as_str().unwrap().contains("shorter"));
    let batches = read_table(&lake.join("topics/pair"));
    let a: Vec<i32> = batches.iter().flat_map(|b| b.column_by_name("a").unwrap().as_primitive::<arrow::datatypes::Int32Type>().values().to_vec()).collect();
    let b: Vec<f64> = batches.iter().flat_map(|b| b.column_by_name("b").unwrap().as_primitive::<arrow::datatypes::Float64Type>().values().to_vec()).collect();
    assert_eq!(a, [1, 2]);
    assert_eq!(b, [1.5, 2.5]);
}

#[test]
fn unparsable_definition_keeps_messages_raw() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weird.bag");
    let mut w = BagWriter::create(&path, Compression::None).unwrap();
    let mut spec = conn("/weird", "x/Weird", "int32 a\n");
    spec.definition = "missing_pkg/Nope field\n".into();
    let c = w.add_connection(spec);
    w.write(c, 5, &[1, 2, 3, 4]).unwrap();
    w.finish().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(&path, &lake, &[]);
    let t = &report["ingested"][0]["topics"][0];
    assert_eq!(t["messages_ingested"], 1);
    assert!(t["first_error"].as_str().unwrap().contains("missing_pkg/Nope"));
    let batches = read_table(&lake.join("topics/weird"));
    let raw = batches[0].column_by_name("_raw_message").unwrap().as_binary::<i32>();
    assert_eq!(raw.value(0), &[1, 2, 3, 4]);
}

#[test]
fn bag_names_with_special_characters_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my drive #1 (50%).bag");
    std::fs::copy(manifest_dir().join("sample-bags/drive_c.bag"), &path).unwrap();
    let lake = dir.path().join("lake");
    ingest_json(&path, &lake, &[]);
    assert_eq!(partition_rows(&lake.join("topics/vehicle_gps_fix"), "my drive #1 (50%)"), 200);
    // Re-ingest still finds (and replaces) the partition.
    ingest_json(&path, &lake, &[]);
    assert_eq!(partition_rows(&lake.join("topics/vehicle_gps_fix"), "my drive #1 (50%)"), 200);
}

#[test]
fn each_worker_writes_one_part_file_per_table_with_a_row_group_per_range() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("drive.bag");
    run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "300", "--compression", "none"]);
    let lake = dir.path().join("lake");
    ingest_json(&bag, &lake, &["--threads", "2"]);
    let imu = lake.join("topics/imu_data");
    let parts = files_with_ext(&imu.join(format!("bag_file={}", key_of(&bag))), "parquet");
    assert!(!parts.is_empty() && parts.len() <= 2, "one part file per worker, got {}", parts.len());
    let mut row_groups = 0;
    let mut rows = 0;
    for part in &parts {
        let file = std::fs::File::open(part).unwrap();
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        row_groups += builder.metadata().num_row_groups();
        // The ranges a worker takes come in bag order, so each file's rows stay in time order.
        let mut last = i64::MIN;
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let times = batch.column_by_name("log_time_ns").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
            for t in times.values().iter() {
                assert!(*t >= last, "{} is not in time order", part.display());
                last = *t;
            }
            rows += batch.num_rows();
        }
    }
    assert_eq!(rows, 30_000, "300 s of IMU at 100 Hz, each message once");
    assert!(row_groups > parts.len(), "the 8 ranges of 2 workers are row groups of their files ({row_groups} in {} files)", parts.len());
}

#[test]
fn a_metadata_store_that_cannot_be_opened_fails_ingest_before_any_commit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    // The store lives in `_scenes/`; a plain file there cannot hold it.
    std::fs::write(lake.join("_scenes"), b"not a directory").unwrap();
    let bag = manifest_dir().join("sample-bags/drive_c.bag");
    let out = scenes(&["ingest", "--lake", lake.to_str().unwrap(), bag.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metadata store") && stderr.contains("_scenes"), "{stderr}");
    let mut files = Vec::new();
    let mut dirs = vec![lake.join("topics")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    assert!(files.is_empty(), "no commit and no part file left: {files:?}");
}

#[test]
fn a_table_that_cannot_be_written_fails_alone_and_leaves_no_part_file() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let bag = manifest_dir().join("sample-bags/drive_c.bag");
    let args = ["ingest", "--json", "--lake", lake.to_str().unwrap(), bag.to_str().unwrap()];
    let out = scenes_command(&args).env("SCENES_FAIL_AT", "write:imu_data").output().unwrap();
    assert!(out.status.success(), "{}", describe(&args, &out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bag_report = &report["ingested"][0];
    let imu = bag_report["topics"].as_array().unwrap().iter().find(|t| t["topic"] == "/imu/data").unwrap();
    assert_eq!(imu["messages_ingested"], 0);
    let error = imu["first_error"].as_str().unwrap();
    assert!(error.contains("/imu/data") && error.contains("sensor_msgs/Imu") && error.contains("imu_data") && error.contains("failure injected"), "{error}");
    assert!(bag_report["damage"].to_string().contains("imu_data"), "{bag_report}");
    // The other tables are written; the failed one has no file at all (no empty or partial part).
    assert_eq!(partition_rows(&lake.join("topics/vehicle_gps_fix"), &key_of(&bag)), 200);
    let leftovers = data_files(&lake.join("topics/imu_data"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Not recorded as complete: the next run ingests the bag again, and the table this time.
    let again = ingest_json(&bag, &lake, &[]);
    assert_eq!(again["ingested"].as_array().unwrap().len(), 1, "{again}");
    assert_eq!(partition_rows(&lake.join("topics/imu_data"), &key_of(&bag)), 2000);
}
