//! `scenes catalog athena`: the DDL is parsed statement by statement; every Delta table of the
//! lake (found by its `_delta_log`) has exactly one CREATE EXTERNAL TABLE at the right S3
//! location with `'table_type' = 'DELTA'`, and nothing else is declared.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// (database, table) → location, from CREATE EXTERNAL TABLE statements; and the databases.
fn parse_ddl(ddl: &str) -> (Vec<String>, BTreeMap<(String, String), String>) {
    let mut databases = Vec::new();
    let mut tables = BTreeMap::new();
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
            _ => panic!("unexpected statement: {statement}"),
        }
    }
    (databases, tables)
}

fn delta_tables(lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [lake.join("topics"), lake.to_path_buf()] {
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
    let (databases, tables) = parse_ddl(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(databases, ["drives"]);
    let mut declared: Vec<String> = Vec::new();
    for ((db, table), location) in &tables {
        assert_eq!(db, "drives");
        let relative = location.strip_prefix("s3://my-lake/prod/").expect("under the lake").trim_end_matches('/');
        assert!(lake.join(relative).join("_delta_log").is_dir(), "{table} at {location} is a Delta table of the lake");
        assert!(relative.ends_with(table.as_str()));
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
