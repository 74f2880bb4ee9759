//! The reference writer: every column through the `parquet` crate's `ArrowWriter`, with the same
//! writer properties as the fast writer (codec, encoding, dictionary and statistics per leaf
//! column). Chosen with `ingest.parquet_writer = "arrow"`; the suite's table checks run through
//! both writers.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;

use super::options::ParquetOptions;
use super::storage::{writer_properties, Storage};
use super::Sink;
use crate::lake::error::Result;

/// A part file written by `ArrowWriter`; a row group is written out once its encoded size
/// reaches [`ParquetOptions::row_group_bytes`] (or its row count the row limit).
pub(super) struct ArrowFileWriter {
    writer: ArrowWriter<Sink>,
    row_group_bytes: usize,
}

impl ArrowFileWriter {
    pub(super) fn try_new(sink: Sink, schema: SchemaRef, first: &RecordBatch, opts: &ParquetOptions, storage: &[Storage]) -> Result<Self> {
        let descriptor = parquet::arrow::ArrowSchemaConverter::new().convert(schema.as_ref())?;
        let props = writer_properties(&descriptor, first, opts, storage);
        let writer = ArrowWriter::try_new(sink, schema, Some(props))?;
        Ok(ArrowFileWriter { writer, row_group_bytes: opts.row_group_bytes.max(1) })
    }

    /// Bytes written to the file plus the estimated size of the row group being filled.
    pub(super) fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        if self.writer.in_progress_size() >= self.row_group_bytes {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Writes the row group being filled (if any) to the file.
    pub(super) fn flush(&mut self) -> Result<()> {
        Ok(self.writer.flush()?)
    }

    /// Writes the last row group and the footer; returns the sink.
    pub(super) fn finish(self) -> Result<Sink> {
        Ok(self.writer.into_inner()?)
    }
}
