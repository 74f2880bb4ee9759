//! `scenes split`: outputs are valid bags that Python `rosbags` reads, and their messages,
//! concatenated, equal the input's (order, topics, types, md5s, times and bytes).

use std::process::Command;

use crate::common::*;

fn split_and_check(bag: &str, args: &[&str], min_parts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = manifest_dir().join("sample-bags").join(bag);
    let mut all = vec!["split", "--json", input.to_str().unwrap(), "--out-dir", dir.path().to_str().unwrap()];
    all.extend_from_slice(args);
    let out = scenes(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<String> = parts.as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap().to_string()).collect();
    assert!(paths.len() >= min_parts, "{bag} {args:?}: {} parts", paths.len());
    for p in &paths {
        let info = scenes(&["info", "--json", p]);
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info[0]["index"]["state"], "indexed", "{p} has a full index");
    }
    let check = Command::new(python()).arg(py_script("check_split.py")).arg(&input).args(&paths).output().unwrap();
    assert!(
        check.status.success(),
        "{bag} {args:?}: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn split_by_size_keeps_every_message() {
    split_and_check("drive_a.bag", &["--max-size", "150KB"], 10);
    split_and_check("drive_c.bag", &["--max-size", "200KiB"], 3);
}

#[test]
fn split_by_duration_and_recompressed() {
    split_and_check("drive_d.bag", &["--max-duration", "25"], 3);
    split_and_check("drive_b.bag", &["--max-duration", "10", "--compression", "bz2"], 5);
}

#[test]
fn split_needs_a_limit() {
    let out = scenes(&["split", manifest_dir().join("sample-bags/drive_c.bag").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-size"));
}
