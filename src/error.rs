//! The crate's error: the stages' own failures (a bad argument, a SQL statement that does not
//! run, a detect field path that names nothing), and each lower module's typed error passed
//! through unchanged. Every variant names the thing that failed (a file, a field, a table) and,
//! where there is one, what the user can do about it. The lower modules (`source`, `bag`,
//! `decode`, `lake`, `meta`) return their own error types and never this one.

use std::path::PathBuf;

/// Result alias of the stages and tools.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a stage or tool of `scenes`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bag(#[from] crate::bag::BagError),

    #[error(transparent)]
    Definition(#[from] crate::decode::DefinitionError),

    #[cfg(feature = "lake")]
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),

    #[cfg(feature = "lake")]
    #[error(transparent)]
    Meta(#[from] crate::meta::MetaError),

    #[cfg(feature = "lake")]
    #[error(transparent)]
    Input(#[from] crate::source::inputs::InputError),

    #[cfg(feature = "aws")]
    #[error(transparent)]
    S3(#[from] crate::source::s3::S3Error),

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// An argument that cannot be used: which one, and why.
    #[error("{argument}: {reason}")]
    InvalidArgument { argument: String, reason: String },

    /// A SQL statement that did not run (the first line of DataFusion's message).
    #[error("{context}SQL: {reason}")]
    Sql { context: &'static str, reason: String },

    /// A Glue Data Catalog request that failed: which request, for which table or view.
    #[error("Glue {request} {name}: {reason} (check the AWS credentials and region, and the Glue permissions glue:CreateDatabase, glue:GetTable, glue:CreateTable, glue:UpdateTable)")]
    Catalog { request: String, name: String, reason: String },

    /// A field path of the `detect` config that does not lead to a usable column.
    #[error("config detect field path '{path}' {reason}")]
    FieldPath { path: String, reason: String },

    #[error("{path}: {reason}")]
    Bags { path: PathBuf, reason: &'static str },

    /// A topic none of whose candidate tables can take its columns.
    #[error("{table}: topic {topic} has a definition that fits neither this table nor its md5-named table")]
    NoTableFits { table: String, topic: String },

    /// A bag whose part files were written but whose commit failed: none of its rows were added
    /// to the tables named, and it has no bag record, so the next ingest reads it again.
    #[error("bag {bag}: commit failed, its rows were not added ({reason}); run the ingest again")]
    Commit { bag: String, reason: String },

    /// The metadata store could not be opened, so nothing was committed.
    #[error("{reason} (nothing was committed)")]
    StoreNotReady { reason: String },

    /// A table read back without a column the stage needs.
    #[error("table {table}: no nanosecond timestamp column {column}")]
    MissingTimeColumn { table: String, column: String },

    #[error("cannot start {what}: {reason}")]
    Start { what: &'static str, reason: String },

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An argument that cannot be used.
    pub fn invalid(argument: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { argument: argument.into(), reason: reason.into() }
    }
}

#[cfg(feature = "lake")]
impl Error {
    /// A DataFusion error of running SQL, reduced to its first line.
    pub fn sql(context: &'static str, e: datafusion::error::DataFusionError) -> Self {
        let text = e.to_string();
        Error::Sql { context, reason: text.lines().next().unwrap_or("").trim().to_string() }
    }
}

#[cfg(feature = "lake")]
impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Lake(e.into())
    }
}

#[cfg(feature = "lake")]
impl From<deltalake::DeltaTableError> for Error {
    fn from(e: deltalake::DeltaTableError) -> Self {
        Error::Lake(e.into())
    }
}
