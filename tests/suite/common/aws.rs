//! Helpers for the tests against the local AWS servers (`tests/aws_*.rs`): unique names, the
//! DynamoDB settings of a test's own tables, and the fault-injecting proxy.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use scenes::meta::dynamo::DynamoSettings;

use super::{py_script, python};

/// A short id unique to this moment and process, for bucket and table names.
pub fn unique_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}", nanos % (1 << 40), std::process::id())
}

/// Settings for three DynamoDB tables named `<prefix>-bags|batches|scenes` at `endpoint`.
pub fn dynamo_settings(prefix: &str, endpoint: &str) -> DynamoSettings {
    DynamoSettings {
        bags_table: format!("{prefix}-bags"),
        batches_table: format!("{prefix}-batches"),
        scenes_table: format!("{prefix}-scenes"),
        endpoint_url: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        max_attempts: 10,
    }
}

/// Starts `tests/py/fault_proxy.py` in front of `target` (S3 faults when `s3`, DynamoDB's
/// otherwise); returns the process and the proxy's URL.
pub fn start_proxy(target: &str, stats: &Path, s3: bool) -> (Child, String) {
    let mut cmd = Command::new(python());
    cmd.arg(py_script("fault_proxy.py")).arg(target).arg(stats);
    if s3 {
        cmd.arg("s3");
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("port ").expect("the proxy prints its port").to_string();
    (child, format!("http://127.0.0.1:{port}"))
}

/// Writes a config file into `dir` with the DynamoDB store at `dynamodb` and, when given, S3 at
/// `s3` (both with retries, as through the fault proxy); returns its path.
pub fn write_aws_config(dir: &Path, settings: &DynamoSettings, dynamodb: &str, s3: Option<&str>) -> PathBuf {
    let mut config = serde_json::json!({
        "metadata_store": {
            "kind": "dynamodb",
            "bags_table": settings.bags_table,
            "batches_table": settings.batches_table,
            "scenes_table": settings.scenes_table,
            "endpoint_url": dynamodb,
            "region": "us-east-1",
            "max_attempts": 6
        }
    });
    if let Some(s3) = s3 {
        config["s3"] = serde_json::json!({ "endpoint_url": s3, "region": "us-east-1", "max_attempts": 6 });
    }
    let path = dir.join(format!("config-{}.json", unique_id()));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}
