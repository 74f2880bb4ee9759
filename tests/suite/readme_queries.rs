//! Every example query of the README runs on the sample drives (ingested, then batched) and
//! returns the number of rows its comment announces.

use crate::common::*;

/// (statement, expected rows) from the README's ```sql block.
fn readme_queries() -> Vec<(String, usize)> {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let start = readme.find("```sql").expect("README has a ```sql block") + "```sql".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let mut expected = Vec::new();
    let mut body = String::new();
    for line in block.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix("--") {
            let words: Vec<&str> = comment.split_whitespace().collect();
            for w in words.windows(2) {
                if w[1].starts_with("rows") {
                    if let Ok(n) = w[0].parse::<usize>() {
                        expected.push(n);
                    }
                }
            }
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    let statements: Vec<String> = body.split(';').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    assert_eq!(statements.len(), expected.len(), "every README query announces its row count");
    statements.into_iter().zip(expected).collect()
}

#[test]
fn readme_example_queries_return_the_announced_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    let bags = manifest_dir().join("sample-bags");
    assert!(scenes(&["ingest", "-q", "--lake", l, bags.to_str().unwrap()]).status.success());
    assert!(scenes(&["batch", "-q", "--all", "--lake", l]).status.success());
    let queries = readme_queries();
    assert!(queries.len() >= 6);
    for (sql, rows) in queries {
        let out = scenes(&["query", "--lake", l, "--format", "json", &sql]);
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')).count();
        assert_eq!(got, rows, "{sql}");
    }
}
