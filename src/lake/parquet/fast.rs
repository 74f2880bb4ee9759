//! The fast writer: a part file assembled row group by row group, numeric columns by
//! [`NumericChunk`] straight from their values (see [`super::numeric`]), every other column by
//! the `parquet` crate's Arrow column writers, spliced into one row group in schema order.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::basic::{Compression, Encoding};
use parquet::errors::ParquetError as CrateError;
use parquet::file::properties::EnabledStatistics;
use parquet::file::writer::SerializedFileWriter;

use super::numeric::{self, NumericChunk, NumericLeaf, PageLimits};
use super::storage::{writer_properties, Storage};
use super::{ParquetOptions, Sink};
use crate::lake::error::{LakeError, Result};

/// The Parquet file of a part, assembled row group by row group. Columns of 4- and 8-byte
/// numbers (outside variable-length lists) are written by [`NumericChunk`] straight from their
/// values; every other column goes through the `parquet` crate's Arrow column writers. Both
/// produce buffered column chunks that are spliced into the row group in schema order when it
/// is full.
pub(super) struct RowGroupWriter {
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
    pub(super) fn try_new(sink: Sink, schema: SchemaRef, first: &RecordBatch, opts: &ParquetOptions, storage: &[Storage]) -> Result<Self> {
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
                let leaves = numeric::plan_field(field);
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
                        let writes = numeric::writes_codec(codec) && leaf.writes_encoding(encoding) && leaf.fits(column);
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
    pub(super) fn size(&self) -> usize {
        self.file.bytes_written() + self.in_progress_bytes()
    }

    fn in_progress_bytes(&self) -> usize {
        self.in_progress
            .as_ref()
            .map_or(0, |group| group.columns.iter().map(LeafWriter::encoded_bytes).sum())
    }

    /// Adds `batch` to the row group being filled, starting a new one whenever the current one
    /// reaches the row or byte limit.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
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
                return Err(LakeError::Parquet(CrateError::General(format!(
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
                match numeric::project(field, column, &mut keep)? {
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
                return Err(LakeError::Parquet(CrateError::General(format!(
                    "column {} has {written} leaves written by the Arrow writers, out of line with the file's schema",
                    field.name()
                ))));
            }
        }
        group.rows += batch.num_rows();
        Ok(())
    }

    /// Writes the row group being filled (if any) to the file.
    pub(super) fn flush(&mut self) -> Result<()> {
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
    pub(super) fn finish(mut self) -> Result<Sink> {
        self.flush()?;
        Ok(self.file.into_inner()?)
    }
}
