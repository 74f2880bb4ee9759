//! `scenes query`: SQL over every lake table with exact Parquet types, output formats, errors
//! and the interactive shell.

use std::io::Write;
use std::process::Stdio;

use crate::common::*;

fn lake_with_samples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = scenes(&["ingest", "-q", "--lake", lake.to_str().unwrap(), manifest_dir().join("sample-bags").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn query(lake: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["query", "--lake", lake.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = scenes(&all);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn counts_per_bag_and_bag_records() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    // A bag is named in SQL by joining its bag record.
    let (ok, out, err) = query(&lake, &["--format", "csv", "SELECT bag_name, count(*) AS n FROM imu_data JOIN bags USING (bag_file) GROUP BY bag_name ORDER BY bag_name"]);
    assert!(ok, "{err}");
    assert_eq!(out, "bag_name,n\ndrive_a,6000\ndrive_b,4500\ndrive_c,2000\ndrive_d,6000\n");
    let (ok, out, err) = query(&lake, &["--format", "csv", "SELECT bag_name, message_count, status FROM bags ORDER BY bag_name"]);
    assert!(ok, "{err}");
    assert_eq!(out, "bag_name,message_count,status\ndrive_a,10800,ingested\ndrive_b,8550,ingested\ndrive_c,3600,ingested\ndrive_d,10800,ingested\n");
    let (ok, out, err) = query(&lake, &["--format", "csv", "SELECT bag_file, source_uri FROM bags WHERE bag_name = 'drive_c'"]);
    assert!(ok, "{err}");
    let source = std::fs::canonicalize(manifest_dir().join("sample-bags/drive_c.bag")).unwrap();
    assert_eq!(out, format!("bag_file,source_uri\n{},{}\n", sample_key("drive_c"), source.display()));
}

#[test]
fn nested_fields_and_exact_types() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    // Timestamps keep nanoseconds; header_stamp equals header.stamp; lists unnest.
    let (ok, out, err) = query(
        &lake,
        &["--format", "json", &format!("SELECT arrow_typeof(min(log_time)) AS t, count(*) AS n, sum(CASE WHEN header_stamp = header['stamp'] THEN 1 ELSE 0 END) AS same FROM vehicle_gps_fix WHERE bag_file = '{}'", sample_key("drive_c"))],
    );
    assert!(ok, "{err}");
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["t"], "Timestamp(ns, \"UTC\")");
    assert_eq!(row["n"], 200);
    assert_eq!(row["same"], 200);
    let (ok, out, err) = query(
        &lake,
        &["--format", "csv", &format!("SELECT d['class_label'] AS class, count(*) AS n FROM (SELECT unnest(detections) AS d FROM perception_rgb_front_detections WHERE bag_file = '{}') GROUP BY 1 ORDER BY 1", sample_key("drive_c"))],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "class,n");
    assert_eq!(lines[1], "car,200", "one car per frame");
    assert!(lines[2].starts_with("person,"));
}

#[test]
fn parquet_output_and_sql_errors() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    let file = dir.path().join("fix.parquet");
    let (ok, _, err) = query(&lake, &["--format", "parquet", "--output", file.to_str().unwrap(), "SELECT latitude, longitude FROM vehicle_gps_fix"]);
    assert!(ok, "{err}");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap().build().unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 600 + 450 + 200 + 600);
    let (ok, _, err) = query(&lake, &["SELECT no_such_column FROM imu_data"]);
    assert!(!ok);
    assert!(err.starts_with("error: SQL:") && err.contains("no_such_column"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, no stack trace: {err}");
}

#[test]
fn shell_reads_statements_from_stdin() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    let mut child = scenes_command(&[])
        .args(["query", "--lake", lake.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"SELECT count(*) AS n\n  FROM vehicle_twist;\n\\q\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| 9250 |"), "{stdout}");
    assert!(stdout.contains("1 rows"), "{stdout}");
}

#[test]
fn count_of_a_whole_table_comes_from_the_delta_log_without_reading_files() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    let (ok, plan, err) = query(&lake, &["--format", "csv", "EXPLAIN SELECT count(*) FROM imu_data"]);
    assert!(ok, "{err}");
    assert!(plan.contains("18500 as count(*)") && !plan.contains("DataSourceExec"), "answered from numRecords: {plan}");
    let (_, n, _) = query(&lake, &["--format", "csv", "SELECT count(*) AS n FROM imu_data"]);
    assert_eq!(n, "n\n18500\n");
    // With a filter the files are read (and pruned to the bag's).
    let (_, plan, _) = query(&lake, &["--format", "csv", &format!("EXPLAIN SELECT count(*) FROM imu_data WHERE bag_file = '{}'", sample_key("drive_c"))]);
    assert!(plan.contains("DataSourceExec"), "{plan}");
}

#[test]
fn bag_file_filters_prune_files_and_keep_results_right() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    let (a, c) = (sample_key("drive_a"), sample_key("drive_c"));
    let (_, one, _) = query(&lake, &["--format", "csv", &format!("SELECT count(*) AS n FROM imu_data WHERE bag_file = '{c}'")]);
    assert_eq!(one, "n\n2000\n");
    let (_, two, _) = query(&lake, &["--format", "csv", &format!("SELECT count(*) AS n FROM imu_data WHERE bag_file IN ('{a}', '{c}')")]);
    assert_eq!(two, "n\n8000\n");
    let (_, none, _) = query(&lake, &["--format", "csv", "SELECT count(*) AS n FROM imu_data WHERE bag_file = 'nope'"]);
    assert_eq!(none, "n\n0\n");
    // Only drive_c's files are scanned.
    let (ok, plan, err) = query(&lake, &["--format", "csv", &format!("EXPLAIN SELECT latitude FROM vehicle_gps_fix WHERE bag_file = '{c}'")]);
    assert!(ok, "{err}");
    assert!(plan.contains(&format!("bag_file={c}")) && !plan.contains(&format!("bag_file={a}")), "{plan}");
}
