//! Writing Parquet part files: zstd (or the configured codec) for ordinary columns; no
//! compression and no dictionary for large binary columns (JPEG and point clouds do not
//! compress); no compression for numeric columns that a sample shows barely compress, and
//! delta packing for integer columns it shows smaller that way (chosen once per table: see
//! [`StorageChoices`]); page statistics on every column outside lists. A [`PartWriter`] takes
//! a part file batch by batch, so the decoded rows a worker holds stay small while its files
//! and row groups stay large. Row groups are assembled here: numeric columns by
//! [`NumericChunk`] (see [`super::numeric_columns`]), the others by the `parquet` crate's Arrow
//! column writers.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, FieldRef, Fields, Schema, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::errors::ParquetError;
use parquet::file::writer::SerializedFileWriter;
use parquet::basic::{Compression, Encoding, Type as PhysicalType, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnDescPtr, ColumnPath, SchemaDescriptor};

use super::numeric_columns::{self, NumericChunk, NumericLeaf, PageLimits};
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
    /// A row group is written out once its encoded size reaches this many bytes.
    pub row_group_bytes: usize,
    /// Binary columns whose average value is at least this many bytes are stored uncompressed.
    pub large_binary_bytes: usize,
    /// Numeric columns that zstd(1) shrinks by less than this fraction are stored uncompressed.
    pub min_compression_gain: f64,
    /// Whether integer and time columns may be stored DELTA_BINARY_PACKED.
    pub integer_encoding: IntegerEncoding,
}

/// How 32- and 64-bit integer columns (times, sequence numbers, counts) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegerEncoding {
    /// DELTA_BINARY_PACKED, without compression, when a sample of the first batch a table gets
    /// (see [`StorageChoices`]) comes out smaller that way than as plain values under zstd(1)
    /// (or than plain values, when no codec is configured); PLAIN with the codec otherwise.
    Auto,
    /// Always PLAIN with the codec: for readers without DELTA_BINARY_PACKED (Spark's vectorised
    /// reader before 3.3).
    Plain,
}

impl Default for ParquetOptions {
    /// The defaults of the config's `ingest` section (kept there, in one place).
    fn default() -> Self {
        let ingest = crate::config::IngestConfig::default();
        // The default codec name always parses; zstd at its default level otherwise.
        let compression = parse_compression(&ingest.parquet_compression).unwrap_or(Compression::ZSTD(ZstdLevel::default()));
        ParquetOptions::with_compression(compression, &ingest)
    }
}

impl ParquetOptions {
    /// The Parquet settings of an `ingest` config section; fails on an unknown codec name.
    pub fn from_config(ingest: &crate::config::IngestConfig) -> Result<Self, String> {
        Ok(ParquetOptions::with_compression(parse_compression(&ingest.parquet_compression)?, ingest))
    }

    fn with_compression(compression: Compression, ingest: &crate::config::IngestConfig) -> Self {
        ParquetOptions {
            compression,
            max_row_group_rows: ingest.row_group_rows,
            row_group_bytes: ingest.row_group_bytes,
            large_binary_bytes: ingest.large_binary_bytes,
            min_compression_gain: ingest.min_compression_gain,
            integer_encoding: ingest.integer_encoding,
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
    let mut writer = PartWriter::create(location, relative_path, batch, opts)?;
    writer.write(batch)?;
    writer.finish()
}

/// [`write_part`] for async callers.
pub async fn write_part_async(location: &TableLocation, relative_path: &str, batch: &RecordBatch, opts: &ParquetOptions) -> Result<PartFile> {
    let mut writer = PartWriter::create(location, relative_path, batch, opts)?;
    writer.write(batch)?;
    let (part, bytes) = writer.finish_file()?;
    if let Some(bytes) = bytes {
        location.put(relative_path, bytes).await?;
    }
    Ok(part)
}

/// Where a part file's bytes go while it is written: straight into the file of a local table,
/// or into memory for an object store, which takes whole objects.
enum Sink {
    File(File, PathBuf),
    Memory(Vec<u8>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f, _) => f.write(buf),
            Sink::Memory(v) => v.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f, _) => f.flush(),
            Sink::Memory(_) => Ok(()),
        }
    }
}

/// One part file being written: batches go in as they are decoded, a row group is written out
/// whenever it reaches [`ParquetOptions::row_group_bytes`], [`PartWriter::finish`] writes the
/// footer (and uploads the file to an object store).
pub struct PartWriter {
    location: TableLocation,
    relative_path: String,
    writer: RowGroupWriter,
    schema: SchemaRef,
    rows: u64,
    log_time_range: Option<(i64, i64)>,
}

impl PartWriter {
    /// Starts the part file `relative_path` of the table at `location`. Column settings (which
    /// binary columns stay uncompressed) are chosen from `first`, the first batch to be written.
    pub fn create(location: &TableLocation, relative_path: &str, first: &RecordBatch, opts: &ParquetOptions) -> Result<PartWriter> {
        PartWriter::create_with(location, relative_path, first, opts, &StorageChoices::default())
    }

    /// [`PartWriter::create`] with the column storage of `choices`, made for an earlier part
    /// file of the same table and schema (or chosen now from `first` and kept there).
    pub fn create_with(
        location: &TableLocation,
        relative_path: &str,
        first: &RecordBatch,
        opts: &ParquetOptions,
        choices: &StorageChoices,
    ) -> Result<PartWriter> {
        let sink = match location.local_dir() {
            Some(dir) => {
                let path = dir.join(relative_path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
                Sink::File(file, path)
            }
            None => Sink::Memory(Vec::new()),
        };
        let schema = storage_schema(&first.schema());
        let storage = choices.for_batch(first, opts);
        let writer = RowGroupWriter::try_new(sink, schema.clone(), first, opts, &storage)?;
        Ok(PartWriter {
            schema,
            location: location.clone(),
            relative_path: relative_path.to_string(),
            writer,
            rows: 0,
            log_time_range: None,
        })
    }

    /// The schema of the file: batches written to it must have this [`storage_schema`].
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Bytes of the file so far, including the row group not yet written out.
    pub fn size(&self) -> usize {
        self.writer.size()
    }

    /// Appends `batch` (of the file's schema, or one stored as it: see [`storage_schema`]).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows() as u64;
        self.log_time_range = match (self.log_time_range, log_time_range(batch)) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// Writes out the rows written so far as a row group (if any), so that they no longer take
    /// memory; later rows start the next one.
    pub fn end_row_group(&mut self) -> Result<()> {
        self.writer.flush()
    }

    /// Writes the footer and, for an object store, uploads the file. Blocks: not for async code.
    pub fn finish(self) -> Result<PartFile> {
        let location = self.location.clone();
        let (part, bytes) = self.finish_file()?;
        if let Some(bytes) = bytes {
            location.put_blocking(&part.relative_path, bytes)?;
        }
        Ok(part)
    }

    /// Writes the footer; returns the part and, for an object store, the bytes still to upload.
    fn finish_file(self) -> Result<(PartFile, Option<Vec<u8>>)> {
        let sink = self.writer.finish()?;
        let (size, bytes) = match sink {
            Sink::File(mut file, path) => {
                file.flush().map_err(|e| Error::io(&path, e))?;
                let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
                (size, None)
            }
            Sink::Memory(bytes) => (bytes.len() as u64, Some(bytes)),
        };
        let part = PartFile {
            relative_path: self.relative_path,
            size,
            rows: self.rows,
            log_time_range: self.log_time_range,
        };
        Ok((part, bytes))
    }
}

/// The Parquet file of a part, assembled row group by row group. Columns of 4- and 8-byte
/// numbers (outside variable-length lists) are written by [`NumericChunk`] straight from their
/// values; every other column goes through the `parquet` crate's Arrow column writers. Both
/// produce buffered column chunks that are spliced into the row group in schema order when it
/// is full.
struct RowGroupWriter {
    file: SerializedFileWriter<Sink>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Per top-level field, per leaf column: how [`NumericChunk`] writes it, or `None` for the
    /// Arrow path.
    plans: Vec<Vec<Option<NumericPlan>>>,
    /// Index of each top-level field's first leaf column.
    first_leaf: Vec<usize>,
    page_limits: PageLimits,
    max_rows: usize,
    row_group_bytes: usize,
    in_progress: Option<RowGroupInProgress>,
}

/// A leaf column written by [`NumericChunk`], with the codec and statistics chosen for it.
#[derive(Clone)]
struct NumericPlan {
    leaf: NumericLeaf,
    codec: Compression,
    encoding: Encoding,
    statistics: bool,
}

/// The column chunks of the row group being filled, one per leaf column.
struct RowGroupInProgress {
    columns: Vec<LeafWriter>,
    rows: usize,
}

enum LeafWriter {
    Arrow(ArrowColumnWriter),
    Numeric(NumericChunk),
}

impl LeafWriter {
    fn encoded_bytes(&self) -> usize {
        match self {
            LeafWriter::Arrow(writer) => writer.get_estimated_total_bytes(),
            LeafWriter::Numeric(chunk) => chunk.encoded_bytes(),
        }
    }
}

impl RowGroupWriter {
    fn try_new(sink: Sink, schema: SchemaRef, first: &RecordBatch, opts: &ParquetOptions, storage: &[Storage]) -> Result<Self> {
        let descriptor = parquet::arrow::ArrowSchemaConverter::new().convert(schema.as_ref())?;
        let props = writer_properties(&descriptor, first, opts, storage);
        let mut first_leaf = vec![usize::MAX; schema.fields().len()];
        let mut leaf_counts = vec![0; schema.fields().len()];
        for leaf in (0..descriptor.num_columns()).rev() {
            let root = descriptor.get_column_root_idx(leaf);
            first_leaf[root] = leaf;
            leaf_counts[root] += 1;
        }
        let plans: Vec<Vec<Option<NumericPlan>>> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let leaves = numeric_columns::plan_field(field);
                if leaves.len() != leaf_counts[i] {
                    return vec![None; leaf_counts[i]];
                }
                leaves
                    .into_iter()
                    .enumerate()
                    .map(|(k, leaf)| {
                        let leaf = leaf?;
                        let column = descriptor.columns().get(first_leaf[i] + k)?;
                        let codec = props.compression(column.path());
                        let statistics = props.statistics_enabled(column.path()) != EnabledStatistics::None;
                        let encoding = props.encoding(column.path()).unwrap_or(Encoding::PLAIN);
                        let writes = numeric_columns::writes_codec(codec) && leaf.writes_encoding(encoding) && leaf.fits(column);
                        writes.then_some(NumericPlan { leaf, codec, encoding, statistics })
                    })
                    .collect()
            })
            .collect();
        // The numeric columns' codec is applied by their own writer; the Arrow writer made for
        // each of them (and dropped unused) is told to build no compressor.
        let mut builder = props.into_builder();
        for (field_plans, &first) in plans.iter().zip(&first_leaf) {
            for (k, plan) in field_plans.iter().enumerate() {
                if let (Some(_), Some(column)) = (plan, descriptor.columns().get(first + k)) {
                    builder = builder.set_column_compression(column.path().clone(), Compression::UNCOMPRESSED);
                }
            }
        }
        let mut props = builder.build();
        parquet::arrow::add_encoded_arrow_schema_to_metadata(schema.as_ref(), &mut props);
        let page_limits = PageLimits { bytes: props.data_page_size_limit(), rows: props.data_page_row_count_limit() };
        let file = SerializedFileWriter::new(sink, descriptor.root_schema_ptr(), Arc::new(props))?;
        let factory = ArrowRowGroupWriterFactory::new(&file, schema.clone());
        Ok(RowGroupWriter {
            file,
            factory,
            schema,
            plans,
            first_leaf,
            page_limits,
            max_rows: opts.max_row_group_rows.max(1),
            row_group_bytes: opts.row_group_bytes.max(1),
            in_progress: None,
        })
    }

    /// Bytes written to the file plus the encoded size of the row group being filled.
    fn size(&self) -> usize {
        self.file.bytes_written() + self.in_progress_bytes()
    }

    fn in_progress_bytes(&self) -> usize {
        self.in_progress
            .as_ref()
            .map_or(0, |group| group.columns.iter().map(LeafWriter::encoded_bytes).sum())
    }

    /// Adds `batch` to the row group being filled, starting a new one whenever the current one
    /// reaches the row or byte limit.
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut start = 0;
        while start < batch.num_rows() {
            if self.in_progress.is_none() {
                self.in_progress = Some(self.start_row_group()?);
            }
            let buffered = self.in_progress.as_ref().map_or(0, |group| group.rows);
            let rows = (batch.num_rows() - start).min(self.max_rows.saturating_sub(buffered).max(1));
            self.write_rows(&batch.slice(start, rows))?;
            start += rows;
            let full_rows = self.in_progress.as_ref().is_some_and(|group| group.rows >= self.max_rows);
            if full_rows || self.in_progress_bytes() >= self.row_group_bytes {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn start_row_group(&self) -> Result<RowGroupInProgress> {
        let index = self.file.flushed_row_groups().len();
        let mut columns: Vec<LeafWriter> =
            self.factory.create_column_writers(index)?.into_iter().map(LeafWriter::Arrow).collect();
        let leaves = self.file.schema_descr();
        for (field_plans, &first) in self.plans.iter().zip(&self.first_leaf) {
            for (k, plan) in field_plans.iter().enumerate() {
                if let (Some(plan), Some(slot)) = (plan, columns.get_mut(first + k)) {
                    let chunk = NumericChunk::new(
                        leaves.column(first + k),
                        plan.leaf.clone(),
                        plan.codec,
                        plan.encoding,
                        self.page_limits,
                        plan.statistics,
                    )?;
                    *slot = LeafWriter::Numeric(chunk);
                }
            }
        }
        Ok(RowGroupInProgress { columns, rows: 0 })
    }

    fn write_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(group) = self.in_progress.as_mut() else { return Ok(()) };
        for (i, (field, column)) in self.schema.fields().iter().zip(batch.columns()).enumerate() {
            let (plans, first) = (&self.plans[i], self.first_leaf[i]);
            let Some(writers) = group.columns.get_mut(first..first.saturating_add(plans.len())) else {
                return Err(Error::Parquet(ParquetError::General(format!(
                    "column {} has no leaf columns in the file's schema",
                    field.name()
                ))));
            };
            // Numeric leaves straight from their values.
            for writer in writers.iter_mut() {
                if let LeafWriter::Numeric(chunk) = writer {
                    chunk.write(column)?;
                }
            }
            // The other leaves through the Arrow writers, from the part of the field they lie in.
            let arrow_leaves = if plans.iter().all(Option::is_none) {
                compute_leaves(field, column)?
            } else if plans.iter().any(Option::is_none) {
                let mut keep = plans.iter().map(Option::is_none);
                match numeric_columns::project(field, column, &mut keep)? {
                    Some((part, array)) => compute_leaves(&part, &array)?,
                    None => Vec::new(),
                }
            } else {
                Vec::new()
            };
            let arrow_writers = writers.iter_mut().filter_map(|w| match w {
                LeafWriter::Arrow(writer) => Some(writer),
                LeafWriter::Numeric(_) => None,
            });
            let mut written = 0;
            for (leaf, writer) in arrow_leaves.iter().zip(arrow_writers) {
                writer.write(leaf)?;
                written += 1;
            }
            if written != arrow_leaves.len() || written != plans.iter().filter(|p| p.is_none()).count() {
                return Err(Error::Parquet(ParquetError::General(format!(
                    "column {} has {written} leaves written by the Arrow writers, out of line with the file's schema",
                    field.name()
                ))));
            }
        }
        group.rows += batch.num_rows();
        Ok(())
    }

    /// Writes the row group being filled (if any) to the file.
    fn flush(&mut self) -> Result<()> {
        let Some(group) = self.in_progress.take() else { return Ok(()) };
        let mut row_group = self.file.next_row_group()?;
        for column in group.columns {
            match column {
                LeafWriter::Arrow(writer) => writer.close()?.append_to_row_group(&mut row_group)?,
                LeafWriter::Numeric(chunk) => {
                    let (bytes, close) = chunk.close()?;
                    row_group.append_column(&bytes, close)?;
                }
            }
        }
        row_group.close()?;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the sink.
    fn finish(mut self) -> Result<Sink> {
        self.flush()?;
        Ok(self.file.into_inner()?)
    }
}

/// The writer settings of a part file whose Parquet schema is `descriptor`, `batch` its first
/// batch.
fn writer_properties(descriptor: &SchemaDescriptor, batch: &RecordBatch, opts: &ParquetOptions, storage: &[Storage]) -> WriterProperties {
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
    //
    // Numeric columns that zstd(1) barely shrinks (noise-like measurements) are stored
    // uncompressed, and integer columns smaller delta-packed, as `storage` says (judged on a
    // sample: see `choose_storage`).
    //
    // Values inside lists (covariance matrices, detected objects, lane points) get no min/max
    // statistics: no query engine prunes files or pages on list elements, and computing them
    // (with the level histograms that come along) costs a comparison per element.
    for (i, leaf) in descriptor.columns().iter().enumerate() {
        match storage.get(i).copied().unwrap_or(Storage::AsConfigured) {
            Storage::AsConfigured => {}
            Storage::Uncompressed => builder = builder.set_column_compression(leaf.path().clone(), Compression::UNCOMPRESSED),
            Storage::DeltaPacked => {
                builder = builder
                    .set_column_compression(leaf.path().clone(), Compression::UNCOMPRESSED)
                    .set_column_encoding(leaf.path().clone(), Encoding::DELTA_BINARY_PACKED);
            }
        }
        if !matches!(leaf.physical_type(), PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY) {
            builder = builder.set_column_dictionary_enabled(leaf.path().clone(), false);
        }
        if leaf.max_rep_level() > 0 {
            builder = builder.set_column_statistics_enabled(leaf.path().clone(), EnabledStatistics::None);
        }
    }
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let value_bytes = match field.data_type() {
            DataType::Binary => column.as_binary::<i32>().value_data().len(),
            DataType::BinaryView => column.as_binary_view().views().iter().map(|&v| v as u32 as usize).sum(),
            _ => continue,
        };
        if !column.is_empty() {
            let avg = value_bytes / column.len();
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

/// Per Parquet leaf column of `batch` (in schema order), how it is stored, judged on a sample
/// of its values. Leaf arrays line up with the descriptor's leaves; if some type ever made them
/// differ, no column is judged and all keep the codec.
fn choose_storage(batch: &RecordBatch, opts: &ParquetOptions) -> Vec<Storage> {
    let Ok(descriptor) = parquet::arrow::ArrowSchemaConverter::new().convert(batch.schema().as_ref()) else {
        return Vec::new();
    };
    let leaves = Some(leaf_arrays(batch)).filter(|leaves| leaves.len() == descriptor.num_columns());
    let sampler = ColumnSampler::new(opts);
    let judge = |(i, leaf): (usize, &ColumnDescPtr)| {
        let values = leaves.as_ref().and_then(|leaves| leaves.get(i));
        values.map_or(Storage::AsConfigured, |values| sampler.choose(leaf.physical_type(), values.as_ref()))
    };
    descriptor.columns().iter().enumerate().map(judge).collect()
}

/// How the columns of one table are stored, chosen from a sample of the first batch written
/// and reused for the table's other part files of the same ingest (one per worker, and more
/// when a file reaches its size limit), as long as the batches have the same schema. Sampling
/// compresses 8 KiB of every numeric column: when each chunk range had its own part files,
/// that was 3 % of ingesting a small-message drive (bench/ANALYSIS.md, tenth round), to reach
/// the same choices again.
#[derive(Default)]
pub struct StorageChoices {
    chosen: std::sync::Mutex<Option<(SchemaRef, Arc<Vec<Storage>>)>>,
}

impl StorageChoices {
    /// The choices for `batch`: the ones made for its schema, or new ones from its sample.
    fn for_batch(&self, batch: &RecordBatch, opts: &ParquetOptions) -> Arc<Vec<Storage>> {
        let schema = batch.schema();
        // A poisoned lock (a writer panicked) only costs a fresh sample.
        if let Ok(chosen) = self.chosen.lock() {
            if let Some((_, choices)) = chosen.as_ref().filter(|(known, _)| *known == schema) {
                return choices.clone();
            }
        }
        let choices = Arc::new(choose_storage(batch, opts));
        if let Ok(mut chosen) = self.chosen.lock() {
            *chosen = Some((schema, choices.clone()));
        }
        choices
    }
}

/// The arrays holding the values of each Parquet leaf column of `batch`, in the order of the
/// Parquet schema (depth first: struct fields in order, a list's items after the list).
fn leaf_arrays(batch: &RecordBatch) -> Vec<ArrayRef> {
    fn visit(array: &ArrayRef, out: &mut Vec<ArrayRef>) {
        match array.data_type() {
            DataType::Struct(_) => array.as_struct().columns().iter().for_each(|c| visit(c, out)),
            DataType::List(_) => visit(array.as_list::<i32>().values(), out),
            DataType::FixedSizeList(_, _) => visit(array.as_fixed_size_list().values(), out),
            _ => out.push(array.clone()),
        }
    }
    let mut out = Vec::new();
    batch.columns().iter().for_each(|c| visit(c, &mut out));
    out
}

/// How a numeric column is stored, chosen from a sample of its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// PLAIN values under the configured codec.
    AsConfigured,
    /// PLAIN values, uncompressed: the codec barely shrinks them.
    Uncompressed,
    /// DELTA_BINARY_PACKED integers, uncompressed: smaller than the codec makes plain values.
    DeltaPacked,
}

/// Decides, from a sample of a column's values, how that column is stored. Only numeric
/// columns of 4- or 8-byte values are judged (see [`numeric_columns::fixed_width_value_bytes`]);
/// the others keep the configured codec and encoding.
struct ColumnSampler {
    /// Whether a codec is configured (zstd(1) then stands for it in the comparisons).
    compressing: bool,
    /// Required gain of the codec over plain values, or `None` when every column keeps the codec.
    min_gain: Option<f64>,
    /// Whether integer columns may be delta-packed.
    delta: bool,
}

impl ColumnSampler {
    /// Bytes of a column's values the sample takes (from the start of the batch).
    const SAMPLE_BYTES: usize = 8 << 10;
    /// Columns with fewer value bytes than this in the batch keep the codec (too small to judge,
    /// and too small to matter).
    const MIN_BYTES: usize = 4 << 10;

    fn new(opts: &ParquetOptions) -> Self {
        let compressing = opts.compression != Compression::UNCOMPRESSED;
        ColumnSampler {
            compressing,
            min_gain: (compressing && opts.min_compression_gain > 0.0).then_some(opts.min_compression_gain),
            delta: opts.integer_encoding == IntegerEncoding::Auto,
        }
    }

    /// The storage of a column of physical type `physical` holding `values`.
    fn choose(&self, physical: PhysicalType, values: &dyn Array) -> Storage {
        let Some(bytes) = numeric_columns::fixed_width_value_bytes(values) else { return Storage::AsConfigured };
        if bytes.len() < Self::MIN_BYTES {
            return Storage::AsConfigured;
        }
        let sample = &bytes.as_slice()[..bytes.len().min(Self::SAMPLE_BYTES)];
        let judge_codec = self.min_gain.is_some();
        let integers = matches!(physical, PhysicalType::INT32 | PhysicalType::INT64);
        let judge_delta = self.delta && integers;
        if !judge_codec && !judge_delta {
            return Storage::AsConfigured;
        }
        // If zstd cannot make a context, the codec is not judged.
        let compressed = if self.compressing {
            numeric_columns::zstd_compress(1, sample, &mut Vec::new()).ok()
        } else {
            Some(sample.len())
        };
        if judge_delta {
            let packed = numeric_columns::delta_packed_len(sample, values.data_type().primitive_width().unwrap_or(8));
            if compressed.is_some_and(|compressed| packed <= compressed) {
                return Storage::DeltaPacked;
            }
        }
        match (self.min_gain, compressed) {
            (Some(min_gain), Some(n)) if (n as f64) > (1.0 - min_gain) * sample.len() as f64 => Storage::Uncompressed,
            _ => Storage::AsConfigured,
        }
    }
}

/// The schema batches of `schema` are stored as in Parquet files and table schemas: byte-array
/// views (an in-memory layout that lets large values point into the bag) become plain binary, so
/// every reader sees `binary`. The Parquet writer accepts views for binary columns.
pub fn storage_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(storage_fields(schema.fields()), schema.metadata().clone()))
}

/// [`storage_schema`] for a list of fields.
pub fn storage_fields(fields: &Fields) -> Fields {
    fields.iter().map(storage_field).collect()
}

fn storage_field(field: &FieldRef) -> FieldRef {
    Arc::new(field.as_ref().clone().with_data_type(storage_type(field.data_type())))
}

fn storage_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::BinaryView => DataType::Binary,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(storage_field).collect()),
        DataType::List(item) => DataType::List(storage_field(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(storage_field(item), *size),
        other => other.clone(),
    }
}

fn log_time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let col = batch.column_by_name("log_time")?;
    let values = col.as_primitive_opt::<arrow::datatypes::TimestampNanosecondType>()?;
    let min = arrow::compute::min(values)?;
    let max = arrow::compute::max(values)?;
    Some((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::sync::Arc;

    fn batch(first_time: i64, rows: usize, blob: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("log_time", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true),
            Field::new("value", DataType::Int64, true),
            Field::new("blob", DataType::Binary, true),
        ]));
        let times: Vec<i64> = (0..rows as i64).map(|i| first_time + i).collect();
        let values: Vec<i64> = (0..rows as i64).collect();
        let blobs: Vec<Vec<u8>> = (0..rows).map(|i| vec![(i % 251) as u8; blob]).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")),
                Arc::new(Int64Array::from(values)),
                Arc::new(BinaryArray::from_iter_values(blobs.iter())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn part_writer_streams_batches_into_one_file_with_row_groups_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let opts = ParquetOptions { row_group_bytes: 1 << 16, ..ParquetOptions::default() };
        let batches = [batch(1_000, 100, 2_000), batch(5_000, 100, 2_000), batch(500, 50, 2_000)];
        let mut writer = PartWriter::create(&location, "bag_file=a/part-0.parquet", &batches[0], &opts).unwrap();
        for b in &batches {
            writer.write(b).unwrap();
        }
        let part = writer.finish().unwrap();

        assert_eq!(part.rows, 250);
        assert_eq!(part.log_time_range, Some((500, 5_099)));
        let path = dir.path().join("bag_file=a/part-0.parquet");
        assert_eq!(part.size, std::fs::metadata(&path).unwrap().len());
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 250);
        // 200 KB of uncompressed blobs per batch, 64 KiB row groups: one row group per batch.
        assert_eq!(meta.num_row_groups(), 3);
    }

    #[test]
    fn list_elements_get_no_statistics_while_top_level_columns_keep_theirs() {
        use arrow::array::ListArray;
        use arrow::datatypes::Float64Type;
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let base = batch(100, 3, 4);
        let covariance = ListArray::from_iter_primitive::<Float64Type, _, _>((0..3).map(|i| Some(vec![Some(i as f64); 9])));
        let mut fields = base.schema().fields().to_vec();
        fields.push(Arc::new(Field::new("covariance", covariance.data_type().clone(), true)));
        let mut columns = base.columns().to_vec();
        columns.push(Arc::new(covariance));
        let with_list = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        write_part(&location, "p.parquet", &with_list, &ParquetOptions::default()).unwrap();

        let reader = SerializedFileReader::new(File::open(dir.path().join("p.parquet")).unwrap()).unwrap();
        let row_group = reader.metadata().row_group(0);
        let stats_of = |name: &str| {
            let column = row_group.columns().iter().find(|c| c.column_path().string().starts_with(name)).unwrap();
            column.statistics().cloned()
        };
        let log_time = stats_of("log_time").expect("log_time keeps its statistics");
        assert_eq!(log_time.min_bytes_opt(), Some(&100i64.to_le_bytes()[..]));
        assert!(stats_of("covariance").is_none(), "list elements should carry no statistics");
    }

    /// A batch with a noise-like float column, a constant one, a counter, integers that jump
    /// between two far values, random bytes, and a list of noise inside a struct, 4,096 rows:
    /// enough for the sampler to judge the 4- and 8-byte columns.
    fn mixed_compressibility_batch() -> RecordBatch {
        use arrow::array::{Float64Array, ListArray, StructArray};
        use arrow::datatypes::Float64Type;
        let rows = 4_096usize;
        // A fixed-seed xorshift: full-entropy mantissas, like a real accelerometer's readings.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let noisy = Float64Array::from_iter_values((0..rows).map(|_| noise()));
        let constant = Float64Array::from_iter_values((0..rows).map(|_| 0.01));
        let counter = Int64Array::from_iter_values(0..rows as i64);
        // Every difference is ±2^40: 42 bits each as deltas, a repeated pattern to zstd.
        let jumps = Int64Array::from_iter_values((0..rows).map(|i| if i % 2 == 0 { 0 } else { 1 << 40 }));
        let random_bytes = arrow::array::UInt8Array::from_iter_values((0..rows).map(|_| (noise().to_bits() >> 20) as u8));
        let noisy_lists = ListArray::from_iter_primitive::<Float64Type, _, _>((0..rows).map(|_| Some(vec![Some(noise()), Some(noise())])));
        let nested = StructArray::from(vec![(
            Arc::new(Field::new("samples", noisy_lists.data_type().clone(), true)),
            Arc::new(noisy_lists) as ArrayRef,
        )]);
        let schema = Schema::new(vec![
            Field::new("noisy", DataType::Float64, false),
            Field::new("constant", DataType::Float64, false),
            Field::new("counter", DataType::Int64, false),
            Field::new("jumps", DataType::Int64, false),
            Field::new("random_bytes", DataType::UInt8, false),
            Field::new("nested", nested.data_type().clone(), false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(noisy),
            Arc::new(constant),
            Arc::new(counter),
            Arc::new(jumps),
            Arc::new(random_bytes),
            Arc::new(nested),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    /// Per column of the written file: its path, codec, and whether its values are
    /// DELTA_BINARY_PACKED; and the file read back equals the batch.
    fn storage_written(opts: &ParquetOptions) -> Vec<(String, Compression, bool)> {
        storage_written_with(&mixed_compressibility_batch(), opts, &StorageChoices::default())
    }

    /// [`storage_written`] for `batch`, written with the storage `choices`.
    fn storage_written_with(batch: &RecordBatch, opts: &ParquetOptions, choices: &StorageChoices) -> Vec<(String, Compression, bool)> {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let mut writer = PartWriter::create_with(&location, "p.parquet", batch, opts, choices).unwrap();
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        let batch = batch.clone();
        let path = dir.path().join("p.parquet");
        let read: Vec<RecordBatch> = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(File::open(&path).unwrap(), 1 << 20)
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(read, [batch]);
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let row_group = reader.metadata().row_group(0);
        row_group
            .columns()
            .iter()
            .map(|c| {
                let delta = c.encodings().any(|e| e == parquet::basic::Encoding::DELTA_BINARY_PACKED);
                (c.column_path().string(), c.compression(), delta)
            })
            .collect()
    }

    #[test]
    fn each_column_is_stored_the_way_its_sample_shows_smallest_for_the_cpu() {
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).unwrap());
        let none = Compression::UNCOMPRESSED;
        let storage = storage_written(&ParquetOptions::default());
        let expected = [
            ("noisy", none, false),
            ("constant", zstd, false),
            // Steps of one: no bits at all as deltas.
            ("counter", none, true),
            ("jumps", zstd, false),
            // Random in memory, but stored as 4-byte integers that zstd shrinks anyway.
            ("random_bytes", zstd, false),
            ("nested.samples.list.item", none, false),
        ];
        assert_eq!(storage, expected.map(|(path, codec, delta)| (path.to_string(), codec, delta)));

        // `plain` keeps the codec for the counter; a required gain of 0 compresses every
        // column, noise included.
        let plain = ParquetOptions { integer_encoding: IntegerEncoding::Plain, ..ParquetOptions::default() };
        let storage = storage_written(&ParquetOptions { min_compression_gain: 0.0, ..plain.clone() });
        assert!(storage.iter().all(|(_, codec, delta)| *codec == zstd && !delta), "{storage:?}");

        // Without a codec, delta packing pays for both integer columns: 0 and 42 bits a value
        // are less than 64.
        let uncompressed = storage_written(&ParquetOptions { compression: none, ..ParquetOptions::default() });
        let packed: Vec<&str> = uncompressed.iter().filter(|(_, _, delta)| *delta).map(|(path, _, _)| path.as_str()).collect();
        assert_eq!(packed, ["counter", "jumps"]);
        assert!(uncompressed.iter().all(|(_, codec, _)| *codec == none));
    }

    #[test]
    fn a_tables_later_part_files_reuse_the_storage_chosen_for_its_first() {
        let opts = ParquetOptions::default();
        let storage_of = |written: &[(String, Compression, bool)], name: &str| {
            written.iter().find(|(path, _, _)| path == name).map(|(_, codec, delta)| (*codec, *delta)).unwrap()
        };
        let first = mixed_compressibility_batch();
        // The same schema, with the counter's values replaced by far jumps: alone, they are
        // judged better under zstd than delta-packed.
        let mut columns = first.columns().to_vec();
        columns[2] = first.column(3).clone();
        let second = RecordBatch::try_new(first.schema(), columns).unwrap();
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).unwrap());
        assert_eq!(storage_of(&storage_written_with(&second, &opts, &StorageChoices::default()), "counter"), (zstd, false));

        let choices = StorageChoices::default();
        let written = storage_written_with(&first, &opts, &choices);
        assert_eq!(storage_of(&written, "counter"), (Compression::UNCOMPRESSED, true));
        let written = storage_written_with(&second, &opts, &choices);
        assert_eq!(storage_of(&written, "counter"), (Compression::UNCOMPRESSED, true), "chosen with the first part file");

        // A batch of another schema gets choices of its own.
        let renamed = Schema::new(first.schema().fields().iter().map(|f| f.as_ref().clone().with_name(format!("{}_2", f.name()))).collect::<Vec<_>>());
        let other = RecordBatch::try_new(Arc::new(renamed), second.columns().to_vec()).unwrap();
        assert_eq!(storage_of(&storage_written_with(&other, &opts, &choices), "counter_2"), (zstd, false));
    }

    #[test]
    fn write_part_writes_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let part = write_part(&location, "p.parquet", &batch(7, 10, 4), &ParquetOptions::default()).unwrap();
        assert_eq!((part.rows, part.log_time_range), (10, Some((7, 16))));
    }
}
