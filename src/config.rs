//! `config.json`: every setting the pipeline needs, with defaults. Keys starting with `//` are
//! comments and ignored; any other unknown key, or a value of the wrong type, is an error that
//! names the key.
//!
//! Config sits on top of the library: it reads the option types each part owns (the S3 settings
//! of [`crate::source`], the store settings of [`crate::meta`], the stage options of ingest, sync
//! and detect) and hands each part its own; nothing below imports it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::detect::DetectConfig;
use crate::ingest::IngestOptions;
use crate::lake::parquet::{parse_compression, IntegerEncoding, ParquetOptions, WriterEngine, DEFAULT_COMPRESSION};
pub use crate::meta::MetadataStoreConfig;
pub use crate::source::S3Config;
use crate::sync::{SyncOptions, TimeSource};

/// A configuration that cannot be used: which file, which key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: not valid JSON: {source}")]
    Json { file: String, source: serde_json::Error },
    #[error("{file}: config {key}: {source}")]
    Key { file: String, key: String, source: serde_json::Error },
    #[error("{file}: config {key}: {value} {expected}")]
    Value { file: String, key: &'static str, value: String, expected: &'static str },
    #[error("{file}: config ingest.parquet_compression: {source}")]
    Codec { file: String, source: crate::lake::parquet::ParquetSettingsError },
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

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
    pub detect: DetectConfig,
    pub batch: BatchConfig,
    pub clip: crate::clip::ClipConfig,
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
    /// Bags processed together by one `scenes batch` process: it claims batches until it holds
    /// this many bags, and each stage's tables get one commit for all of them.
    pub bags_per_commit: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            batch_size: 2,
            claim_lease_s: 6 * 3600,
            bags_per_commit: 50,
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
            detect: DetectConfig::default(),
            batch: BatchConfig::default(),
            clip: crate::clip::ClipConfig::default(),
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
    pub time_source: TimeSource,
    /// Topic tables to put on the timeline; empty = all without large binary columns.
    pub tables: Vec<String>,
    /// Samples older than this at a tick are null; null = forward fill forever.
    pub max_staleness_ms: Option<u64>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            tick_ms: 100,
            time_source: TimeSource::LogTime,
            tables: Vec::new(),
            max_staleness_ms: None,
        }
    }
}

impl SyncConfig {
    /// The sync options these settings describe; derived tables are written with `parquet`.
    pub fn options(&self, parquet: &ParquetOptions) -> SyncOptions {
        SyncOptions {
            tick_ns: self.tick_ms as i64 * 1_000_000,
            time_source: self.time_source,
            tables: self.tables.clone(),
            max_staleness_ns: self.max_staleness_ms.map(|ms| ms as i64 * 1_000_000),
            parquet: parquet.clone(),
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
    /// Decoded bytes held per table and worker before they are handed to the Parquet writer:
    /// small batches keep their buffers in cache and reuse the same memory. Parquet pages and
    /// row groups do not depend on it.
    pub flush_bytes: usize,
    /// Encoded bytes of a Parquet row group before it is written out; the row group in progress
    /// is held in memory per open part file, so this bounds memory.
    pub row_group_bytes: usize,
    /// A part file is closed, and the next one started, once it holds this many bytes (on S3
    /// at most `row_group_bytes`: a part stays in memory until it is uploaded).
    pub part_file_bytes: usize,
    /// Binary columns whose values average at least this many bytes are stored uncompressed.
    pub large_binary_bytes: usize,
    /// A numeric column of 4- or 8-byte values that zstd(1) shrinks by less than this fraction,
    /// on a sample of the first batch a table gets in an ingest (kept for its other part files),
    /// is stored uncompressed: noise-like measurements (IMU rates, accelerations) barely
    /// compress, and compressing them costs CPU. 0 compresses every column.
    pub min_compression_gain: f64,
    /// `auto`: integer and time columns whose sample comes out smaller as DELTA_BINARY_PACKED
    /// than as zstd(1)-compressed plain values are stored that way, uncompressed (timestamps,
    /// sequence numbers). `plain`: never, for readers without that encoding (Spark's vectorised
    /// reader before 3.3).
    pub integer_encoding: IntegerEncoding,
    /// `fast`: numeric columns written by our own column writer; `arrow`: every column through
    /// the `parquet` crate's ArrowWriter (the reference the fast writer is tested against).
    pub parquet_writer: WriterEngine,
    /// Delete the files of a bag's previous ingest once the new one is committed.
    pub delete_replaced_files: bool,
    /// Bags committed together: one Delta commit per table for all of them. Larger groups keep
    /// a bag's cost flat as tables grow; a bag becomes visible when its group is committed.
    pub bags_per_commit: usize,
    /// The longest (seconds) a written bag waits for the rest of its group before the group is
    /// committed anyway.
    pub commit_interval_s: f64,
    /// Directories of `.msg` files for message types a rosbag2 recording holds no definition of
    /// (`<dir>/<pkg>/msg/<Type>.msg` or `<dir>/share/<pkg>/msg/<Type>.msg`); searched before the
    /// ROS environment's (`AMENT_PREFIX_PATH`, `ROS_PACKAGE_PATH`).
    pub msg_paths: Vec<PathBuf>,
}

impl Default for IngestConfig {
    /// The defaults of ingest and of its Parquet writer, in one place each.
    fn default() -> Self {
        let ingest = IngestOptions::default();
        let parquet = ParquetOptions::default();
        IngestConfig {
            topics: ingest.topics,
            threads: ingest.threads,
            parquet_compression: DEFAULT_COMPRESSION.into(),
            row_group_rows: parquet.max_row_group_rows,
            flush_bytes: ingest.flush_bytes,
            row_group_bytes: parquet.row_group_bytes,
            part_file_bytes: ingest.part_file_bytes,
            large_binary_bytes: parquet.large_binary_bytes,
            min_compression_gain: parquet.min_compression_gain,
            integer_encoding: parquet.integer_encoding,
            parquet_writer: parquet.engine,
            delete_replaced_files: ingest.delete_replaced_files,
            bags_per_commit: ingest.bags_per_commit,
            commit_interval_s: ingest.commit_interval.as_secs_f64(),
            msg_paths: Vec::new(),
        }
    }
}

impl IngestConfig {
    /// The Parquet settings of this section (the codec name was checked when the config loaded).
    pub fn parquet_options(&self) -> ParquetOptions {
        let defaults = ParquetOptions::default();
        ParquetOptions {
            compression: parse_compression(&self.parquet_compression).unwrap_or(defaults.compression),
            max_row_group_rows: self.row_group_rows,
            row_group_bytes: self.row_group_bytes,
            large_binary_bytes: self.large_binary_bytes,
            min_compression_gain: self.min_compression_gain,
            integer_encoding: self.integer_encoding,
            engine: self.parquet_writer,
        }
    }

    /// The ingest options of this section (no progress bar; the CLI decides that).
    pub fn options(&self) -> IngestOptions {
        IngestOptions {
            topics: self.topics.clone(),
            threads: self.threads,
            parquet: self.parquet_options(),
            flush_bytes: self.flush_bytes,
            part_file_bytes: self.part_file_bytes,
            progress: false,
            delete_replaced_files: self.delete_replaced_files,
            force: false,
            bags_per_commit: self.bags_per_commit.max(1),
            commit_interval: std::time::Duration::try_from_secs_f64(self.commit_interval_s).unwrap_or(std::time::Duration::ZERO),
            msg_path: crate::decode::msg_path::MsgPath::new(&self.msg_paths),
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
            Err(source) => return Err(ConfigError::Read { file: path, source }),
        };
        Self::parse_file(&text, &path.display().to_string())
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        Self::parse_file(text, "(config text)")
    }

    fn parse_file(text: &str, file: &str) -> Result<Config> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| ConfigError::Json { file: file.to_string(), source })?;
        strip_comments(&mut value);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Key {
            file: file.to_string(),
            key: e.path().to_string(),
            source: e.into_inner(),
        })?;
        config.validate(file)?;
        Ok(config)
    }

    /// Parquet settings of every table (topic tables and derived ones).
    pub fn parquet(&self) -> ParquetOptions {
        self.ingest.parquet_options()
    }

    fn validate(&self, file: &str) -> Result<()> {
        let bad = |key: &'static str, value: String, expected: &'static str| {
            Err(ConfigError::Value { file: file.to_string(), key, value, expected })
        };
        if !["local", "dynamodb"].contains(&self.metadata_store.kind.as_str()) {
            return bad("metadata_store.kind", format!("'{}'", self.metadata_store.kind), "is not a store; use \"local\" (SQLite in the lake) or \"dynamodb\"");
        }
        if let Err(source) = parse_compression(&self.ingest.parquet_compression) {
            return Err(ConfigError::Codec { file: file.to_string(), source });
        }
        let ingest = &self.ingest;
        if !(0.0..=1.0).contains(&ingest.min_compression_gain) {
            return bad("ingest.min_compression_gain", ingest.min_compression_gain.to_string(), "is not a fraction; use a number from 0 (compress every column) to 1");
        }
        let at_least = [
            ("ingest.row_group_rows", ingest.row_group_rows, 1, "is too small; use at least 1"),
            ("ingest.flush_bytes", ingest.flush_bytes, 1 << 16, "is too small; use at least 65536"),
            ("ingest.row_group_bytes", ingest.row_group_bytes, 1 << 16, "is too small; use at least 65536"),
            ("ingest.part_file_bytes", ingest.part_file_bytes, 1 << 20, "is too small; use at least 1048576"),
            ("ingest.bags_per_commit", ingest.bags_per_commit, 1, "is too small; use at least 1"),
            ("batch.batch_size", self.batch.batch_size, 1, "is too small; use at least 1"),
            ("batch.bags_per_commit", self.batch.bags_per_commit, 1, "is too small; use at least 1"),
            ("sync.tick_ms", self.sync.tick_ms as usize, 1, "is too small; use at least 1"),
        ];
        for (key, value, minimum, expected) in at_least {
            if value < minimum {
                return bad(key, value.to_string(), expected);
            }
        }
        if !(ingest.commit_interval_s >= 0.0 && ingest.commit_interval_s.is_finite()) {
            return bad("ingest.commit_interval_s", ingest.commit_interval_s.to_string(), "must be a number of seconds, 0 or more");
        }
        if self.detect.image_width_px <= 0.0 {
            return bad("detect.image_width_px", self.detect.image_width_px.to_string(), "must be positive");
        }
        if self.lake.trim().is_empty() {
            return bad("lake", "\"\"".into(), "must not be empty");
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
        let config = Config::parse(text).unwrap();
        assert_eq!(config.detect.scenarios, crate::detect::default_scenarios(), "config.json shows the default scenarios");
    }
}
