//! Writing Parquet part files: zstd (or the configured codec) for ordinary columns, no
//! compression and no dictionary for large binary columns (JPEG and point clouds do not
//! compress), page statistics on.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Type as PhysicalType, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::location::TableLocation;
use crate::error::{Error, Result};

/// A part file written for one table partition, relative to the table directory.
#[derive(Debug, Clone)]
pub struct PartFile {
    /// Path relative to the table root, with `/` separators (as Delta `add.path`).
    pub relative_path: String,
    pub size: u64,
    pub rows: u64,
    /// Minimum and maximum `log_time` (ns) in the file, for statistics.
    pub log_time_range: Option<(i64, i64)>,
}

/// Parquet settings chosen from the config.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub compression: Compression,
    pub max_row_group_rows: usize,
    /// Binary columns whose average value is at least this many bytes are stored uncompressed.
    pub large_binary_bytes: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            compression: Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()),
            max_row_group_rows: 256 * 1024,
            large_binary_bytes: 1024,
        }
    }
}

/// Parses a codec name from the config: `zstd`, `zstd(N)`, `snappy`, `lz4`, `none`.
pub fn parse_compression(name: &str) -> Result<Compression, String> {
    let lower = name.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "none" | "uncompressed" => Compression::UNCOMPRESSED,
        "snappy" => Compression::SNAPPY,
        "lz4" => Compression::LZ4_RAW,
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| e.to_string())?),
        other => {
            let level = other
                .strip_prefix("zstd(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.parse::<i32>().ok())
                .ok_or_else(|| format!("unknown codec '{name}'; use zstd, zstd(1..22), snappy, lz4 or none"))?;
            Compression::ZSTD(ZstdLevel::try_new(level).map_err(|e| e.to_string())?)
        }
    })
}

/// Writes `batch` as the part file `relative_path` of the table at `location`. Blocks: call it
/// from worker threads, not from async code (use [`write_part_async`] there).
pub fn write_part(location: &TableLocation, relative_path: &str, batch: &RecordBatch, opts: &ParquetOptions) -> Result<PartFile> {
    if let Some(dir) = location.local_dir() {
        return write_local_part(dir, relative_path, batch, opts);
    }
    let bytes = encode(batch, opts)?;
    let part = part_file(relative_path, bytes.len() as u64, batch);
    location.put_blocking(relative_path, bytes)?;
    Ok(part)
}

/// [`write_part`] for async callers.
pub async fn write_part_async(location: &TableLocation, relative_path: &str, batch: &RecordBatch, opts: &ParquetOptions) -> Result<PartFile> {
    if let Some(dir) = location.local_dir() {
        return write_local_part(dir, relative_path, batch, opts);
    }
    let bytes = encode(batch, opts)?;
    let part = part_file(relative_path, bytes.len() as u64, batch);
    location.put(relative_path, bytes).await?;
    Ok(part)
}

/// Writes straight to the file (no copy of the encoded bytes in memory).
fn write_local_part(table_dir: &Path, relative_path: &str, batch: &RecordBatch, opts: &ParquetOptions) -> Result<PartFile> {
    let path: PathBuf = table_dir.join(relative_path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let props = writer_properties(batch, opts);
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    let size = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
    Ok(part_file(relative_path, size, batch))
}

/// The Parquet bytes of `batch`, for stores that take whole objects.
fn encode(batch: &RecordBatch, opts: &ParquetOptions) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(writer_properties(batch, opts)))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(bytes)
}

fn part_file(relative_path: &str, size: u64, batch: &RecordBatch) -> PartFile {
    PartFile {
        relative_path: relative_path.to_string(),
        size,
        rows: batch.num_rows() as u64,
        log_time_range: log_time_range(batch),
    }
}

fn writer_properties(batch: &RecordBatch, opts: &ParquetOptions) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(opts.compression)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.max_row_group_rows))
        .set_statistics_truncate_length(Some(64))
        .set_column_index_truncate_length(Some(64))
        .set_created_by(format!("scenes {}", env!("CARGO_PKG_VERSION")));
    // Dictionary encoding pays off for strings (frame ids, labels); for numbers — mostly
    // measurements, nearly all distinct — it costs a hash per value before the writer gives it
    // up (the largest single cost of writing small-message tables), so numeric leaves go
    // straight to plain encoding and zstd.
    if let Ok(descriptor) = parquet::arrow::ArrowSchemaConverter::new().convert(batch.schema().as_ref()) {
        for leaf in descriptor.columns() {
            if !matches!(leaf.physical_type(), PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY) {
                builder = builder.set_column_dictionary_enabled(leaf.path().clone(), false);
            }
        }
    }
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type() == &DataType::Binary && !column.is_empty() {
            let values = column.as_binary::<i32>();
            let avg = values.value_data().len() / column.len();
            if avg >= opts.large_binary_bytes {
                let path = ColumnPath::from(field.name().as_str());
                builder = builder
                    .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_statistics_enabled(path, EnabledStatistics::None);
            }
        }
    }
    builder.build()
}

fn log_time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let col = batch.column_by_name("log_time")?;
    let values = col.as_primitive_opt::<arrow::datatypes::TimestampNanosecondType>()?;
    let min = arrow::compute::min(values)?;
    let max = arrow::compute::max(values)?;
    Some((min, max))
}
