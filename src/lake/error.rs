//! What can go wrong writing or reading the lake: each variant names the location, table or
//! file, and keeps the underlying error as its source.

use std::path::PathBuf;

/// An error of the lake: its locations, Parquet part files and Delta tables.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A location (a directory, an S3 prefix, a URL) that cannot be used; `reason` is what the
    /// URL parser or object store said.
    #[error("lake {location}: {reason}")]
    Location { location: String, reason: String },

    #[error("{location}: new columns conflict with the table's existing column types")]
    ConflictingColumns { location: String },

    #[error("no Delta type for Arrow type {arrow_type} (column types of a table must map to Delta types)")]
    NoDeltaType { arrow_type: String },

    /// A Delta log error, reduced to its first line (the kernel attaches long backtraces).
    #[error("delta table: {reason}")]
    Delta { reason: String },

    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),

    #[error(transparent)]
    Settings(#[from] ParquetSettingsError),

    #[cfg(feature = "aws")]
    #[error(transparent)]
    S3(#[from] crate::source::s3::S3Error),
}

/// What can be wrong with Parquet settings.
#[derive(Debug, thiserror::Error)]
pub enum ParquetSettingsError {
    #[error("unknown codec '{name}'; use zstd, zstd(1..22), snappy, lz4 or none")]
    UnknownCodec { name: String },
    #[error("zstd level {level} is out of range; use 1 to 22")]
    ZstdLevel { level: i32 },
}

impl LakeError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LakeError::Io { path: path.into(), source }
    }

    /// A location that cannot be used.
    pub fn location(location: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        LakeError::Location { location: location.to_string(), reason: reason.to_string() }
    }
}

impl From<deltalake::DeltaTableError> for LakeError {
    fn from(e: deltalake::DeltaTableError) -> Self {
        let text = e.to_string();
        LakeError::Delta { reason: text.lines().next().unwrap_or("").trim().to_string() }
    }
}

/// Result of the lake.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;
