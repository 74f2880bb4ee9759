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
    // Times are µs timestamps with their exact nanoseconds beside them (`_ns`), at every
    // depth; header_stamp equals header.stamp; lists unnest.
    let (ok, out, err) = query(
        &lake,
        &["--format", "json", &format!(
            "SELECT arrow_typeof(min(log_time)) AS t, arrow_typeof(min(log_time_ns)) AS t_ns, count(*) AS n, \
             sum(CASE WHEN header_stamp = header['stamp'] AND header_stamp_ns = header['stamp_ns'] THEN 1 ELSE 0 END) AS same, \
             sum(CASE WHEN CAST(log_time AS BIGINT) = log_time_ns / 1000 THEN 1 ELSE 0 END) AS floored \
             FROM vehicle_gps_fix WHERE bag_file = '{}'",
            sample_key("drive_c")
        )],
    );
    assert!(ok, "{err}");
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["t"], "Timestamp(µs, \"UTC\")");
    assert_eq!(row["t_ns"], "Int64");
    assert_eq!(row["n"], 200);
    assert_eq!(row["same"], 200);
    assert_eq!(row["floored"], 200, "the µs timestamp is the exact time floored");
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

/// Athena (Trino) SQL that must run unchanged: each function against an example of Trino's
/// documentation, or its documented semantics, with the value Trino gives.
#[test]
fn trino_functions_answer_as_trino_does() {
    let dir = lake_with_samples();
    let lake = dir.path().join("lake");
    let cases: &[(&str, &str)] = &[
        ("date_diff('second', TIMESTAMP '2020-03-01 00:00:00', TIMESTAMP '2020-03-02 00:00:00')", "86400"),
        ("date_diff('hour', TIMESTAMP '2020-03-01 00:00:00', TIMESTAMP '2020-03-02 00:00:00')", "24"),
        ("date_diff('day', DATE '2020-03-01', DATE '2020-03-02')", "1"),
        ("date_diff('second', TIMESTAMP '2020-06-01 12:30:45.000000000', TIMESTAMP '2020-06-02 12:30:45.123456789')", "86400"),
        ("date_diff('millisecond', TIMESTAMP '2020-06-01 12:30:45.000000000', TIMESTAMP '2020-06-02 12:30:45.123456789')", "86400123"),
        ("date_diff('month', TIMESTAMP '2020-01-31 00:00:00', TIMESTAMP '2020-03-30 00:00:00')", "1"),
        ("date_diff('year', TIMESTAMP '2021-03-15 00:00:00', TIMESTAMP '2020-03-15 00:00:00')", "-1"),
        ("format_datetime(date_add('second', 86, TIMESTAMP '2020-03-01 00:00:00'), 'yyyy-MM-dd HH:mm:ss')", "2020-03-01 00:01:26"),
        ("format_datetime(date_add('hour', 9, TIMESTAMP '2020-03-01 00:00:00'), 'yyyy-MM-dd HH:mm:ss')", "2020-03-01 09:00:00"),
        ("format_datetime(date_add('day', -1, TIMESTAMP '2020-03-01 00:00:00'), 'yyyy-MM-dd HH:mm:ss')", "2020-02-29 00:00:00"),
        ("format_datetime(date_add('month', 1, TIMESTAMP '2020-01-31 00:00:00'), 'yyyy-MM-dd')", "2020-02-29"),
        ("to_unixtime(TIMESTAMP '1970-01-01 00:00:01.5')", "1.5"),
        ("to_iso8601(TIMESTAMP '2020-06-10 15:55:23.383')", "2020-06-10T15:55:23.383"),
        ("format_datetime(TIMESTAMP '2020-03-01 12:34:56', 'EEE, d MMM yyyy h:mm a')", "\"Sun, 1 Mar 2020 12:34 PM\""),
        ("json_extract_scalar('{\"store\":{\"book\":[{\"author\":\"Nigel Rees\"}]}}', '$.store.book[0].author')", "Nigel Rees"),
        ("json_extract_scalar('[1, 2, 3]', '$[2]')", "3"),
        ("json_extract_scalar('{\"a\":{\"b\":1}}', '$.a') IS NULL", "true"),
        ("element_at(ARRAY[1, 2, 3], 2)", "2"),
        ("element_at(ARRAY[1, 2, 3], -1)", "3"),
        ("element_at(ARRAY[1, 2, 3], 4) IS NULL", "true"),
        ("element_at(MAP(['a', 'b'], [1, 2]), 'b')", "2"),
        ("contains(ARRAY[1, 2, 3], 2)", "true"),
        ("contains(ARRAY['a', 'b'], 'c')", "false"),
        ("contains('scenes', 'cen')", "true"),
        ("date_format(TIMESTAMP '2001-01-09 13:04:05.321', '%Y-%m-%d %H:%i:%s')", "2001-01-09 13:04:05"),
        ("date_format(TIMESTAMP '2001-01-09 13:04:05.321', '%c/%e/%y %l:%i %p %f')", "1/9/01 1:04 PM 321000"),
        ("year(TIMESTAMP '2001-08-22 03:04:05.321')", "2001"),
        ("quarter(TIMESTAMP '2001-08-22 03:04:05.321')", "3"),
        ("month(TIMESTAMP '2001-08-22 03:04:05.321')", "8"),
        ("week(TIMESTAMP '2001-08-22 03:04:05.321')", "34"),
        ("day(TIMESTAMP '2001-08-22 03:04:05.321')", "22"),
        ("day_of_week(TIMESTAMP '2001-08-22 03:04:05.321')", "3"),
        ("day_of_year(TIMESTAMP '2001-08-22 03:04:05.321')", "234"),
        ("hour(TIMESTAMP '2001-08-22 03:04:05.321')", "3"),
        ("minute(TIMESTAMP '2001-08-22 03:04:05.321')", "4"),
        ("second(TIMESTAMP '2001-08-22 03:04:05.321')", "5"),
        ("millisecond(TIMESTAMP '2001-08-22 03:04:05.321')", "321"),
        ("arrow_typeof(year(TIMESTAMP '2001-08-22 03:04:05.321'))", "Int64"),
        ("array_join(split('a.b.c', '.'), '|')", "a|b|c"),
        ("array_join(slice(ARRAY[1, 2, 3, 4], 2, 2), '|')", "2|3"),
        ("array_join(slice(ARRAY[1, 2, 3, 4], -2, 2), '|')", "3|4"),
        ("cardinality(slice(ARRAY[1, 2, 3, 4], 5, 1))", "0"),
        ("regexp_extract('1a 2b 14m', '\\d+')", "1"),
        ("regexp_extract('1a 2b 14m', '(\\d+)([a-z]+)', 2)", "a"),
        ("regexp_extract('abc', 'x') IS NULL", "true"),
        ("json_extract('{\"a\": {\"b\": [1, 2]}}', '$.a.b')", "\"[1,2]\""),
        ("json_array_length('[1, 2, 3]')", "3"),
    ];
    for (expr, expected) in cases {
        let sql = format!("SELECT {expr} AS v");
        let out = run_ok(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", &sql]);
        let value = out.lines().nth(1).unwrap_or_default();
        assert_eq!(value, *expected, "{sql}");
    }
    let aggregates: &[(&str, &str)] = &[
        ("count_if(x > 1)", "2"),
        ("arbitrary(x) IN (1, 2, 3)", "true"),
        ("approx_percentile(x, 0.5)", "2"),
        ("max_by(x, -x)", "1"),
        ("min_by(x, -x)", "3"),
        ("max_by(CAST(x AS VARCHAR), x)", "3"),
    ];
    for (expr, expected) in aggregates {
        let sql = format!("SELECT {expr} AS v FROM (VALUES (1), (2), (3)) AS t(x)");
        let out = run_ok(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", &sql]);
        assert_eq!(out.lines().nth(1).unwrap_or_default(), *expected, "{sql}");
    }
    // Over a table, per bag (partial aggregates merged): the ends are the minimum and maximum,
    // and count_if agrees with a filtered count.
    let sql = "SELECT bag_file, approx_percentile(angular_velocity['z'], 0.0) = min(angular_velocity['z']) AND approx_percentile(angular_velocity['z'], 1.0) = max(angular_velocity['z']) AS ends, \
               count_if(angular_velocity['z'] > 0) = sum(CASE WHEN angular_velocity['z'] > 0 THEN 1 ELSE 0 END) AS counted, \
               max_by(angular_velocity['z'], log_time_ns) = last_value(angular_velocity['z'] ORDER BY log_time_ns) AND min_by(log_time_ns, log_time_ns) = min(log_time_ns) AS by FROM imu_data GROUP BY bag_file";
    let out = run_ok(&["query", "--lake", lake.to_str().unwrap(), "--format", "csv", sql]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), sample_bags().len(), "one row per sample drive: {out}");
    assert!(rows.iter().all(|r| r.ends_with(",true,true,true")), "{out}");
}
