//! The settings of Parquet part files: codec, row group size, which columns may skip the codec
//! or be delta-packed, and which writer produces the file ([`WriterEngine`]). Defaults live here,
//! in one place; the config's `ingest` section maps onto them.

use parquet::basic::{Compression, ZstdLevel};

use crate::lake::error::ParquetSettingsError;

/// Parquet settings of a part file.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub compression: Compression,
    pub max_row_group_rows: usize,
    /// A row group is written out once its encoded size reaches this many bytes.
    pub row_group_bytes: usize,
    /// Binary columns whose average value is at least this many bytes are stored uncompressed.
    pub large_binary_bytes: usize,
    /// Numeric columns that zstd(1) shrinks by less than this fraction are stored uncompressed.
    pub min_compression_gain: f64,
    /// Whether integer and time columns may be stored DELTA_BINARY_PACKED.
    pub integer_encoding: IntegerEncoding,
    /// Which writer produces the files.
    pub engine: WriterEngine,
}

/// How 32- and 64-bit integer columns (times, sequence numbers, counts) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegerEncoding {
    /// DELTA_BINARY_PACKED, without compression, when a sample of the first batch a table gets
    /// (see `StorageChoices`) comes out smaller that way than as plain values under zstd(1)
    /// (or than plain values, when no codec is configured); PLAIN with the codec otherwise.
    Auto,
    /// Always PLAIN with the codec: for readers without DELTA_BINARY_PACKED (Spark's vectorised
    /// reader before 3.3).
    Plain,
}

/// The codec of ordinary columns unless configured otherwise.
pub const DEFAULT_COMPRESSION: &str = "zstd(1)";

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            compression: Compression::ZSTD(ZstdLevel::default()),
            max_row_group_rows: 256 * 1024,
            row_group_bytes: 8 << 20,
            large_binary_bytes: 1024,
            min_compression_gain: 0.1,
            integer_encoding: IntegerEncoding::Auto,
            engine: WriterEngine::Fast,
        }
    }
}

/// Which code writes the Parquet files. Both write the same schema, the same per-column codec,
/// encoding and statistics choices, and files every Parquet reader reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterEngine {
    /// Numeric columns written straight from their values by our column writer, the rest by the
    /// `parquet` crate's Arrow column writers (see `fast.rs`).
    #[default]
    Fast,
    /// Every column through the `parquet` crate's `ArrowWriter`: the reference to compare with
    /// (see `arrow_writer.rs`).
    Arrow,
}

/// Parses a codec name from the config: `zstd`, `zstd(N)`, `snappy`, `lz4`, `none`.
pub fn parse_compression(name: &str) -> Result<Compression, ParquetSettingsError> {
    let lower = name.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "none" | "uncompressed" => Compression::UNCOMPRESSED,
        "snappy" => Compression::SNAPPY,
        "lz4" => Compression::LZ4_RAW,
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(1).map_err(|_| ParquetSettingsError::UnknownCodec { name: name.to_string() })?),
        other => {
            let level = other
                .strip_prefix("zstd(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.parse::<i32>().ok())
                .ok_or_else(|| ParquetSettingsError::UnknownCodec { name: name.to_string() })?;
            Compression::ZSTD(ZstdLevel::try_new(level).map_err(|_| ParquetSettingsError::ZstdLevel { level })?)
        }
    })
}
