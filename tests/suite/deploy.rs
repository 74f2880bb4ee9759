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

/// The batch task registers the lake in Glue after each batch (so a new topic table reaches
/// Athena by itself), with the commands the CLI has and the permissions Glue asks for.
#[test]
fn the_batch_task_registers_the_lake_in_glue_after_each_batch() {
    let template = std::fs::read_to_string(manifest_dir().join("deploy/scenes.yaml")).unwrap();
    let batch = template.find("batch --all --lake s3://${LakeBucket}/").expect("the batch command");
    let catalog = template.find("catalog glue --lake s3://${LakeBucket}/ --database ${GlueDatabaseName}").expect("the catalog command");
    assert!(batch < catalog, "catalog runs after batch");
    for action in ["glue:CreateTable", "glue:UpdateTable", "glue:GetTable", "glue:CreateDatabase"] {
        assert!(template.contains(action), "{action} is allowed");
    }
    // The commands exist as written.
    for args in [&["batch", "--help"][..], &["catalog", "glue", "--help"][..]] {
        let help = run_ok(args);
        assert!(help.contains("--lake") || help.contains("--all"), "{help}");
    }
    assert!(run_ok(&["catalog", "glue", "--help"]).contains("--database"));
}
