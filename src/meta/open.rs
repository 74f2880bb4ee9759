//! Which metadata store a run uses, built from its settings: the SQLite file inside a local
//! lake (opened in the background while ingest reads its first bag, when asked), or DynamoDB.

use std::path::PathBuf;

use super::pending::PendingStore;
use super::sqlite::SqliteStore;
use super::MetaStore;
use super::error::{MetaError, Result};

/// Where bag, batch and scene records are kept.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataStoreConfig {
    /// `local`: an SQLite file inside the lake (`<lake>/_scenes/metadata.sqlite`);
    /// `dynamodb`: three DynamoDB tables (names below).
    pub kind: String,
    /// DynamoDB table of bag items (key `bag_file_prefix`).
    pub bags_table: String,
    /// DynamoDB table of batch items (keys `BatchId`, `Name`).
    pub batches_table: String,
    /// DynamoDB table of scene items (keys `bag_file`, `scene_id`).
    pub scenes_table: String,
    /// Endpoint override for DynamoDB (DynamoDB Local); null = AWS (or AWS_ENDPOINT_URL_DYNAMODB).
    pub endpoint_url: Option<String>,
    /// Region override; null = the standard chain (AWS_REGION, profile, instance metadata).
    pub region: Option<String>,
    /// Attempts per DynamoDB request on throttling and server errors.
    pub max_attempts: u32,
}

impl Default for MetadataStoreConfig {
    fn default() -> Self {
        MetadataStoreConfig {
            kind: "local".into(),
            bags_table: "Rosbag-BagFile-Metadata".into(),
            batches_table: "Rosbag-EMR-Batch-Metadata".into(),
            scenes_table: "Rosbag-Scene-Metadata".into(),
            endpoint_url: None,
            region: None,
            max_attempts: 10,
        }
    }
}

impl MetadataStoreConfig {
    /// Whether the store is DynamoDB (else the local SQLite file).
    pub fn is_dynamodb(&self) -> bool {
        self.kind == "dynamodb"
    }
}

/// The store `settings` name. `metadata_file` is where a local lake keeps its SQLite store
/// (`None` for a lake on S3, which needs DynamoDB).
pub fn open_store(settings: &MetadataStoreConfig, metadata_file: Option<PathBuf>, lake: &str) -> Result<Box<dyn MetaStore>> {
    if settings.is_dynamodb() {
        return dynamo_store(settings);
    }
    match metadata_file {
        Some(file) => Ok(Box::new(SqliteStore::open(&file)?)),
        None => Err(MetaError::LocalStoreOnS3 { lake: lake.to_string() }),
    }
}

/// [`open_store`] for ingest: the local SQLite store is opened on `runtime` while the first bag
/// is read (ingest waits for it before committing); DynamoDB is connected to at once, so a
/// wrong endpoint or table stops the run before any bag is read.
pub fn open_store_in_background(
    settings: &MetadataStoreConfig,
    metadata_file: Option<PathBuf>,
    lake: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<Box<dyn MetaStore>> {
    match metadata_file {
        Some(file) if !settings.is_dynamodb() => Ok(Box::new(PendingStore::open_in_background(runtime, move || {
            SqliteStore::open(&file).map(|store| Box::new(store) as Box<dyn MetaStore>).map_err(|e| e.to_string())
        }))),
        other => open_store(settings, other, lake),
    }
}

/// Connects to the DynamoDB tables `settings` name.
#[cfg(feature = "aws")]
pub fn connect_dynamo(settings: &MetadataStoreConfig) -> Result<super::dynamo::DynamoStore> {
    super::dynamo::DynamoStore::connect(super::dynamo::DynamoSettings {
        bags_table: settings.bags_table.clone(),
        batches_table: settings.batches_table.clone(),
        scenes_table: settings.scenes_table.clone(),
        endpoint_url: settings.endpoint_url.clone(),
        region: settings.region.clone(),
        max_attempts: settings.max_attempts,
    })
}

#[cfg(feature = "aws")]
fn dynamo_store(settings: &MetadataStoreConfig) -> Result<Box<dyn MetaStore>> {
    Ok(Box::new(connect_dynamo(settings)?))
}

#[cfg(not(feature = "aws"))]
fn dynamo_store(_settings: &MetadataStoreConfig) -> Result<Box<dyn MetaStore>> {
    Err(MetaError::NoDynamoSupport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_store_needs_a_local_lake() {
        let err = open_store(&MetadataStoreConfig::default(), None, "s3://b/lake").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("s3://b/lake") && err.contains("dynamodb"), "{err}");
    }

    #[test]
    fn a_local_store_is_created_inside_the_lake() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("_scenes").join("metadata.sqlite");
        let store = open_store(&MetadataStoreConfig::default(), Some(file.clone()), "lake").unwrap();
        assert!(store.list_bags().unwrap().is_empty());
        assert!(file.exists());
    }
}
