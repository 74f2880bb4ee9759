//! Column chunks for fixed-size numeric arrays (covariance matrices: `float64[9]`, `float64[36]`),
//! written straight from the decoded values.
//!
//! These arrays are most of the bytes of small-message drives (three `float64[9]` per IMU
//! message) and nearly always constant. The generic Arrow-to-Parquet path spends more on them
//! than zstd does: it builds a repetition and a definition level per element, gathers every value
//! through an index list into a temporary vector, copies it into a page buffer grown from empty,
//! and keeps a zstd context per column chunk. Here a page is built from what a fixed-size list
//! already says: every row repeats the same level pattern, and the values are one contiguous
//! slice of the child array. The pages are ordinary version-1 data pages (PLAIN values, RLE
//! levels), their headers and the column metadata are made by the `parquet` crate, and the chunk
//! is spliced into the row group with [`SerializedRowGroupWriter::append_column`], so readers see
//! the same file structure as before.
//!
//! Only top-level fixed-size lists of 4- or 8-byte numbers are taken, and only with zstd or no
//! compression; everything else keeps the generic path.

use std::cell::RefCell;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray};
use arrow::datatypes::{DataType, Field};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

type Result<T> = std::result::Result<T, ParquetError>;

/// Whether a top-level field can go through this writer: a fixed-size list (of at least one
/// element) of 4- or 8-byte numbers.
pub fn is_fixed_numeric_list(field: &Field) -> bool {
    match field.data_type() {
        DataType::FixedSizeList(item, size) => *size > 0 && numeric_width(item.data_type()).is_some(),
        _ => false,
    }
}

/// Bytes per value Parquet stores for `data_type` when that equals its width in memory (so the
/// PLAIN encoding is the memory layout): 4- and 8-byte integers, floats, times.
fn numeric_width(data_type: &DataType) -> Option<usize> {
    match data_type {
        DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date32 | DataType::Time32(_) => Some(4),
        DataType::Int64
        | DataType::UInt64
        | DataType::Float64
        | DataType::Date64
        | DataType::Time64(_)
        | DataType::Timestamp(_, _)
        | DataType::Duration(_) => Some(8),
        _ => None,
    }
}

thread_local! {
    /// One zstd context per thread and level, reused by every chunk: making a context costs more
    /// than compressing a page of constant values.
    static PAGE_COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    /// The uncompressed page being assembled (levels, then values), reused page after page.
    static PAGE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The levels of a leaf under one top-level list: what each definition level means.
#[derive(Debug, Clone, Copy)]
struct Levels {
    /// Definition level of a present element (the column's maximum).
    present: i16,
    /// Definition level of a null element (only meaningful when elements are nullable).
    null_element: i16,
    /// Definition level of a null list.
    null_list: i16,
}

/// One column chunk of a fixed-size list being written: its pages so far, in memory.
pub struct FixedListChunk {
    descr: ColumnDescPtr,
    size: usize,
    width: usize,
    levels: Levels,
    codec: Compression,
    page_bytes: usize,
    pages: TrackedWrite<Vec<u8>>,
    offset_index: OffsetIndexBuilder,
    page_count: i32,
    rows: u64,
    level_count: i64,
    uncompressed_bytes: i64,
}

impl FixedListChunk {
    /// A chunk for the leaf `descr` of `field` (which must pass [`is_fixed_numeric_list`]);
    /// `codec` is zstd or none, `page_bytes` the target size of a page's values.
    pub fn new(descr: ColumnDescPtr, field: &Field, codec: Compression, page_bytes: usize) -> Result<Self> {
        let DataType::FixedSizeList(item, size) = field.data_type() else {
            return Err(ParquetError::General(format!("column {} is not a fixed-size list", field.name())));
        };
        let width = numeric_width(item.data_type())
            .ok_or_else(|| ParquetError::General(format!("column {} does not hold 4- or 8-byte numbers", field.name())))?;
        // Three-level list: [optional] field, repeated `list`, [optional] `item`.
        let list_nullable = i16::from(field.is_nullable());
        let item_nullable = i16::from(item.is_nullable());
        let present = list_nullable + 1 + item_nullable;
        if descr.max_def_level() != present || descr.max_rep_level() != 1 {
            return Err(ParquetError::General(format!(
                "column {} has levels (def {}, rep {}) other than a top-level list's",
                field.name(),
                descr.max_def_level(),
                descr.max_rep_level()
            )));
        }
        let levels = Levels { present, null_element: list_nullable + 1, null_list: 0 };
        if !matches!(codec, Compression::UNCOMPRESSED | Compression::ZSTD(_)) {
            return Err(ParquetError::General(format!("codec {codec} is not written by the fixed-list writer")));
        }
        Ok(FixedListChunk {
            descr,
            size: *size as usize,
            width,
            levels,
            codec,
            page_bytes: page_bytes.max(1),
            pages: TrackedWrite::new(Vec::new()),
            offset_index: OffsetIndexBuilder::new(),
            page_count: 0,
            rows: 0,
            level_count: 0,
            uncompressed_bytes: 0,
        })
    }

    /// Bytes of the pages written so far.
    pub fn encoded_bytes(&self) -> usize {
        self.pages.bytes_written()
    }

    /// Appends the rows of `array` (a fixed-size list of this chunk's type), cut into pages.
    pub fn write(&mut self, array: &ArrayRef) -> Result<()> {
        let list = array
            .as_fixed_size_list_opt()
            .ok_or_else(|| ParquetError::General(format!("expected a fixed-size list for {}", self.descr.path())))?;
        let rows_per_page = (self.page_bytes / (self.size * self.width)).max(1);
        let mut start = 0;
        while start < list.len() {
            let rows = rows_per_page.min(list.len() - start);
            self.write_page(&list.slice(start, rows))?;
            start += rows;
        }
        Ok(())
    }

    fn write_page(&mut self, list: &FixedSizeListArray) -> Result<()> {
        let values = list.values();
        let value_bytes = super::parts::fixed_width_value_bytes(values.as_ref())
            .ok_or_else(|| ParquetError::General(format!("{} does not hold 4- or 8-byte numbers", self.descr.path())))?;
        let value_bytes = value_bytes.as_slice();
        let first = list.value_offset(0) as usize;
        let rows = list.len();
        let has_nulls = list.null_count() > 0 || values.slice(first, rows * self.size).null_count() > 0;
        let (page_values, level_count) = PAGE_SCRATCH.with_borrow_mut(|page| -> Result<(Bytes, usize)> {
            page.clear();
            let level_count = if has_nulls {
                self.encode_with_nulls(list, value_bytes, page)
            } else {
                encode_levels(page, |out| rep_levels_of_full_rows(out, rows, self.size));
                encode_levels(page, |out| rle_run(out, rows * self.size, self.levels.present));
                let range = first * self.width..(first + rows * self.size) * self.width;
                page.extend_from_slice(&value_bytes[range]);
                rows * self.size
            };
            Ok((self.compress(page)?, level_count))
        })?;
        let uncompressed = PAGE_SCRATCH.with_borrow(|page| page.len());
        let page = Page::DataPage {
            buf: page_values,
            num_values: u32::try_from(level_count).map_err(|_| ParquetError::General("page too large".into()))?,
            encoding: Encoding::PLAIN,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = SerializedPageWriter::new(&mut self.pages).write_page(CompressedPage::new(page, uncompressed))?;
        self.offset_index.append_row_count(rows as i64);
        self.offset_index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        self.page_count += 1;
        self.rows += rows as u64;
        self.level_count += level_count as i64;
        self.uncompressed_bytes += spec.uncompressed_size as i64;
        Ok(())
    }

    /// Levels and values of a page whose lists or elements may be null: only present elements
    /// have values. Returns the number of levels.
    fn encode_with_nulls(&self, list: &FixedSizeListArray, value_bytes: &[u8], page: &mut Vec<u8>) -> usize {
        let values = list.values();
        let mut rep = Vec::new();
        let mut def = Vec::new();
        let mut present = Vec::new();
        for row in 0..list.len() {
            if list.is_null(row) {
                rep.push(0);
                def.push(self.levels.null_list);
                continue;
            }
            let first = list.value_offset(row) as usize;
            for i in 0..self.size {
                rep.push(i16::from(i > 0));
                if values.is_null(first + i) {
                    def.push(self.levels.null_element);
                } else {
                    def.push(self.levels.present);
                    present.push(first + i);
                }
            }
        }
        encode_levels(page, |out| rle_levels(out, &rep));
        encode_levels(page, |out| rle_levels(out, &def));
        for i in present {
            page.extend_from_slice(&value_bytes[i * self.width..(i + 1) * self.width]);
        }
        rep.len()
    }

    /// The page body as stored: compressed with this chunk's codec, or as is.
    fn compress(&self, page: &[u8]) -> Result<Bytes> {
        let Compression::ZSTD(level) = self.codec else {
            return Ok(Bytes::copy_from_slice(page));
        };
        let level = level.compression_level();
        PAGE_COMPRESSOR.with_borrow_mut(|slot| {
            if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                let compressor = zstd::bulk::Compressor::new(level).map_err(|e| ParquetError::External(Box::new(e)))?;
                *slot = Some((level, compressor));
            }
            let Some((_, compressor)) = slot.as_mut() else {
                return Err(ParquetError::General("no zstd context".into()));
            };
            let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(page.len()));
            compressor.compress_to_buffer(page, &mut out).map_err(|e| ParquetError::External(Box::new(e)))?;
            Ok(Bytes::from(out))
        })
    }

    /// The chunk's bytes and metadata, ready for [`SerializedRowGroupWriter::append_column`].
    pub fn close(self) -> Result<(Bytes, ColumnCloseResult)> {
        let bytes = Bytes::from(self.pages.into_inner()?);
        let mut metadata = ColumnChunkMetaData::builder(self.descr)
            .set_compression(self.codec)
            .set_encodings_mask(EncodingMask::new_from_encodings([Encoding::PLAIN, Encoding::RLE].iter()))
            .set_total_compressed_size(bytes.len() as i64)
            .set_total_uncompressed_size(self.uncompressed_bytes)
            .set_num_values(self.level_count)
            .set_data_page_offset(0);
        if self.page_count > 0 {
            metadata = metadata.set_page_encoding_stats(vec![PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: Encoding::PLAIN,
                count: self.page_count,
            }]);
        }
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: self.rows,
            metadata: metadata.build()?,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(self.offset_index.build()),
        };
        Ok((bytes, close))
    }
}

/// Appends one level stream of a version-1 page: its length (4 bytes, little-endian), then the
/// RLE/bit-packed hybrid encoding `encode` appends.
fn encode_levels(page: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) {
    let start = page.len();
    page.extend_from_slice(&[0; 4]);
    encode(page);
    let len = (page.len() - start - 4) as u32;
    page[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// One RLE run: `count` times `level`. Levels here never exceed 255, so the value takes one byte.
fn rle_run(out: &mut Vec<u8>, count: usize, level: i16) {
    if count == 0 {
        return;
    }
    let mut header = (count as u64) << 1;
    while header >= 0x80 {
        out.push((header as u8) | 0x80);
        header >>= 7;
    }
    out.push(header as u8);
    out.push(level as u8);
}

/// Repetition levels of `rows` non-null lists of `size` elements: each row is a 0 (new list)
/// followed by `size - 1` ones.
fn rep_levels_of_full_rows(out: &mut Vec<u8>, rows: usize, size: usize) {
    if size == 1 {
        rle_run(out, rows, 0);
        return;
    }
    for _ in 0..rows {
        rle_run(out, 1, 0);
        rle_run(out, size - 1, 1);
    }
}

/// Any sequence of levels, as RLE runs of equal values.
fn rle_levels(out: &mut Vec<u8>, levels: &[i16]) {
    let mut i = 0;
    while i < levels.len() {
        let run = levels[i..].iter().take_while(|&&l| l == levels[i]).count();
        rle_run(out, run, levels[i]);
        i += run;
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::sync::Arc;

    use arrow::array::{
        Float32Array, Float64Array, Int32Array, RecordBatch, TimestampNanosecondArray, UInt32Array,
    };
    use arrow::compute::concat_batches;
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
    use parquet::basic::ZstdLevel;

    use super::*;
    use crate::lake::location::TableLocation;
    use crate::lake::parts::{ParquetOptions, PartWriter};

    /// A fixed-size list column of `size` elements per row built from `values` (one per element),
    /// with the lists in `null_rows` null.
    fn fixed_list(item: Field, size: i32, values: ArrayRef, null_rows: &[usize]) -> (Field, ArrayRef) {
        let rows = values.len() / size as usize;
        let nulls = (!null_rows.is_empty())
            .then(|| arrow::buffer::NullBuffer::from_iter((0..rows).map(|row| !null_rows.contains(&row))));
        let item = Arc::new(item);
        let array = FixedSizeListArray::try_new(item.clone(), size, values, nulls).unwrap();
        (Field::new_fixed_size_list("x", item, size, true), Arc::new(array))
    }

    /// Rows of every kind of fixed-size list this writer takes, with enough covariance rows
    /// (20,000 × 9 doubles = 1.44 MB) for more than one page.
    fn batch(first_row: usize, rows: usize) -> RecordBatch {
        let row = |i: usize| (first_row + i) as f64;
        let constant = Float64Array::from_iter_values((0..rows * 9).map(|i| (i % 9) as f64 * 0.01));
        let noise = Float64Array::from_iter_values((0..rows * 3).map(|i| (row(i / 3) * 7919.0 + i as f64).sin()));
        let floats = Float32Array::from_iter((0..rows * 2).map(|i| (i % 5 != 3).then_some(i as f32)));
        let ints = Int32Array::from_iter_values((0..rows * 4).map(|i| i as i32 - 7));
        let unsigned = UInt32Array::from_iter_values((0..rows).map(|i| u32::MAX - i as u32));
        let times = TimestampNanosecondArray::from_iter_values((0..rows * 2).map(|i| 1_700_000_000_000_000_000 + i as i64))
            .with_timezone("UTC");
        let every_seventh: Vec<usize> = (0..rows).filter(|r| (first_row + r) % 7 == 0).collect();
        let columns = [
            ("covariance", fixed_list(Field::new("item", DataType::Float64, true), 9, Arc::new(constant), &[])),
            ("noisy", fixed_list(Field::new("item", DataType::Float64, false), 3, Arc::new(noise), &[])),
            ("sparse", fixed_list(Field::new("item", DataType::Float32, true), 2, Arc::new(floats), &every_seventh)),
            ("ints", fixed_list(Field::new("item", DataType::Int32, true), 4, Arc::new(ints), &every_seventh)),
            ("single", fixed_list(Field::new("item", DataType::UInt32, true), 1, Arc::new(unsigned), &[])),
            ("stamps", fixed_list(Field::new("item", times.data_type().clone(), true), 2, Arc::new(times), &[])),
        ];
        let fields: Vec<Field> = columns.iter().map(|(name, (field, _))| field.clone().with_name(*name)).collect();
        let arrays = columns.into_iter().map(|(_, (_, array))| array).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    fn write(opts: &ParquetOptions, batches: &[RecordBatch]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let mut writer = PartWriter::create(&location, "p.parquet", &batches[0], opts).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        let path = dir.path().join("p.parquet");
        (dir, path)
    }

    fn read(path: &std::path::Path, selection: Option<RowSelection>) -> RecordBatch {
        let options = ArrowReaderOptions::new().with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
        let mut builder = ParquetRecordBatchReaderBuilder::try_new_with_options(File::open(path).unwrap(), options).unwrap();
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        let schema = builder.schema().clone();
        let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        concat_batches(&schema, &batches).unwrap()
    }

    #[test]
    fn fixed_size_lists_read_back_as_written_with_either_codec_across_pages_and_row_groups() {
        let batches = [batch(0, 20_000), batch(20_000, 5_000), batch(25_000, 3)];
        let expected = concat_batches(&batches[0].schema(), &batches).unwrap();
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).unwrap());
        for compression in [zstd, Compression::UNCOMPRESSED] {
            let opts = ParquetOptions { compression, row_group_bytes: 1 << 20, ..ParquetOptions::default() };
            let (_dir, path) = write(&opts, &batches);
            assert_eq!(read(&path, None), expected, "{compression:?}");

            let metadata = parquet::file::serialized_reader::SerializedFileReader::new(File::open(&path).unwrap())
                .map(|reader| parquet::file::reader::FileReader::metadata(&reader).clone())
                .unwrap();
            assert!(metadata.num_row_groups() > 1, "small row groups expected");
            let first = metadata.row_group(0);
            let covariance = &first.columns()[0];
            assert_eq!(covariance.column_path().string(), "covariance.list.item");
            assert_eq!(covariance.compression(), compression);
            assert!(covariance.statistics().is_none(), "list elements carry no statistics");
            // The noise column is judged uncompressible whatever the codec.
            assert_eq!(first.columns()[1].compression(), Compression::UNCOMPRESSED);

            // A selection in the middle of the file goes through the offset index's page
            // locations and first rows.
            let selection = RowSelection::from(vec![RowSelector::skip(19_990), RowSelector::select(25)]);
            assert_eq!(read(&path, Some(selection)), expected.slice(19_990, 25), "{compression:?}");
        }
    }

    #[test]
    fn the_same_rows_through_the_arrow_writer_read_back_identically() {
        // Lists of other codecs take the generic path: the two must agree on every value.
        let batches = [batch(3, 1_000)];
        let opts = ParquetOptions { compression: Compression::SNAPPY, ..ParquetOptions::default() };
        let (_dir, generic) = write(&opts, &batches);
        let (_dir2, fixed) = write(&ParquetOptions::default(), &batches);
        assert_eq!(read(&generic, None), read(&fixed, None));
        assert_eq!(read(&fixed, None), batches[0]);
    }

    #[test]
    fn level_runs_encode_as_the_format_says() {
        let mut out = Vec::new();
        rle_run(&mut out, 200, 3);
        // 200 << 1 = 400 = 0b1_1001_0000 as ULEB128: 0x90 0x03, then the value.
        assert_eq!(out, [0x90, 0x03, 3]);
        out.clear();
        rle_levels(&mut out, &[0, 1, 1, 0]);
        assert_eq!(out, [2, 0, 4, 1, 2, 0]);
        let mut page = Vec::new();
        encode_levels(&mut page, |out| rep_levels_of_full_rows(out, 2, 3));
        assert_eq!(page, [8, 0, 0, 0, 2, 0, 4, 1, 2, 0, 4, 1]);
    }
}
