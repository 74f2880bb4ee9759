//! Other engines read our lakes with their default settings: Apache Spark 3.5 (what EMR runs)
//! and DuckDB read the Parquet files of every table's current Delta snapshot — a lake built
//! from `sample-bags/` (topic tables, `synced`, `enriched`, `scenes`) and one from every shared
//! real bag — and give the same rows and values (tests/py/spark_duckdb.py).

use std::process::Command;

use crate::common::*;

fn java_available() -> bool {
    Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn spark_and_duckdb_read_every_table_with_default_settings_and_agree() {
    if !require("java (for Apache Spark)", java_available()) {
        return;
    }
    let Some(shared) = required_shared_bags() else { return };
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("samples");
    let s = samples.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", s, manifest_dir().join("sample-bags").to_str().unwrap()]);
    run_ok(&["batch", "-q", "--lake", s]);
    let real = dir.path().join("real");
    let msg_path = manifest_dir().join("tests/fixtures/msg");
    run_ok(&["ingest", "-q", "--lake", real.to_str().unwrap(), "--msg-path", msg_path.to_str().unwrap(), shared.to_str().unwrap()]);

    let report_path = dir.path().join("engines.json");
    let out = Command::new(python())
        .arg(py_script("spark_duckdb.py"))
        .args([&report_path, &samples, &real])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert!(report["spark"].as_str().unwrap().starts_with("3.5"), "{}", report["spark"]);
    let tables = report["tables"].as_array().unwrap();
    let read_by_spark = |lake: &str| tables.iter().filter(|t| t["lake"] == lake && t["spark"] == "ok").count();
    // The sample lake: six topic tables and the three derived ones, all with rows.
    assert_eq!(read_by_spark("samples"), 9, "{table}");
    for name in ["synced", "enriched", "scenes", "imu_data"] {
        let entry = tables.iter().find(|t| t["lake"] == "samples" && t["table"] == name).unwrap();
        assert!(entry["rows"].as_u64().unwrap() > 0, "{entry}");
    }
    assert!(read_by_spark("real") >= 20, "{table}");
    assert!(tables.iter().all(|t| t["equal"] == true), "{table}");
}
