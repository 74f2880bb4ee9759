//! What can go wrong reading or writing a bag: each variant names the file (or the S3 object)
//! and, where there is one, the byte offset and what to do about it.

use std::path::PathBuf;

/// An error of the bag readers and the bag writer.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a ROS bag (it does not start with '#ROSBAG V2.0')")]
    NotABag { path: PathBuf },

    #[error("{path}: a directory without metadata.yaml, so not a rosbag2 recording; name one bag file or recording (`scenes ingest` also takes a folder of them)")]
    Directory { path: PathBuf },

    #[error("{path}: ROS bag format V{version} is not supported; only V2.0 bags can be read (convert it with `rosbag fix` from a ROS 1 install)")]
    UnsupportedVersion { path: PathBuf, version: String },

    #[error("{path}: the bag is encrypted (encryptor '{encryptor}'); decrypt it with `rosbag decrypt` before ingesting")]
    Encrypted { path: PathBuf, encryptor: String },

    /// The bytes at `offset` are not what the format requires; `reason` is what the record
    /// parser found there.
    #[error("{path}: corrupt bag at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },

    #[error("{source_name}: cannot read bytes at offset {offset}: {reason}")]
    RangeRead { source_name: String, offset: u64, reason: String },

    #[error("{path}: {reason}; a bag without a usable index is recovered by scanning every byte, which needs a local copy (`scenes ingest` of an s3:// bag makes one)")]
    NeedsLocalCopy { path: PathBuf, reason: String },

    /// A rosbag2 recording (its metadata or one of its storage files) that cannot be read.
    #[error("{path}: {reason}")]
    Rosbag2 { path: PathBuf, reason: String },

    #[error("{path}: unknown connection id {conn}; add the connection before writing its messages")]
    UnknownConnection { path: PathBuf, conn: u32 },
}

impl BagError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BagError::Io { path: path.into(), source }
    }
}

/// Result of the bag readers and writer.
pub type Result<T, E = BagError> = std::result::Result<T, E>;
