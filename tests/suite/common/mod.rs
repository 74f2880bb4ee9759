//! Helpers shared by the integration tests: running the binary in a clean environment, the
//! Python venv that `tests/run.sh` installs, the shared real-world bags, what a test needs
//! ([`require`]), and reading tables back.
#![allow(dead_code)]

pub mod aws;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scenes::bag::writer::{BagWriter, ConnectionSpec};
use scenes::bag::Compression;
use std::sync::OnceLock;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenes_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scenes"))
}

/// Variables a test run keeps for the binary: the ones a process needs to run at all.
/// Everything else (AWS credentials or endpoints of the developer's shell, RUST_LOG, a
/// SCENES_PAUSE_AT left over) is cleared.
const KEPT_VARIABLES: &[&str] = &["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"];

/// An empty directory the binary runs in, so that no test reads the repository's
/// `./config.json` or leaves a `./lake` behind: a test that wants a config passes `--config`.
fn neutral_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory")).path()
}

/// `scenes args` as a command: a cleared environment ([`KEPT_VARIABLES`] and `NO_COLOR`),
/// run in an empty temporary directory. Tests add `.env(...)` for what they need.
pub fn scenes_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(scenes_bin());
    cmd.args(args).env_clear().env("NO_COLOR", "1").current_dir(neutral_dir());
    for name in KEPT_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    // A fixed identity for the local AWS servers (endpoints come from each test's config file);
    // never the developer's credentials, and no instance-metadata lookups.
    cmd.envs([
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    cmd
}

/// Runs the `scenes` binary with `args` (see [`scenes_command`]).
pub fn scenes(args: &[&str]) -> Output {
    scenes_command(args).output().expect("the scenes binary runs")
}

/// The command line and everything it printed, for a failure message.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "scenes {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether what a test needs is here. Without it the test says SKIPPED and returns early, except
/// under `CI=true`, where a missing tool or data folder fails the test: CI never passes a test
/// that did not run.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but {what} is missing: tests/run.sh installs and starts what the tests need; the shared bags come with the checkout"
    );
    eprintln!("SKIPPED: {what} is missing");
    false
}

/// `../shared/bags`, or `None` (after [`require`]: a failure under CI).
pub fn required_shared_bags() -> Option<PathBuf> {
    let dir = shared_bags_dir();
    require("../shared/bags", dir.is_some()).then_some(dir).flatten()
}

/// The Python interpreter with rosbags/pyarrow/deltalake (installed by tests/run.sh).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SCENES_TEST_PYTHON") {
        assert!(Path::new(&p).exists(), "SCENES_TEST_PYTHON={p} does not exist: run `bash tests/run.sh`");
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
    assert!(out.status.success(), "ingest of {} failed:\n{}", bag.display(), describe(&args, &out));
    serde_json::from_slice(&out.stdout).expect("ingest --json prints JSON")
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
    differential_check_with(bag, &[])
}

/// [`differential_check`] with more ingest arguments (`--config` of another Parquet writer).
pub fn differential_check_with(bag: &Path, extra: &[&str]) -> Vec<TopicCheck> {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let report = ingest_json(bag, &lake, extra);
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

/// Rows of a table's partitions of the bags named `bag` (a key, or a name: the partitions of
/// every bag of that name), read from the Parquet files of the Delta snapshot.
pub fn partition_rows(table_dir: &Path, bag: &str) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let location = scenes::lake::location::TableLocation::local(table_dir).unwrap();
    let files = rt.block_on(scenes::lake::delta::active_files(&location)).unwrap();
    files
        .iter()
        .filter(|f| f.bag_file.as_deref().is_some_and(|key| key == bag || scenes::lake::name_of_key(key) == bag))
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
    assert!(out.status.success(), "{}", describe(args, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `scenes args`, asserts it exited with `code` and returns its stderr.
pub fn run_exit(args: &[&str], code: i32) -> String {
    let out = scenes(args);
    assert_eq!(out.status.code(), Some(code), "{}", describe(args, &out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lake key (`bag_file`) of the bag at `path`: its name and the hash of its absolute path.
pub fn key_of(path: &Path) -> String {
    scenes::lake::bag_key(&scenes::lake::bag_name(path), &scenes::lake::source_uri(path))
}

/// The lake key of `sample-bags/<name>.bag`.
pub fn sample_key(name: &str) -> String {
    key_of(&manifest_dir().join("sample-bags").join(format!("{name}.bag")))
}

/// Row digests of every Delta table of the local lake `lake`, read by the Python `deltalake`
/// package (`tests/py/lake_digest.py`): `{table: {bag name: [rows, sha256]}}`.
pub fn lake_digest(lake: &Path) -> serde_json::Value {
    let out = Command::new(python()).arg(py_script("lake_digest.py")).arg(lake).output().unwrap();
    assert!(out.status.success(), "lake_digest.py {}: {}", lake.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Parquet files below `lake` (data files, not the Delta logs).
pub fn data_files(lake: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![lake.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") && !path.to_string_lossy().contains("_delta_log") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A connection of `topic` with type `ty` and definition `def` (its md5 computed).
pub fn conn(topic: &str, ty: &str, def: &str) -> ConnectionSpec {
    let md5 = scenes::decode::Registry::parse(ty, def).unwrap().md5sum(ty).unwrap();
    ConnectionSpec {
        topic: topic.into(),
        msg_type: ty.into(),
        md5sum: md5,
        definition: def.into(),
        callerid: None,
        latching: false,
    }
}

/// A bag of four `/status` messages of type `x/Status` with `definition`, each `payload`.
pub fn status_bag(dir: &Path, name: &str, definition: &str, payload: &[u8]) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.bag"));
    let mut w = BagWriter::create(&path, Compression::None).unwrap();
    let c = w.add_connection(conn("/status", "x/Status", definition));
    for i in 0..4u64 {
        w.write(c, 1_000 + i, payload).unwrap();
    }
    w.finish().unwrap();
    path
}
