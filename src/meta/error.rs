//! What can go wrong with the metadata store: which store (file or table), which request, and
//! what the store said.

use std::path::PathBuf;

/// An error of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("metadata store (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("metadata store {path}: a process holding its connection panicked; run again")]
    Poisoned { path: PathBuf },

    /// A DynamoDB request that failed after its retries: the request, the service's error code
    /// and message.
    #[error("DynamoDB {request}: {code} {message}")]
    Dynamo { request: String, code: String, message: String },

    #[error("DynamoDB {request}: {reason}")]
    DynamoClient { request: String, reason: String },

    #[error("DynamoDB table {table} did not become ACTIVE within a minute")]
    TableNotActive { table: String },

    #[error("BatchWriteItem {table}: {unprocessed} items still unprocessed after {rounds} rounds; nothing was dropped, re-run to finish")]
    Unprocessed { table: String, unprocessed: usize, rounds: usize },

    #[error("an item of {table} has no 'record' attribute (not written by scenes)")]
    NotOurItem { table: String },

    #[error("a record of the metadata store is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("bag {bag} was claimed but has no record")]
    MissingBag { bag: String },

    #[error("{lake}: a lake on S3 needs the DynamoDB metadata store (the local one is a file inside a local lake); set metadata_store.kind to \"dynamodb\" in the config")]
    LocalStoreOnS3 { lake: String },

    #[error("metadata_store.kind \"dynamodb\" needs a build with the `aws` feature (the default)")]
    NoDynamoSupport,

    /// The store opened in the background could not be opened (its error, as text: it is
    /// reported to every caller that waited for it).
    #[error("metadata store: {0}")]
    NotOpened(String),
}

impl MetaError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MetaError::Io { path: path.into(), source }
    }
}

/// Result of the metadata store.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;
