//! Helpers shared by the integration tests: locating the binary, the Python venv that
//! `tests/run.sh` installs, the shared real-world bags, and reading tables back.
#![allow(dead_code)]

pub mod aws;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenes_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scenes"))
}

/// Runs the `scenes` binary with `args`.
pub fn scenes(args: &[&str]) -> Output {
    Command::new(scenes_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the scenes binary runs")
}

/// The Python interpreter with rosbags/pyarrow/deltalake (installed by tests/run.sh).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SCENES_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = manifest_dir().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python venv at {}: run `bash tests/run.sh`, which installs it (or set SCENES_TEST_PYTHON)",
        venv.display()
    );
    venv
}

pub fn py_script(name: &str) -> PathBuf {
    manifest_dir().join("tests/py").join(name)
}

/// `../shared/bags`, when this checkout has it.
pub fn shared_bags_dir() -> Option<PathBuf> {
    let dir = manifest_dir().join("../shared/bags");
    dir.is_dir().then_some(dir)
}

pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("directory lists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

pub fn sample_bags() -> Vec<PathBuf> {
    files_with_ext(&manifest_dir().join("sample-bags"), "bag")
}

/// Ingests `bag` into `lake` with `--json` and returns the parsed report.
pub fn ingest_json(bag: &Path, lake: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["ingest", "--json", "--lake", lake.to_str().unwrap(), bag.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = scenes(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ingest of {} failed: {}\n{}",
        bag.display(),
        String::from_utf8_lossy(&out.stderr),
        stdout
    );
    serde_json::from_str(&stdout).expect("ingest --json prints JSON")
}

/// Result of the rosbags differential check for one topic.
#[derive(Debug, serde::Deserialize)]
pub struct TopicCheck {
    pub topic: String,
    pub tables: Vec<String>,
    pub ours: u64,
    pub rosbags: u64,
    pub status: String,
    pub detail: Option<String>,
}

/// Ingests `bag` and compares every message with Python rosbags. Returns one check per topic.
pub fn differential_check(bag: &Path) -> Vec<TopicCheck> {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(bag, &lake, &[]);
    let report_path = dir.path().join("report.json");
    std::fs::write(&report_path, report.to_string()).unwrap();
    let out = Command::new(python())
        .arg(py_script("compare_with_rosbags.py"))
        .arg(bag)
        .arg(&lake)
        .arg(&report_path)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checks: Vec<TopicCheck> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("compare script prints JSON lines"))
        .collect();
    assert!(
        out.status.success(),
        "{}: rosbags comparison failed:\n{}\n{}",
        bag.display(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    checks
}

/// Rows per `bag_file` partition of a table, read from the Parquet files of the Delta snapshot.
pub fn partition_rows(table_dir: &Path, bag_file: &str) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let location = scenes::lake::location::TableLocation::local(table_dir).unwrap();
    let files = rt.block_on(scenes::lake::delta::active_files(&location)).unwrap();
    files
        .iter()
        .filter(|f| f.bag_file.as_deref() == Some(bag_file))
        .map(|f| {
            let file = std::fs::File::open(table_dir.join(&f.relative_path)).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            use parquet::file::reader::FileReader;
            reader.metadata().file_metadata().num_rows() as u64
        })
        .sum()
}

/// Runs `scenes args`, asserts it succeeded and returns its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = scenes(args);
    assert!(out.status.success(), "scenes {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
