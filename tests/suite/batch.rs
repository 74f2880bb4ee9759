//! `scenes batch`: claims are atomic (two processes at once over 6 bags process each bag
//! exactly once), re-runs are idempotent, re-ingested bags are processed again, and scenes land
//! in the `scenes` table and the metadata store; the reference rule's scenes are asserted too.

use std::collections::HashMap;
use std::path::Path;

use crate::common::*;
use scenes::meta::{sqlite::SqliteStore, MetaStore};

fn six_bag_lake(dir: &Path) -> std::path::PathBuf {
    let bags = dir.join("bags");
    std::fs::create_dir_all(&bags).unwrap();
    for b in sample_bags() {
        std::fs::copy(&b, bags.join(b.file_name().unwrap())).unwrap();
    }
    std::fs::copy(manifest_dir().join("sample-bags/drive_c.bag"), bags.join("drive_e.bag")).unwrap();
    std::fs::copy(manifest_dir().join("sample-bags/drive_c.bag"), bags.join("drive_f.bag")).unwrap();
    let lake = dir.join("lake");
    let out = scenes(&["ingest", "-q", "--lake", lake.to_str().unwrap(), bags.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    lake
}

fn csv(lake: &Path, sql: &str) -> String {
    let out = scenes(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", sql]);
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn two_concurrent_batch_processes_process_each_bag_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = six_bag_lake(dir.path());
    let spawn = || {
        scenes_command(&[])
            .args(["batch", "--all", "--json", "--lake", lake.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for batch in store.list_batches().unwrap() {
        assert_eq!(batch.status, "done", "{batch:?}");
        for bag in batch.bags {
            *seen.entry(bag).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 6, "every bag processed: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "no bag processed twice: {seen:?}");
    // drive_e and drive_f are copies of drive_c: same scenes, their own ids.
    assert_eq!(csv(&lake, "SELECT bag_name, count(*) AS n FROM scenes JOIN bags USING (bag_file) GROUP BY bag_name ORDER BY bag_name"),
        "bag_name,n\ndrive_a,4\ndrive_b,3\ndrive_c,1\ndrive_d,5\ndrive_e,1\ndrive_f,1\n");
}

#[test]
fn rerun_is_idempotent_and_reingest_reprocesses() {
    let dir = tempfile::tempdir().unwrap();
    let lake = six_bag_lake(dir.path());
    let l = lake.to_str().unwrap();
    // batch_size 2 without --all: three full batches, nothing left.
    assert!(scenes(&["batch", "--lake", l]).status.success());
    let counts = "SELECT (SELECT count(*) FROM synced) AS synced, (SELECT count(*) FROM enriched) AS enriched, (SELECT count(*) FROM scenes) AS scenes, (SELECT count(*) FROM batches) AS batches";
    let first = csv(&lake, counts);
    let again = scenes(&["batch", "--all", "--lake", l]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert_eq!(csv(&lake, counts), first, "a second run changes nothing");
    // Re-ingesting a bag makes it wait for a batch again; processing it replaces its rows.
    let bag = dir.path().join("bags/drive_c.bag");
    assert!(scenes(&["ingest", "-q", "--force", "--lake", l, bag.to_str().unwrap()]).status.success());
    assert!(scenes(&["batch", "--all", "--lake", l]).status.success());
    let after = csv(&lake, counts);
    let field = |s: &str, i: usize| s.lines().nth(1).unwrap().split(',').nth(i).unwrap().to_string();
    for i in 0..3 {
        assert_eq!(field(&after, i), field(&first, i), "rows unchanged after re-processing: {first} vs {after}");
    }
    assert_eq!(field(&after, 3).parse::<u32>().unwrap(), field(&first, 3).parse::<u32>().unwrap() + 1);
    let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
    assert_eq!(store.list_scenes().unwrap().len(), 4 + 3 + 1 + 5 + 1 + 1);
}

#[test]
fn detect_report_scores_both_rules() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    let bags = manifest_dir().join("sample-bags");
    assert!(scenes(&["ingest", "-q", "--lake", l, bags.to_str().unwrap()]).status.success());
    assert!(scenes(&["sync", "-q", "--lake", l]).status.success());
    // The default configuration, and the replaced pipeline's scene semantics (no gap bridging),
    // one setting away.
    let reference_semantics = dir.path().join("reference.json");
    std::fs::write(&reference_semantics, r#"{"detect": {"max_gap_ms": 0}}"#).unwrap();
    let mut reference_totals = Vec::new();
    for config in [None, Some(reference_semantics.to_str().unwrap())] {
        let mut args = vec!["detect", "--report", "--json", "--lake", l];
        if let Some(c) = config {
            args.splice(0..0, ["--config", c]);
        }
        let out = scenes(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut reference_counts = Vec::new();
        for r in reports.as_array().unwrap() {
            let q = &r["quality"];
            assert_eq!(q["ego_footprint"]["precision"], 1.0, "{r}");
            assert_eq!(q["ego_footprint"]["recall"], 1.0);
            assert_eq!(q["ego_footprint"]["exact"], q["ego_footprint"]["truth"]);
            reference_counts.push((scenes::lake::name_of_key(r["bag_file"].as_str().unwrap()).to_string(), q["reference"]["found"].as_u64().unwrap()));
            if config.is_some() {
                // The reference rule adds false scenes (the sidewalk walker).
                assert!(q["reference"]["precision"].as_f64().unwrap() < 1.0, "{r}");
            }
        }
        reference_counts.sort();
        reference_totals.push(reference_counts.iter().map(|(_, n)| n).sum::<u64>());
        if config.is_some() {
            let expected: Vec<(String, u64)> = [("drive_a", 10), ("drive_b", 6), ("drive_c", 4), ("drive_d", 8)].iter().map(|(b, n)| (b.to_string(), *n)).collect();
            assert_eq!(reference_counts, expected);
        }
    }
    // Bridged, the reference rule's scenes (the sidewalk walker is seen in lane on and off)
    // run together into fewer.
    assert!(reference_totals[0] < reference_totals[1], "{reference_totals:?}");
}

#[test]
fn unchanged_bags_are_skipped_changed_and_forced_ones_ingested_and_batched_again() {
    let dir = tempfile::tempdir().unwrap();
    let lake = six_bag_lake(dir.path());
    let l = lake.to_str().unwrap();
    let bags = dir.path().join("bags");
    run_ok(&["batch", "--all", "--lake", l]);
    let versions = |lake: &std::path::Path| -> Vec<(String, Option<String>, String)> {
        let store = SqliteStore::open(&lake.join("_scenes/metadata.sqlite")).unwrap();
        store.list_bags().unwrap().into_iter().map(|b| (b.bag_file, b.source_version, b.ingested_at)).collect()
    };
    let before = versions(&lake);
    assert!(before.iter().all(|(_, v, _)| v.as_deref().is_some_and(|v| v.starts_with("size=") && v.contains("mtime_ns="))), "{before:?}");
    // The same folder again: nothing read, nothing written, nothing to batch.
    let out: serde_json::Value = serde_json::from_str(&run_ok(&["ingest", "--json", "--lake", l, bags.to_str().unwrap()])).unwrap();
    assert_eq!(out["ingested"].as_array().map(Vec::len), Some(0), "{out}");
    assert_eq!(out["skipped"].as_array().map(Vec::len), Some(6), "{out}");
    assert_eq!(versions(&lake), before, "no bag record was rewritten");
    let text = run_ok(&["ingest", "--lake", l, bags.to_str().unwrap()]);
    assert!(text.contains("skipped 6 unchanged bags"), "{text}");
    assert!(run_ok(&["batch", "--all", "--lake", l]).contains("nothing to do"));
    // A bag rewritten in place (new mtime) is ingested again and waits for a batch; --force
    // ingests an unchanged one too.
    let changed = bags.join("drive_b.bag");
    let bytes = std::fs::read(&changed).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&changed, bytes).unwrap();
    let out: serde_json::Value = serde_json::from_str(&run_ok(&["ingest", "--json", "--lake", l, bags.to_str().unwrap()])).unwrap();
    let ingested: Vec<&str> = out["ingested"].as_array().unwrap().iter().filter_map(|r| r["bag_name"].as_str()).collect();
    assert_eq!(ingested, vec!["drive_b"], "{out}");
    let forced: serde_json::Value = serde_json::from_str(&run_ok(&["ingest", "--json", "--force", "--lake", l, bags.join("drive_a.bag").to_str().unwrap()])).unwrap();
    assert_eq!(forced["ingested"].as_array().map(Vec::len), Some(1), "{forced}");
    let batched: serde_json::Value = serde_json::from_str(&run_ok(&["batch", "--all", "--json", "--lake", l])).unwrap();
    let mut rebatched: Vec<String> = batched.as_array().unwrap().iter().flat_map(|b| b["bags"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string())).collect();
    rebatched.sort();
    assert_eq!(rebatched.len(), 2, "only the changed and the forced bag are batched again: {rebatched:?}");
    assert!(rebatched[0].ends_with("drive_a.bag") && rebatched[1].ends_with("drive_b.bag"), "{rebatched:?}");
}
