//! The deployment files stay in step with the code: the container's config is the project's
//! config with the DynamoDB store (and S3-sized row groups), and it loads.

use crate::common::*;

#[test]
fn container_config_is_the_project_config_with_the_dynamodb_store() {
    let read = |p: &str| -> serde_json::Value { serde_json::from_slice(&std::fs::read(manifest_dir().join(p)).unwrap()).unwrap() };
    let mut project = read("config.json");
    let aws = read("deploy/config.aws.json");
    assert_eq!(aws["metadata_store"]["kind"], "dynamodb");
    project["metadata_store"]["kind"] = "dynamodb".into();
    // On S3 a part file is one row group (it is uploaded whole), so the container keeps 64 MiB
    // row groups to keep its objects large; locally 8 MiB uses less memory and is faster.
    assert_eq!(aws["ingest"]["row_group_bytes"], 64 << 20);
    project["ingest"]["row_group_bytes"] = aws["ingest"]["row_group_bytes"].clone();
    assert_eq!(aws, project, "deploy/config.aws.json differs from config.json beyond metadata_store.kind and ingest.row_group_bytes");
    let config = scenes::config::Config::load(Some(&manifest_dir().join("deploy/config.aws.json"))).unwrap();
    assert_eq!(config.metadata_store.bags_table, "Rosbag-BagFile-Metadata");
}
