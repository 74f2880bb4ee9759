//! `scenes catalog athena|glue`: the DDL is parsed statement by statement; every Delta table of
//! the lake (found by its `_delta_log`) has exactly one CREATE EXTERNAL TABLE at the right S3
//! location with `'table_type' = 'DELTA'`, the views one CREATE OR REPLACE VIEW each, and
//! nothing else is declared. The same lake registered in moto's Glue (read back with boto3),
//! and the views answering in `scenes query`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// (database, table) → location, from CREATE EXTERNAL TABLE statements; the databases; the
/// views.
fn parse_ddl(ddl: &str) -> (Vec<String>, BTreeMap<(String, String), String>, Vec<String>) {
    let mut databases = Vec::new();
    let mut tables = BTreeMap::new();
    let mut views = Vec::new();
    for statement in ddl.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = statement.split_whitespace().collect();
        match words.as_slice() {
            ["CREATE", "DATABASE", "IF", "NOT", "EXISTS", name] => databases.push(name.trim_matches('`').to_string()),
            ["CREATE", "EXTERNAL", "TABLE", "IF", "NOT", "EXISTS", name, "LOCATION", location, "TBLPROPERTIES", props @ ..] => {
                assert_eq!(props.join(" "), "('table_type' = 'DELTA')", "{statement}");
                let (db, table) = name.split_once('.').expect("qualified name");
                let key = (db.trim_matches('`').to_string(), table.trim_matches('`').to_string());
                assert!(tables.insert(key, location.trim_matches('\'').to_string()).is_none(), "declared twice: {statement}");
            }
            ["CREATE", "OR", "REPLACE", "VIEW", name, "AS", "SELECT", ..] => views.push(name.to_string()),
            _ => panic!("unexpected statement: {statement}"),
        }
    }
    (databases, tables, views)
}

fn delta_tables(lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [lake.join("topics"), lake.to_path_buf(), lake.join("catalog")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.join("_delta_log").is_dir() {
                out.push(path.strip_prefix(lake).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn athena_ddl_declares_every_delta_table() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    let bag = manifest_dir().join("sample-bags/drive_b.bag");
    assert!(scenes(&["ingest", "--lake", l, bag.to_str().unwrap()]).status.success());
    assert!(scenes(&["batch", "--all", "--lake", l]).status.success());

    let out = scenes(&["catalog", "athena", "--lake", l, "--location", "s3://my-lake/prod/", "--database", "drives"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ddl = String::from_utf8_lossy(&out.stdout).into_owned();
    let (databases, tables, views) = parse_ddl(&ddl);
    // An independent parser of Athena's SQL (sqlglot: Hive DDL, Trino views) reads every statement.
    let mut parser = std::process::Command::new(python())
        .arg(py_script("parse_athena.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut parser.stdin.take().unwrap(), ddl.as_bytes()).unwrap();
    let parsed = parser.wait_with_output().unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let kinds = String::from_utf8_lossy(&parsed.stdout).into_owned();
    assert_eq!(kinds.lines().count(), 1 + tables.len() + views.len(), "{kinds}");
    assert_eq!(kinds.lines().filter(|l| l.starts_with("VIEW ")).count(), 2, "{kinds}");
    assert_eq!(views, ["\"drives\".\"scene_bags\"", "\"drives\".\"scene_timeline\""]);
    assert_eq!(databases, ["drives"]);
    let mut declared: Vec<String> = Vec::new();
    for ((db, table), location) in &tables {
        assert_eq!(db, "drives");
        let relative = location.strip_prefix("s3://my-lake/prod/").expect("under the lake").trim_end_matches('/');
        assert!(lake.join(relative).join("_delta_log").is_dir(), "{table} at {location} is a Delta table of the lake");
        assert!(relative.ends_with(table.as_str()), "{relative} holds {table}");
        declared.push(relative.to_string());
    }
    declared.sort();
    assert_eq!(declared, delta_tables(&lake), "every Delta table, nothing else");
    assert!(tables.keys().any(|(_, t)| t == "scenes") && tables.keys().any(|(_, t)| t == "synced"));

    // A local lake needs to be told where it lives on S3.
    let out = scenes(&["catalog", "athena", "--lake", l]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--location s3://"));
}

/// The tables of a Glue database, read back with boto3 from moto.
fn glue_tables(database: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(python()).arg(py_script("glue_tool.py")).args(["tables", database]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn glue_registration_creates_then_updates_every_table_and_view_and_takes_new_topic_tables() {
    let endpoint = std::env::var("SCENES_TEST_S3_ENDPOINT").ok();
    if !require("moto_server (SCENES_TEST_S3_ENDPOINT; bash tests/run.sh starts it)", endpoint.is_some()) {
        return;
    }
    let endpoint = endpoint.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    let database = format!("drives_{}", std::process::id());
    let register = || {
        let out = scenes(&["catalog", "glue", "--lake", l, "--location", "s3://my-lake/prod/", "--database", &database, "--endpoint-url", &endpoint]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run_ok(&["ingest", "-q", "--lake", l, manifest_dir().join("sample-bags/drive_c.bag").to_str().unwrap()]);
    run_ok(&["batch", "-q", "--all", "--lake", l]);

    let first = register();
    println!("{first}");
    let tables = glue_tables(&database);
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let (_, ddl_tables, _) = parse_ddl(&&run_ok(&["catalog", "athena", "--lake", l, "--location", "s3://my-lake/prod/", "--database", &database]));
    let mut expected: Vec<String> = ddl_tables.keys().map(|(_, t)| t.clone()).chain(["scene_bags".into(), "scene_timeline".into()]).collect();
    expected.sort();
    assert_eq!(names, expected, "Glue holds what the DDL declares");
    assert!(first.lines().all(|l| l.starts_with("created ")), "{first}");

    let imu = tables.iter().find(|t| t["name"] == "imu_data").unwrap();
    assert_eq!(imu["type"], "EXTERNAL_TABLE");
    assert_eq!(imu["parameters"]["table_type"], "DELTA");
    assert_eq!(imu["location"], "s3://my-lake/prod/topics/imu_data/");
    assert_eq!(imu["serde_path"], "s3://my-lake/prod/topics/imu_data/");
    assert_eq!(imu["partition_keys"], serde_json::json!([["bag_file", "string"]]));
    let columns = imu["columns"].as_array().unwrap();
    assert!(columns.contains(&serde_json::json!(["log_time", "timestamp"])), "{columns:?}");
    assert!(columns.contains(&serde_json::json!(["log_time_ns", "bigint"])), "{columns:?}");
    assert!(columns.iter().any(|c| c[0] == "header" && c[1].as_str().unwrap().starts_with("struct<")), "{columns:?}");

    let bags = tables.iter().find(|t| t["name"] == "bags").unwrap();
    assert_eq!(bags["location"], "s3://my-lake/prod/catalog/bags/");
    assert!(bags["columns"].as_array().unwrap().contains(&serde_json::json!(["size_bytes", "decimal(20,0)"])), "{bags}");

    let view = tables.iter().find(|t| t["name"] == "scene_timeline").unwrap();
    assert_eq!(view["type"], "VIRTUAL_VIEW");
    assert_eq!(view["parameters"]["presto_view"], "true");
    let definition = &view["view"];
    assert_eq!(definition["schema"], database.as_str());
    assert!(definition["originalSql"].as_str().unwrap().contains("JOIN synced y ON"));
    let view_columns: Vec<&str> = definition["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(view_columns.first(), Some(&"scene_id"));
    assert!(view_columns.contains(&"tick_ns"), "{view_columns:?}");
    let tick = definition["columns"].as_array().unwrap().iter().find(|c| c["name"] == "tick").unwrap();
    assert_eq!(tick["type"], "timestamp(3) with time zone");

    // A bag with a topic the lake has not seen: the next registration creates its table and
    // updates the others.
    let dir2 = tempfile::tempdir().unwrap();
    let other = status_bag(dir2.path(), "status", "int32 code\n", &7i32.to_le_bytes());
    run_ok(&["ingest", "-q", "--lake", l, other.to_str().unwrap()]);
    let second = register();
    assert!(second.contains(&format!("created {database}.status")), "{second}");
    assert!(second.contains(&format!("updated {database}.imu_data")), "{second}");
    assert_eq!(glue_tables(&database).len(), tables.len() + 1);
}

#[test]
fn the_ready_made_views_answer_in_scenes_query() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    for bag in ["drive_a", "drive_b"] {
        run_ok(&["ingest", "-q", "--lake", l, manifest_dir().join(format!("sample-bags/{bag}.bag")).to_str().unwrap()]);
    }
    run_ok(&["batch", "-q", "--all", "--lake", l]);
    let csv = |sql: &str| run_ok(&["query", "--lake", l, "--format", "csv", sql]);
    // Every scene once, with its bag's record.
    let scene_count = csv("SELECT count(*) AS n FROM scenes");
    let joined = csv("SELECT count(*) AS n FROM scene_bags WHERE bag_name IN ('drive_a', 'drive_b') AND bag_message_count > 0");
    assert_eq!(joined, scene_count);
    assert_ne!(scene_count, "n\n0\n", "the sample drives have scenes");
    // Each scene's window of the timeline: ticks from its start to its end, none outside.
    let outside = csv("SELECT count(*) AS n FROM scene_timeline t JOIN scenes s USING (scene_id) WHERE t.tick_ns < s.start_ts_ns OR t.tick_ns > s.end_ts_ns");
    assert_eq!(outside, "n\n0\n");
    let per_scene = csv(
        "SELECT count(*) AS n FROM (SELECT s.scene_id, count(t.tick_ns) AS ticks, max(s.scene_length) AS len \
         FROM scenes s LEFT JOIN scene_timeline t USING (scene_id) GROUP BY s.scene_id) \
         WHERE ticks <> CAST(round(len * 10) AS BIGINT) + 1",
    );
    assert_eq!(per_scene, "n\n0\n", "one tick per 100 ms of each scene, both ends included");
    // A view whose tables are missing says which.
    let empty = dir.path().join("empty");
    run_ok(&["ingest", "-q", "--lake", empty.to_str().unwrap(), manifest_dir().join("sample-bags/drive_c.bag").to_str().unwrap()]);
    let out = scenes(&["query", "--lake", empty.to_str().unwrap(), "SELECT * FROM scene_timeline"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("view scene_timeline reads scenes and synced"), "{err}");
}
