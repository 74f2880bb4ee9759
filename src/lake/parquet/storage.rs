//! How each column of a part file is stored: the writer properties (codec, dictionary,
//! statistics per leaf column), the per-table choice of uncompressed or delta-packed numeric
//! columns from a sample ([`StorageChoices`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::basic::{Compression, Encoding, Type as PhysicalType};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnDescPtr, ColumnPath, SchemaDescriptor};

use super::numeric;
use super::{IntegerEncoding, ParquetOptions};

/// The writer settings of a part file whose Parquet schema is `descriptor`, `batch` its first
/// batch.
pub(super) fn writer_properties(descriptor: &SchemaDescriptor, batch: &RecordBatch, opts: &ParquetOptions, storage: &[Storage]) -> WriterProperties {
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
/// compresses a few KiB of every numeric column; choosing once per table keeps that cost off
/// every later part file.
#[derive(Default)]
pub struct StorageChoices {
    chosen: std::sync::Mutex<Option<(SchemaRef, Arc<Vec<Storage>>)>>,
}

impl StorageChoices {
    /// The choices for `batch`: the ones made for its schema, or new ones from its sample.
    pub(super) fn for_batch(&self, batch: &RecordBatch, opts: &ParquetOptions) -> Arc<Vec<Storage>> {
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
pub(super) enum Storage {
    /// PLAIN values under the configured codec.
    AsConfigured,
    /// PLAIN values, uncompressed: the codec barely shrinks them.
    Uncompressed,
    /// DELTA_BINARY_PACKED integers, uncompressed: smaller than the codec makes plain values.
    DeltaPacked,
}

/// Decides, from a sample of a column's values, how that column is stored. Only numeric
/// columns of 4- or 8-byte values are judged (see [`numeric::fixed_width_value_bytes`]);
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
        let Some(bytes) = numeric::fixed_width_value_bytes(values) else { return Storage::AsConfigured };
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
            numeric::zstd_compress(1, sample, &mut Vec::new()).ok()
        } else {
            Some(sample.len())
        };
        if judge_delta {
            let packed = numeric::delta_packed_len(sample, values.data_type().primitive_width().unwrap_or(8));
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

