//! A lake for a fleet: bags of one name from different places keep their own partitions, a lake
//! of the previous version (bags keyed by name) moves to the new keys on re-ingest, and eight
//! ingest and four batch processes writing one lake at once lose nothing and duplicate nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use scenes::meta::sqlite::SqliteStore;
use scenes::meta::MetaStore;

fn csv(lake: &Path, sql: &str) -> String {
    run_ok(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", sql])
}

/// `scenes ingest -q <extra> --lake <lake> <bags...>`, which must succeed.
fn ingest(lake: &Path, extra: &[&str], bags: &[PathBuf]) {
    let mut args = vec!["ingest", "-q", "--lake", lake.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(bags.iter().map(|b| b.to_str().unwrap()));
    run_ok(&args);
}

/// `sample-bags/<sample>.bag` copied to `<dir>/<folder>/<name>.bag`.
fn copy_sample(dir: &Path, folder: &str, name: &str, sample: &str) -> PathBuf {
    let to = dir.join(folder).join(format!("{name}.bag"));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(manifest_dir().join(format!("sample-bags/{sample}.bag")), &to).unwrap();
    to
}

/// IMU rows and scenes of each bag key: `key → (imu rows, scenes)`.
fn rows_and_scenes_by_key(lake: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let imu = csv(lake, "SELECT bag_file, count(*) AS n FROM imu_data GROUP BY bag_file");
    for line in imu.lines().skip(1) {
        let (key, n) = line.split_once(',').unwrap();
        out.entry(key.to_string()).or_insert((0, 0)).0 = n.parse().unwrap();
    }
    let scenes = csv(lake, "SELECT bag_file, count(*) AS n FROM scenes GROUP BY bag_file");
    for line in scenes.lines().skip(1) {
        let (key, n) = line.split_once(',').unwrap();
        out.entry(key.to_string()).or_insert((0, 0)).1 = n.parse().unwrap();
    }
    out
}

/// IMU rows and scenes per sample drive (drive_a 6000 and 4, drive_c 2000 and 1, drive_d 6000
/// and 5: the sample drives' 100 Hz IMU and their ground-truth scenes).
fn expected_of(sample: &str) -> (u64, u64) {
    match sample {
        "drive_a" => (6000, 4),
        "drive_b" => (4500, 3),
        "drive_c" => (2000, 1),
        "drive_d" => (6000, 5),
        other => panic!("no sample {other}"),
    }
}

#[test]
fn bags_of_one_name_from_different_folders_keep_all_their_rows_and_scenes() {
    let dir = tempfile::tempdir().unwrap();
    // Three vehicles' drive_0, each a different drive.
    let sources = [("vehicle_a/2026-12-01", "drive_a"), ("vehicle_b/2026-12-01", "drive_c"), ("vehicle_a/2026-12-02", "drive_d")];
    let bags: Vec<PathBuf> = sources.iter().map(|(folder, sample)| copy_sample(dir.path(), folder, "drive_0", sample)).collect();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    ingest(&lake, &[], &bags);
    run_ok(&["batch", "--all", "-q", "--lake", l]);
    let expected: BTreeMap<String, (u64, u64)> = bags.iter().zip(&sources).map(|(bag, (_, sample))| (key_of(bag), expected_of(sample))).collect();
    assert_eq!(expected.len(), 3, "three keys for three sources of one name");
    assert_eq!(rows_and_scenes_by_key(&lake), expected);
    // Scene ids carry the key, so they do not collide either; the store has every scene.
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let scenes = store.list_scenes().unwrap();
    assert_eq!(scenes.len(), 4 + 1 + 5);
    let ids: std::collections::BTreeSet<&str> = scenes.iter().map(|s| s.scene_id.as_str()).collect();
    assert_eq!(ids.len(), scenes.len(), "scene ids are unique");
    let records = store.list_bags().unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.bag_name == "drive_0"), "{records:?}");
    // The same sources again (forced): the same keys, replaced, never duplicated.
    ingest(&lake, &["--force"], &bags);
    run_ok(&["batch", "--all", "-q", "--lake", l]);
    assert_eq!(rows_and_scenes_by_key(&lake), expected);
    // `--bag` with the shared name selects all three; with a path, one.
    let synced = run_ok(&["sync", "--lake", l, "--bag", "drive_0"]);
    assert_eq!(synced.lines().filter(|l| l.contains("ticks")).count(), 3, "{synced}");
    let one = run_ok(&["sync", "--lake", l, "--bag", bags[1].to_str().unwrap()]);
    assert!(one.starts_with(&key_of(&bags[1])) && one.lines().count() == 1, "{one}");
}

#[test]
fn a_lake_keyed_by_bag_name_moves_to_the_new_keys_when_its_bags_are_ingested_again() {
    use scenes::lake::delta;
    let dir = tempfile::tempdir().unwrap();
    let bag = copy_sample(dir.path(), "bags", "drive_c", "drive_c");
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, bag.to_str().unwrap()]);
    // Make it what the previous version wrote: the bag's partition named `drive_c`, its record
    // keyed so and without a source version.
    let key = key_of(&bag);
    let imu = lake.join("topics/imu_data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let location = scenes::lake::location::TableLocation::local(&imu).unwrap();
    let files = rt.block_on(delta::partition_files(&location, &key)).unwrap();
    std::fs::create_dir_all(imu.join("bag_file=drive_c")).unwrap();
    let mut old_parts = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let relative_path = format!("bag_file=drive_c/part-old-{i}.parquet");
        std::fs::copy(imu.join(&f.relative_path), imu.join(&relative_path)).unwrap();
        old_parts.push(scenes::lake::parquet::PartFile { relative_path, size: f.size, rows: 0, log_time_range: None });
    }
    let fields = rt.block_on(delta::arrow_fields(&location)).unwrap().unwrap();
    let schema = delta::TableSchema::of(&fields).unwrap();
    rt.block_on(delta::replace_partition(&location, "imu_data", &schema, "drive_c", &old_parts, true)).unwrap();
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let mut record = store.list_bags().unwrap().remove(0);
    record.bag_file = "drive_c".into();
    record.bag_name = String::new();
    record.source_version = None;
    store.put_bag(&record).unwrap();
    drop(store);
    assert_eq!(partition_rows(&imu, "drive_c"), 4000, "the old partition and the new one");

    // An old record has no source version: the bag is ingested again, and its commit removes
    // the old partition.
    run_ok(&["ingest", "-q", "--lake", l, bag.to_str().unwrap()]);
    let by_key = csv(&lake, "SELECT bag_file, count(*) AS n FROM imu_data GROUP BY bag_file");
    assert_eq!(by_key, format!("bag_file,n\n{key},2000\n"));
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let records = store.list_bags().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].bag_file.as_str(), records[0].name()), (key.as_str(), "drive_c"));
}

/// Generated short drives `<dir>/bags/drive_<i>.bag`.
fn generated_drives(dir: &Path, count: usize, duration_s: u32) -> Vec<PathBuf> {
    let bags = dir.join("bags");
    std::fs::create_dir_all(&bags).unwrap();
    (0..count)
        .map(|i| {
            let bag = bags.join(format!("drive_{i:02}.bag"));
            run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", &duration_s.to_string(), "--seed", &(i + 1).to_string()]);
            bag
        })
        .collect()
}

/// Runs `scenes <args>` in `processes` processes at once (each its own arguments); returns each
/// one's stderr after checking it succeeded.
fn run_at_once(all_args: Vec<Vec<String>>, env: &[(&str, &str)]) -> Vec<String> {
    let outputs = std::thread::scope(|s| {
        let handles: Vec<_> = all_args
            .iter()
            .map(|args| {
                s.spawn(move || {
                    let mut command = scenes_command(&[]);
                    command.args(args);
                    for (k, v) in env {
                        command.env(k, v);
                    }
                    command.output().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    outputs
        .into_iter()
        .zip(&all_args)
        .map(|(out, args)| {
            assert!(out.status.success(), "scenes {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .collect()
}

/// Every commit of a local Delta table, in version order: (version, its `commitInfo`).
pub fn commit_infos(table: &Path) -> Vec<(u64, serde_json::Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(table.join("_delta_log")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(version) = name.strip_suffix(".json").and_then(|v| v.parse::<u64>().ok()) else { continue };
        let text = std::fs::read_to_string(&path).unwrap();
        let info = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v.get("commitInfo").cloned())
            .unwrap_or_default();
        out.push((version, info));
    }
    out.sort_by_key(|(v, _)| *v);
    out
}

/// (commits that found other writers' commits since their read, retries after losing a version
/// race) in the `concurrent commits` lines of a process's log.
fn concurrent_commits(log: &str) -> (usize, u64) {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("concurrent commits:")).collect();
    let retries = lines
        .iter()
        .filter_map(|l| l.split("retries=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    (lines.len(), retries)
}

#[test]
fn eight_ingest_and_four_batch_processes_at_once_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bags = generated_drives(dir.path(), 16, 20);
    // The lake built one process at a time, to compare with.
    let serial = dir.path().join("serial");
    let s = serial.to_str().unwrap();
    ingest(&serial, &[], &bags);
    run_ok(&["batch", "--all", "-q", "--lake", s]);

    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap().to_string();
    // A fresh lake: the processes race on creating the store and every table, and after.
    let ingests: Vec<Vec<String>> = bags
        .chunks(2)
        .map(|two| {
            let mut args: Vec<String> = ["ingest", "-q", "--lake", &l].iter().map(|s| s.to_string()).collect();
            args.extend(two.iter().map(|b| b.to_str().unwrap().to_string()));
            args
        })
        .collect();
    assert_eq!(ingests.len(), 8);
    let log_commits = [("RUST_LOG", "scenes::lake::delta=info")];
    let logs = run_at_once(ingests, &log_commits);
    let (ingest_checked, ingest_retries) = logs.iter().map(|l| concurrent_commits(l)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let batches: Vec<Vec<String>> = (0..4).map(|_| ["batch", "--all", "-q", "--batch-size", "2", "--lake", &l].iter().map(|s| s.to_string()).collect()).collect();
    let logs = run_at_once(batches, &log_commits);
    let (batch_checked, batch_retries) = logs.iter().map(|l| concurrent_commits(l)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

    // Every bag's rows exactly once, the same rows as the serial lake (read by Python deltalake).
    let expected = rows_and_scenes_by_key(&serial);
    assert_eq!(expected.len(), 16);
    assert_eq!(rows_and_scenes_by_key(&lake), expected);
    assert_eq!(lake_digest(&lake), lake_digest(&serial), "every table's rows equal the serial lake's");
    // Every commit kept: versions 0..n without a gap; each process committed each topic table
    // once (its two bags together), so the topic tables have 8 commits.
    for table in std::fs::read_dir(lake.join("topics")).unwrap() {
        let table = table.unwrap().path();
        let infos = commit_infos(&table);
        let versions: Vec<u64> = infos.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>(), "{}: a gap in the log", table.display());
        assert_eq!(versions.len(), 8, "{}: one commit per process", table.display());
    }
    // Each bag was processed by exactly one batch.
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let mut processed: BTreeMap<String, usize> = BTreeMap::new();
    for batch in store.list_batches().unwrap() {
        assert_eq!(batch.status, "done", "{batch:?}");
        for bag in batch.bags {
            *processed.entry(bag).or_default() += 1;
        }
    }
    assert_eq!(processed.len(), 16);
    assert!(processed.values().all(|&n| n == 1), "{processed:?}");
    for table in ["synced", "enriched", "scenes"] {
        let infos = commit_infos(&lake.join(table));
        let versions: Vec<u64> = infos.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>(), "{table}: a gap in the log");
    }
    // Eight writers at once do meet: some commits find others' commits since their read.
    assert!(ingest_checked > 0, "no ingest commit met another writer's");
    println!(
        "8 ingest processes: {ingest_checked} commits checked against other writers' commits, {ingest_retries} retries; \
         4 batch processes: {batch_checked} checked, {batch_retries} retries"
    );
}

/// Active files per partition of a local table.
fn files_per_partition(table: &Path) -> BTreeMap<String, usize> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let location = scenes::lake::location::TableLocation::local(table).unwrap();
    let mut out = BTreeMap::new();
    for f in rt.block_on(scenes::lake::delta::active_files(&location)).unwrap() {
        *out.entry(f.bag_file.unwrap_or_default()).or_default() += 1;
    }
    out
}

#[test]
fn optimize_compacts_each_partition_keeps_rows_and_types_while_readers_run_and_vacuum_then_frees_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    // Uncompressed, a 120 s drive is large enough for two ingest workers (one per 4 MiB).
    let bags: Vec<PathBuf> = (0..2)
        .map(|i| {
            let bag = dir.path().join(format!("drive_{i:02}.bag"));
            run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "120", "--seed", &(i + 1).to_string(), "--compression", "none"]);
            bag
        })
        .collect();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    // Two workers write two files per table and bag.
    ingest(&lake, &["--threads", "2"], &bags);
    let imu = lake.join("topics/imu_data");
    let before = files_per_partition(&imu);
    assert!(before.values().all(|&n| n == 2), "{before:?}");
    let rows_before = lake_digest(&lake);
    let sql = "SELECT bag_file, count(*) AS n, min(linear_acceleration['x']) AS amin, max(linear_acceleration['x']) AS amax, min(log_time) AS t0, max(log_time) AS t1, min(log_time_ns) AS ns0, max(log_time_ns) AS ns1, arrow_typeof(min(log_time)) AS t FROM imu_data GROUP BY bag_file ORDER BY bag_file";
    let answer_before = csv(&lake, sql);

    // Readers query while optimize runs; every read succeeds with the same answer.
    let answers = std::thread::scope(|s| {
        let reader = s.spawn(|| (0..6).map(|_| csv(&lake, sql)).collect::<Vec<_>>());
        let report: serde_json::Value = serde_json::from_str(&run_ok(&["optimize", "--json", "--lake", l])).unwrap();
        assert_eq!(report["tables"]["imu_data"]["files_removed"], 4, "{report}");
        assert_eq!(report["tables"]["imu_data"]["files_added"], 2, "{report}");
        reader.join().unwrap()
    });
    assert!(answers.iter().all(|a| *a == answer_before), "{answers:?}");
    let after = files_per_partition(&imu);
    assert!(after.values().all(|&n| n == 1), "{after:?}");
    assert_eq!(csv(&lake, sql), answer_before, "same rows, same types, same exact times");
    assert!(answer_before.contains("Timestamp(µs"), "{answer_before}");
    assert_eq!(lake_digest(&lake), rows_before, "Python deltalake reads the same rows");
    // The commit is an OPTIMIZE without data change.
    let infos = commit_infos(&imu);
    assert_eq!(infos.last().unwrap().1["operation"], "OPTIMIZE");
    // Nothing left to compact: a second run changes nothing.
    let again: serde_json::Value = serde_json::from_str(&run_ok(&["optimize", "--json", "--lake", l])).unwrap();
    assert_eq!(again["tables"]["imu_data"]["files_removed"], 0, "{again}");
    // Vacuum then removes the replaced files; the rows stay.
    let vacuum: serde_json::Value = serde_json::from_str(&run_ok(&["vacuum", "--json", "--retain-hours", "0", "--lake", l])).unwrap();
    assert_eq!(vacuum["tables"]["topics/imu_data"]["removed"].as_array().map(Vec::len), Some(4), "{vacuum}");
    assert_eq!(csv(&lake, sql), answer_before);
}
