//! Where a bag's bytes come from, below every bag format: a local file (memory-mapped by the
//! reader), or a source of byte ranges ([`RangeReader`]: an object on S3, read by ranged GETs and
//! never downloaded whole). Also how command-line inputs (files, directories, globs, `s3://`
//! URIs) become a list of bags ([`inputs`]), and the S3 connection settings shared by bag
//! sources and lakes on S3.

#[cfg(feature = "lake")]
pub mod inputs;
#[cfg(feature = "aws")]
pub mod s3;

use std::ops::Range;

/// A source of byte ranges: the bag file seen from afar.
pub trait RangeReader: Send + Sync {
    /// Size of the whole file in bytes.
    fn len(&self) -> u64;

    /// Where the bytes come from, for messages (`s3://bucket/key`).
    fn name(&self) -> String;

    /// Fetches `ranges`, several at a time, yielding their bytes in the order given. An error
    /// means the range could not be read even after retries.
    fn fetch(&self, ranges: Vec<Range<u64>>) -> Box<dyn Iterator<Item = std::result::Result<Vec<u8>, String>> + Send + '_>;

    /// What identifies this version of the file (see [`local_version`]): size and ETag for an
    /// S3 object; `None` when the source cannot tell.
    fn version(&self) -> Option<String>;
}

/// What identifies one version of a local file: its size and modification time. A file copied
/// or rewritten in place gets a new one; the same file read again keeps it.
pub fn local_version(meta: &std::fs::Metadata) -> String {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("size={};mtime_ns={mtime_ns}", meta.len())
}

/// What identifies one version of an S3 object: its size and ETag.
pub fn object_version(size: u64, etag: Option<&str>) -> Option<String> {
    etag.map(|etag| format!("size={size};etag={}", etag.trim_matches('"')))
}

/// How S3 is reached, for bags (`scenes ingest s3://...`) and lakes on S3.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint override for S3-compatible stores (MinIO, moto); null = AWS (or
    /// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    pub endpoint_url: Option<String>,
    /// Region override; null = the standard chain (AWS_REGION, profile, instance metadata).
    pub region: Option<String>,
    /// Ranged GETs in flight per worker while a bag is read from S3.
    pub read_ahead: usize,
    /// Attempts per S3 request on throttling, server and network errors (exponential backoff).
    pub max_attempts: u32,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint_url: None,
            region: None,
            read_ahead: 4,
            max_attempts: 10,
        }
    }
}

#[cfg(feature = "lake")]
pub use remote::RemoteStore;

#[cfg(feature = "lake")]
mod remote {
    use std::collections::HashMap;
    use std::sync::Arc;

    use object_store::ObjectStore;
    use url::Url;

    /// An object store and what is needed to reach it again (Delta opens tables by URL + options).
    #[derive(Clone)]
    pub struct RemoteStore {
        /// The bucket's store; object paths are relative to the bucket.
        pub store: Arc<dyn ObjectStore>,
        /// `s3://bucket/`
        pub bucket_url: Url,
        /// Storage options for `deltalake` (endpoint, region, ...).
        pub options: HashMap<String, String>,
        /// Runtime the blocking calls (from worker threads outside it) run on.
        pub handle: tokio::runtime::Handle,
    }

    impl std::fmt::Debug for RemoteStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "RemoteStore({})", self.bucket_url)
        }
    }
}

/// Where `part` starts inside `container`, if it lies wholly inside it (compared by address).
pub fn offset_within(container: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(container.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= container.len()).then_some(start)
}
