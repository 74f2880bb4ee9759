//! The library's error type. Every variant names the thing that failed (a file, a config key,
//! a message type) and, where there is one, what the user can do about it.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside `scenes`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a ROS bag (it does not start with '#ROSBAG V2.0')")]
    NotABag { path: PathBuf },

    #[error("{path}: ROS bag format V{version} is not supported; only V2.0 bags can be read (convert it with `rosbag fix` from a ROS 1 install)")]
    UnsupportedBagVersion { path: PathBuf, version: String },

    #[error("{path}: the bag is encrypted (encryptor '{encryptor}'); decrypt it with `rosbag decrypt` before ingesting")]
    EncryptedBag { path: PathBuf, encryptor: String },

    #[error("{path}: corrupt bag at byte {offset}: {problem}")]
    CorruptBag {
        path: PathBuf,
        offset: u64,
        problem: String,
    },

    #[error("message definition of '{msg_type}': {problem}")]
    Definition { msg_type: String, problem: String },

    #[error("config {key}: {problem}")]
    Config { key: String, problem: String },

    #[error("lake {location}: {problem}")]
    Lake { location: String, problem: String },

    #[error("metadata store: {0}")]
    MetaStore(String),

    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[cfg(feature = "lake")]
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),

    #[cfg(feature = "lake")]
    /// A Delta Lake error, reduced to its message (the kernel attaches long backtraces).
    #[error("delta table: {0}")]
    Delta(String),

    #[cfg(feature = "lake")]
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),

    #[cfg(feature = "lake")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(feature = "lake")]
impl From<deltalake::DeltaTableError> for Error {
    fn from(e: deltalake::DeltaTableError) -> Self {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("").trim().to_string();
        Error::Delta(first)
    }
}
