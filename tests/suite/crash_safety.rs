//! Crash-safe re-runs: `scenes ingest` and `scenes batch` are killed with SIGKILL at several
//! steps (pause points, see `src/failpoint.rs`, and plain timed kills), then re-run; the lake
//! must then equal the lake of a clean run (tables read with the `deltalake` Python package,
//! scenes and bag records from the metadata store). While a process is paused, a reader must
//! see every table's bag partition either whole or absent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const BAGS: [&str; 2] = ["sample-bags/drive_c.bag", "sample-bags/drive_d.bag"];

fn bag_paths() -> Vec<String> {
    BAGS.iter().map(|b| manifest_dir().join(b).to_string_lossy().into_owned()).collect()
}

fn run_ok(args: &[&str]) {
    let out = scenes(args);
    assert!(out.status.success(), "scenes {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ingest_args(lake: &Path) -> Vec<String> {
    let mut args = vec!["ingest".to_string(), "--lake".into(), lake.to_string_lossy().into_owned()];
    args.extend(bag_paths());
    args
}

fn batch_args(lake: &Path) -> Vec<String> {
    vec!["batch".into(), "--all".into(), "--lake".into(), lake.to_string_lossy().into_owned()]
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Table → bag → [rows, digest], from the independent Delta reader.
fn digest(lake: &Path) -> BTreeMap<String, BTreeMap<String, Value>> {
    serde_json::from_value(lake_digest(lake)).unwrap()
}

/// Bag records without timings and paths, and scenes, as the metadata store has them.
fn metadata(lake: &Path) -> (Vec<Value>, Vec<Value>) {
    use scenes::meta::MetaStore;
    let store = scenes::meta::sqlite::SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let bags = store
        .list_bags()
        .unwrap()
        .into_iter()
        .map(|mut b| {
            b.ingest_seconds = 0.0;
            b.ingested_at.clear();
            // Each lake records itself; the comparison is between two lakes.
            b.lake = None;
            serde_json::to_value(b).unwrap()
        })
        .collect();
    let scenes = store.list_scenes().unwrap().into_iter().map(|s| serde_json::to_value(s).unwrap()).collect();
    (bags, scenes)
}

/// The lake of an uninterrupted ingest + batch.
fn clean_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("clean");
    run_ok(&as_strs(&ingest_args(&lake)));
    run_ok(&as_strs(&batch_args(&lake)));
    lake
}

/// Starts `scenes args` paused at `point`, waits until it says so, checks what a reader sees,
/// then kills it with SIGKILL.
fn kill_at(args: &[String], point: &str, check_while_paused: impl FnOnce()) {
    let mut child = scenes_command(&[])
        .args(args)
        .env("SCENES_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains(&format!("paused at {point}")) {
            reached = true;
            break;
        }
    }
    assert!(reached, "scenes {args:?} never reached pause point {point}");
    check_while_paused();
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the paused process was killed by SIGKILL");
}

/// Every table's partition of every bag is either absent or has exactly the clean run's rows.
fn assert_no_half_partitions(lake: &Path, clean: &BTreeMap<String, BTreeMap<String, Value>>) {
    if !lake.exists() {
        return;
    }
    for (table, bags) in digest(lake) {
        for (bag, got) in bags {
            let want = clean.get(&table).and_then(|t| t.get(&bag));
            assert_eq!(Some(&got), want, "table {table}, bag {bag}: a reader sees a partition that differs from a complete one");
        }
    }
}

fn assert_same_lake(lake: &Path, clean: &Path, clean_digest: &BTreeMap<String, BTreeMap<String, Value>>, what: &str) {
    assert_eq!(&digest(lake), clean_digest, "{what}: tables differ from a clean run");
    assert_eq!(metadata(lake), metadata(clean), "{what}: bag records or scenes differ from a clean run");
}

#[test]
fn ingest_killed_at_each_step_then_rerun_equals_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_lake(dir.path());
    let clean_digest = digest(&clean);
    assert!(clean_digest.len() > 5, "the clean lake has topic and derived tables");
    for (i, point) in ["ingest:parts-written", "ingest:committed-1", "ingest:committed-3"].iter().enumerate() {
        let lake = dir.path().join(format!("killed-ingest-{i}"));
        // Killed during the first ingest of the bags ...
        kill_at(&ingest_args(&lake), point, || assert_no_half_partitions(&lake, &clean_digest));
        run_ok(&as_strs(&ingest_args(&lake)));
        // ... and during a forced re-ingest over a complete lake (unchanged bags are skipped
        // otherwise).
        let mut forced = ingest_args(&lake);
        forced.push("--force".into());
        kill_at(&forced, point, || assert_no_half_partitions(&lake, &clean_digest));
        run_ok(&as_strs(&forced));
        run_ok(&as_strs(&batch_args(&lake)));
        assert_same_lake(&lake, &clean, &clean_digest, &format!("ingest killed at {point}"));
    }
}

#[test]
fn batch_killed_at_each_step_then_rerun_equals_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_lake(dir.path());
    let clean_digest = digest(&clean);
    for (i, point) in ["batch:claimed", "batch:synced", "batch:processed"].iter().enumerate() {
        let lake = dir.path().join(format!("killed-batch-{i}"));
        run_ok(&as_strs(&ingest_args(&lake)));
        kill_at(&batch_args(&lake), point, || assert_no_half_partitions(&lake, &clean_digest));
        // The killed batch's claims must not block the re-run.
        run_ok(&as_strs(&batch_args(&lake)));
        assert_same_lake(&lake, &clean, &clean_digest, &format!("batch killed at {point}"));
        use scenes::meta::MetaStore;
        let store = scenes::meta::sqlite::SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
        let statuses: Vec<String> = store.list_batches().unwrap().into_iter().map(|b| b.status).collect();
        assert!(statuses.iter().any(|s| s == "abandoned"), "the killed batch is marked abandoned: {statuses:?}");
        assert!(statuses.iter().all(|s| s == "abandoned" || s == "done"), "{statuses:?}");
    }
}

#[test]
fn runs_killed_at_arbitrary_times_then_rerun_equal_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_lake(dir.path());
    let clean_digest = digest(&clean);
    for (i, delay_ms) in [150u64, 400, 900].iter().enumerate() {
        let lake = dir.path().join(format!("timed-{i}"));
        for args in [ingest_args(&lake), batch_args(&lake)] {
            kill_after(&args, *delay_ms);
            run_ok(&as_strs(&args));
        }
        assert_same_lake(&lake, &clean, &clean_digest, &format!("killed after {delay_ms} ms"));
    }
}

/// Starts `scenes args` and kills it with SIGKILL after `delay_ms`. A run that finished before
/// then (or between the check and the kill) is started again with half the delay, down to an
/// immediate kill, so that every call really kills a running process: it returns only once
/// SIGKILL ended the run.
fn kill_after(args: &[String], delay_ms: u64) {
    use std::os::unix::process::ExitStatusExt;
    let mut delay = delay_ms;
    loop {
        let mut child = scenes_command(&[]).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            // It may still have finished between the check and the kill: then try sooner.
            if child.wait().unwrap().signal() == Some(9) {
                return;
            }
        }
        assert!(delay > 0, "scenes {args:?} was never killed by SIGKILL: it finished before an immediate kill");
        delay /= 2;
    }
}

/// A kill while a table is being created can leave its `_delta_log/` without any commit (the
/// directory alone, or with a temporary file). The re-run must create such tables, not refuse
/// the lake.
#[test]
fn table_logs_without_commits_are_created_by_the_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_lake(dir.path());
    let clean_digest = digest(&clean);
    let lake = dir.path().join("half-created");
    for table in clean_digest.keys() {
        let log = lake.join(table).join("_delta_log");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(log.join("_commit_3f2a.json.tmp"), b"{\"commitInfo\":").unwrap();
    }
    run_ok(&as_strs(&ingest_args(&lake)));
    run_ok(&as_strs(&batch_args(&lake)));
    assert_same_lake(&lake, &clean, &clean_digest, "tables whose logs held no commit");
}


#[test]
fn vacuum_removes_the_part_files_of_a_killed_ingest_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_lake(dir.path());
    let clean_digest = digest(&clean);
    let lake = dir.path().join("vacuumed");
    run_ok(&as_strs(&ingest_args(&lake)));
    run_ok(&as_strs(&batch_args(&lake)));
    let committed = data_files(&lake);
    // A forced re-ingest killed after writing its part files, before any commit.
    let mut forced = ingest_args(&lake);
    forced.push("--force".into());
    kill_at(&forced, "ingest:parts-written", || {});
    let left_behind: Vec<PathBuf> = data_files(&lake).into_iter().filter(|f| !committed.contains(f)).collect();
    assert!(!left_behind.is_empty(), "the killed ingest left uncommitted part files");
    let l = lake.to_str().unwrap();
    // Younger than the retention window: kept.
    let kept: serde_json::Value = serde_json::from_str(&crate::common::run_ok(&["vacuum", "--json", "--lake", l])).unwrap();
    let kept_recent: u64 = kept["tables"].as_object().unwrap().values().map(|t| t["kept_recent"].as_u64().unwrap()).sum();
    assert_eq!(kept_recent as usize, left_behind.len(), "{kept}");
    assert_eq!(data_files(&lake).len(), committed.len() + left_behind.len());
    // A dry run lists exactly them; a real run removes exactly them.
    let dry = crate::common::run_ok(&["vacuum", "--dry-run", "--retain-hours", "0", "--lake", l]);
    assert!(dry.contains(&format!("would remove {} unreferenced files", left_behind.len())), "{dry}");
    assert_eq!(data_files(&lake).len(), committed.len() + left_behind.len(), "a dry run removes nothing");
    let real = crate::common::run_ok(&["vacuum", "--retain-hours", "0", "--lake", l]);
    assert!(real.contains(&format!("removed {} unreferenced files", left_behind.len())), "{real}");
    assert_eq!(data_files(&lake), committed, "every committed file stays");
    assert_same_lake(&lake, &clean, &clean_digest, "after vacuum");
    assert!(run_exit(&["vacuum", "--retain-hours=-1", "--lake", l], 2).contains("--retain-hours"));
}
