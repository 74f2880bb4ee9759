//! `config.json`: every setting the pipeline needs, with defaults. Keys starting with `//` are
//! comments and ignored; any other unknown key, or a value of the wrong type, is an error that
//! names the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Lake root: a local directory (default `./lake`).
    pub lake: String,
    pub metadata_store: MetadataStoreConfig,
    pub s3: S3Config,
    pub ingest: IngestConfig,
    pub sync: SyncConfig,
    pub detect: crate::detect::DetectConfig,
    pub batch: BatchConfig,
}

/// Settings of `scenes batch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Bags per batch.
    pub batch_size: usize,
    /// Seconds after which a running batch whose owner cannot be checked (another machine) is
    /// taken to be dead and its bags are claimed again. A dead owner on this machine is noticed
    /// at once.
    pub claim_lease_s: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            batch_size: 2,
            claim_lease_s: 6 * 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lake: "lake".into(),
            metadata_store: MetadataStoreConfig::default(),
            s3: S3Config::default(),
            ingest: IngestConfig::default(),
            sync: SyncConfig::default(),
            detect: crate::detect::DetectConfig::default(),
            batch: BatchConfig::default(),
        }
    }
}

/// Settings of `scenes sync`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Tick length in milliseconds.
    pub tick_ms: u64,
    /// `log_time` (bag record time) or `header_stamp`.
    pub time_source: crate::sync::TimeSource,
    /// Topic tables to put on the timeline; empty = all without large binary columns.
    pub tables: Vec<String>,
    /// Samples older than this at a tick are null; null = forward fill forever.
    pub max_staleness_ms: Option<u64>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            tick_ms: 100,
            time_source: crate::sync::TimeSource::LogTime,
            tables: Vec::new(),
            max_staleness_ms: None,
        }
    }
}

impl SyncConfig {
    /// The sync options these settings describe.
    pub fn options(&self) -> crate::sync::SyncOptions {
        crate::sync::SyncOptions {
            tick_ns: self.tick_ms as i64 * 1_000_000,
            time_source: self.time_source,
            tables: self.tables.clone(),
            max_staleness_ns: self.max_staleness_ms.map(|ms| ms as i64 * 1_000_000),
        }
    }
}

/// Where bag, batch and scene records are kept.
#[derive(Debug, Clone, Deserialize)]
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

/// How S3 is reached, for bags (`scenes ingest s3://...`) and lakes on S3.
#[derive(Debug, Clone, Deserialize)]
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

/// Settings of `scenes ingest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Topics to extract; empty = every topic in the bag.
    pub topics: Vec<String>,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Parquet codec for ordinary columns: zstd, zstd(N), snappy, lz4, none.
    pub parquet_compression: String,
    /// Rows per Parquet row group at most.
    pub row_group_rows: usize,
    /// Decoded bytes held per table and worker before they are handed to the Parquet writer.
    /// 1 MiB by default: every buffer a batch grows into is memory the kernel must hand over
    /// fresh, and 8 MiB batches made ingesting the 30-min drive about 15 % slower (bench/ANALYSIS.md,
    /// seventh round). Parquet pages and row groups do not depend on it.
    pub flush_bytes: usize,
    /// Encoded bytes of a Parquet row group before it is written out. 8 MiB by default: the
    /// row group in progress is held in memory per open part file, and on a camera drive larger
    /// ones made the process touch more fresh memory and run slower (bench/ANALYSIS.md).
    pub row_group_bytes: usize,
    /// A part file is closed, and the next one started, once it holds this many bytes (on S3
    /// at most `row_group_bytes`: a part stays in memory until it is uploaded).
    pub part_file_bytes: usize,
    /// Binary columns whose values average at least this many bytes are stored uncompressed.
    pub large_binary_bytes: usize,
    /// A numeric column of 4- or 8-byte values that zstd(1) shrinks by less than this fraction,
    /// on a sample of the first batch a table gets in an ingest (kept for its other part files),
    /// is stored uncompressed: noise-like measurements (IMU rates, accelerations) barely
    /// compress, and skipping them made ingesting the 30-min drive about 7 % faster for 2.4 %
    /// larger files (bench/ANALYSIS.md, eighth round). 0 compresses every column.
    pub min_compression_gain: f64,
    /// `auto`: integer and time columns whose sample comes out smaller as DELTA_BINARY_PACKED
    /// than as zstd(1)-compressed plain values are stored that way, uncompressed (timestamps,
    /// sequence numbers). `plain`: never, for readers without that encoding (Spark's vectorised
    /// reader before 3.3).
    pub integer_encoding: crate::lake::parts::IntegerEncoding,
    /// Delete the files of a bag's previous ingest once the new one is committed.
    pub delete_replaced_files: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            topics: Vec::new(),
            threads: 0,
            parquet_compression: "zstd(1)".into(),
            row_group_rows: 256 * 1024,
            flush_bytes: 1 << 20,
            row_group_bytes: 8 << 20,
            part_file_bytes: 128 << 20,
            large_binary_bytes: 1024,
            min_compression_gain: 0.1,
            integer_encoding: crate::lake::parts::IntegerEncoding::Auto,
            delete_replaced_files: true,
        }
    }
}

impl Config {
    /// Loads `path`. A missing file at the default location means built-in defaults; a missing
    /// file that was asked for explicitly is an error.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("config.json"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Config::default()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Self::parse(&text).map_err(|e| match e {
            Error::Config { key, problem } => Error::Config {
                key: format!("{} {key}", path.display()),
                problem,
            },
            other => other,
        })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Config {
            key: "(file)".into(),
            problem: format!("not valid JSON: {e}"),
        })?;
        strip_comments(&mut value);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| Error::Config {
            key: e.path().to_string(),
            problem: e.inner().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, problem: String| Err(Error::Config { key: key.into(), problem });
        if !["local", "dynamodb"].contains(&self.metadata_store.kind.as_str()) {
            return bad(
                "metadata_store.kind",
                format!("'{}' is not a store; use \"local\" (SQLite in the lake) or \"dynamodb\"", self.metadata_store.kind),
            );
        }
        if let Err(e) = crate::lake::parts::parse_compression(&self.ingest.parquet_compression) {
            return bad("ingest.parquet_compression", e);
        }
        if !(0.0..=1.0).contains(&self.ingest.min_compression_gain) {
            return bad(
                "ingest.min_compression_gain",
                format!("{} is not a fraction; use a number from 0 (compress every column) to 1", self.ingest.min_compression_gain),
            );
        }
        if self.ingest.row_group_rows == 0 {
            return bad("ingest.row_group_rows", "must be at least 1".into());
        }
        if self.ingest.flush_bytes < 1 << 16 {
            return bad("ingest.flush_bytes", "must be at least 65536".into());
        }
        if self.ingest.row_group_bytes < 1 << 16 {
            return bad("ingest.row_group_bytes", "must be at least 65536".into());
        }
        if self.ingest.part_file_bytes < 1 << 20 {
            return bad("ingest.part_file_bytes", "must be at least 1048576".into());
        }
        if self.batch.batch_size == 0 {
            return bad("batch.batch_size", "must be at least 1".into());
        }
        if self.detect.image_width_px <= 0.0 {
            return bad("detect.image_width_px", "must be positive".into());
        }
        if self.sync.tick_ms == 0 {
            return bad("sync.tick_ms", "must be at least 1".into());
        }
        if self.lake.trim().is_empty() {
            return bad("lake", "must not be empty".into());
        }
        Ok(())
    }
}

/// Removes every object key that starts with `//` (documentation inside the JSON file).
fn strip_comments(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("//"));
            map.values_mut().for_each(strip_comments);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_comments),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse(r#"{"ingest": {"threds": 2}}"#).unwrap_err().to_string();
        assert!(err.contains("ingest") && err.contains("threds"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::parse(r#"{"ingest": {"threads": "two"}}"#).unwrap_err().to_string();
        assert!(err.contains("ingest.threads"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::parse(r#"{"ingest": {"parquet_compression": "gzip9"}}"#).unwrap_err().to_string();
        assert!(err.contains("ingest.parquet_compression"), "{err}");
    }

    #[test]
    fn comments_are_ignored_and_defaults_fill_in() {
        let c = Config::parse(r#"{"//": "doc", "lake": "x", "ingest": {"// threads": "doc"}}"#).unwrap();
        assert_eq!(c.lake, "x");
        assert_eq!(c.ingest.threads, 0);
    }

    #[test]
    fn shipped_config_is_valid() {
        let text = include_str!("../config.json");
        Config::parse(text).unwrap();
    }
}
