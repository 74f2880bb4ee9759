//! Writing Parquet part files, behind one seam: [`PartWriter`] takes a part file batch by batch
//! (so the decoded rows a worker holds stay small while its files and row groups stay large) and
//! hands it to one of two writers, chosen by [`ParquetOptions::engine`]:
//! - `fast` ([`fast`]): numeric columns of 4- and 8-byte values written straight from their
//!   values by our column writer ([`numeric`]), the others by the `parquet` crate's Arrow column
//!   writers;
//! - `arrow` ([`arrow_writer`]): every column through the `parquet` crate's `ArrowWriter`.
//!
//! Both take the same per-column storage ([`storage`]): the configured codec for ordinary
//! columns; no compression and no dictionary for large binary columns (JPEG and point clouds do
//! not compress); no compression for numeric columns that a sample shows barely compress, and
//! delta packing for integer columns it shows smaller that way (chosen once per table:
//! [`StorageChoices`]); page statistics on every column outside lists.

mod arrow_writer;
mod fast;
mod file_types;
mod numeric;
mod options;
mod storage;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::location::TableLocation;
use crate::lake::error::{LakeError, Result};
pub use options::{parse_compression, IntegerEncoding, ParquetOptions, WriterEngine, DEFAULT_COMPRESSION};
pub use file_types::{exact_times, file_batch, storage_fields, storage_schema, EXACT_TIME_SUFFIX};
pub use storage::StorageChoices;

pub use crate::lake::error::ParquetSettingsError;


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

/// Writes `batch` as the part file `relative_path` of the table at `location`. Blocks: call it
/// from worker threads, not from async code (use [`write_part_async`] there).
pub fn write_part(location: &TableLocation, relative_path: &str, batch: &RecordBatch, opts: &ParquetOptions) -> Result<PartFile> {
    let mut writer = PartWriter::create(location, relative_path, batch, opts)?;
    writer.write(batch)?;
    writer.finish()
}

/// Writes `batch` as a new part file of the `bag_file` partition of the table at `location`;
/// no file for an empty batch.
pub async fn write_partition_part(location: &TableLocation, bag_file: &str, batch: &RecordBatch, opts: &ParquetOptions) -> Result<Vec<PartFile>> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let relative = format!("bag_file={}/part-{}.parquet", crate::lake::escape_partition_value(bag_file), uuid::Uuid::new_v4().simple());
    Ok(vec![write_part_async(location, &relative, batch, opts).await?])
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
pub(super) enum Sink {
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
    writer: FileWriter,
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
        let first = &file_batch(first)?;
        let sink = match location.local_dir() {
            Some(dir) => {
                let path = dir.join(relative_path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| LakeError::io(parent, e))?;
                }
                let file = File::create(&path).map_err(|e| LakeError::io(&path, e))?;
                Sink::File(file, path)
            }
            None => Sink::Memory(Vec::new()),
        };
        let schema = storage_schema(&first.schema());
        let storage = choices.for_batch(first, opts);
        let local_path = match &sink {
            Sink::File(_, path) => Some(path.clone()),
            Sink::Memory(_) => None,
        };
        let writer = match opts.engine {
            WriterEngine::Fast => fast::RowGroupWriter::try_new(sink, schema.clone(), first, opts, &storage).map(FileWriter::Fast),
            WriterEngine::Arrow => arrow_writer::ArrowFileWriter::try_new(sink, schema.clone(), first, opts, &storage).map(FileWriter::Arrow),
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                // No empty file stays behind for a schema the writer refused.
                if let Some(path) = local_path {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
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
        self.writer.write(&file_batch(batch)?)?;
        self.rows += batch.num_rows() as u64;
        self.log_time_range = match (self.log_time_range, log_time_range(batch)) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// Abandons the file: nothing more is written, and a local file is deleted (a part for an
    /// object store was never uploaded).
    pub fn discard(self) {
        let path = self.location.local_dir().map(|dir| dir.join(&self.relative_path));
        drop(self.writer);
        if let Some(path) = path {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("could not delete the abandoned part file {}: {e}", path.display());
                }
            }
        }
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

    /// Writes the footer and, for an object store, uploads the file (for async callers).
    pub async fn finish_async(self) -> Result<PartFile> {
        let location = self.location.clone();
        let (part, bytes) = self.finish_file()?;
        if let Some(bytes) = bytes {
            location.put(&part.relative_path, bytes).await?;
        }
        Ok(part)
    }

    /// Writes the footer; returns the part and, for an object store, the bytes still to upload.
    fn finish_file(self) -> Result<(PartFile, Option<Vec<u8>>)> {
        let sink = self.writer.finish()?;
        let (size, bytes) = match sink {
            Sink::File(mut file, path) => {
                file.flush().map_err(|e| LakeError::io(&path, e))?;
                let size = file.metadata().map_err(|e| LakeError::io(&path, e))?.len();
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

fn log_time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let times = exact_times(batch, "log_time")?;
    let min = times.iter().min()?;
    let max = times.iter().max()?;
    Some((*min, *max))
}

/// The writer behind a [`PartWriter`].
enum FileWriter {
    Fast(fast::RowGroupWriter),
    Arrow(arrow_writer::ArrowFileWriter),
}

impl FileWriter {
    fn size(&self) -> usize {
        match self {
            FileWriter::Fast(w) => w.size(),
            FileWriter::Arrow(w) => w.size(),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            FileWriter::Fast(w) => w.write(batch),
            FileWriter::Arrow(w) => w.write(batch),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            FileWriter::Fast(w) => w.flush(),
            FileWriter::Arrow(w) => w.flush(),
        }
    }

    fn finish(self) -> Result<Sink> {
        match self {
            FileWriter::Fast(w) => w.finish(),
            FileWriter::Arrow(w) => w.finish(),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use super::storage::*;
    use arrow::array::{Array, ArrayRef};
    use arrow::datatypes::DataType;
    use parquet::basic::{Compression, ZstdLevel};
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
        let log_time = stats_of("log_time_ns").expect("log_time_ns keeps its statistics");
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
