//! Column chunks of 4- and 8-byte numbers written straight from the decoded values: numbers at
//! the top of a message (`latitude`), inside nested messages (`header.stamp`, `orientation.x`)
//! and in fixed-size arrays (covariance matrices: `float64[9]`).
//!
//! These columns are nearly all of the values of small-message drives, and the generic
//! Arrow-to-Parquet path spends more on them than compression does: it builds a definition (and
//! repetition) level per value, gathers every value through an index list into a temporary
//! vector, copies it into a page buffer grown from empty, and keeps a zstd context per column
//! chunk. Here the levels follow from the shape (one run when nothing is null; a fixed pattern
//! per row for fixed-size arrays), the values are one contiguous slice of the decoded array, and
//! one zstd context per thread compresses the page. Minimum and maximum per page and per chunk
//! are computed as the `parquet` crate does (NaN skipped, signed zeros, unsigned order for
//! unsigned types). The pages are ordinary version-1 data pages with RLE levels and PLAIN
//! values, or DELTA_BINARY_PACKED integers when the column's sample chose that ([`delta`]), or
//! dictionary indices when the chunk's pages repeat one row ([`repeated`]); their headers and
//! the column metadata are made by the `parquet` crate, and the chunk is spliced into the row
//! group with `SerializedRowGroupWriter::append_column`, so readers see the same file
//! structure as the crate's writer makes.
//!
//! Everything else (strings, byte arrays, booleans, narrower integers, variable-length lists,
//! codecs other than zstd and none) keeps the generic path.

mod delta;
mod levels;
mod repeated;
mod statistics;

use std::cell::RefCell;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, LevelHistogram, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use levels::{encode_levels, rep_levels_of_full_rows, rle_levels, rle_run};
use repeated::RowDictionary;
use statistics::{min_max, PageStatistics};

type Result<T> = std::result::Result<T, ParquetError>;

/// The numeric types written here, by how Parquet stores and orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Kind {
    /// The kind of a leaf of `data_type`, when Parquet stores its values exactly as they lie in
    /// memory (so PLAIN pages are the memory layout).
    fn of(data_type: &DataType) -> Option<Kind> {
        Some(match data_type {
            DataType::Int32 => Kind::I32,
            DataType::UInt32 => Kind::U32,
            DataType::Int64
            | DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond, _)
            | DataType::Duration(TimeUnit::Nanosecond) => Kind::I64,
            DataType::UInt64 => Kind::U64,
            DataType::Float32 => Kind::F32,
            DataType::Float64 => Kind::F64,
            _ => return None,
        })
    }

    fn is_integer(self) -> bool {
        matches!(self, Kind::I32 | Kind::U32 | Kind::I64 | Kind::U64)
    }

    fn width(self) -> usize {
        match self {
            Kind::I32 | Kind::U32 | Kind::F32 => 4,
            Kind::I64 | Kind::U64 | Kind::F64 => 8,
        }
    }
}

/// How a numeric leaf sits in its top-level field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// One value per row, under zero or more structs.
    Flat,
    /// The top-level field is a fixed-size list of `size` numbers.
    FixedList { size: usize },
}

impl Shape {
    /// Values per row: 1, or the size of the fixed-size list.
    fn values_per_row(&self) -> usize {
        match self {
            Shape::Flat => 1,
            Shape::FixedList { size } => *size,
        }
    }
}

/// A leaf column written by [`NumericChunk`]: where it lies and what it holds.
#[derive(Debug, Clone)]
pub struct NumericLeaf {
    /// Child indices from the top-level field down to the leaf (empty: the field itself).
    child_path: Vec<usize>,
    /// Whether each node from the top-level field down to the leaf is nullable (for a fixed-size
    /// list: the list, then its item).
    nullable: Vec<bool>,
    shape: Shape,
    kind: Kind,
}

impl NumericLeaf {
    /// Whether [`NumericChunk`] writes this leaf's values with `encoding`: PLAIN always,
    /// DELTA_BINARY_PACKED for integers and times.
    pub fn writes_encoding(&self, encoding: Encoding) -> bool {
        match encoding {
            Encoding::PLAIN => true,
            Encoding::DELTA_BINARY_PACKED => self.kind.is_integer(),
            _ => false,
        }
    }

    /// True when the Parquet column `descr` has the levels this leaf's shape writes.
    pub fn fits(&self, descr: &ColumnDescPtr) -> bool {
        let physical = match self.kind {
            Kind::I32 | Kind::U32 => PhysicalType::INT32,
            Kind::I64 | Kind::U64 => PhysicalType::INT64,
            Kind::F32 => PhysicalType::FLOAT,
            Kind::F64 => PhysicalType::DOUBLE,
        };
        if descr.physical_type() != physical {
            return false;
        }
        let nullable = self.nullable.iter().filter(|&&n| n).count() as i16;
        match self.shape {
            Shape::Flat => descr.max_rep_level() == 0 && descr.max_def_level() == nullable,
            // The repeated `list` group adds one definition level.
            Shape::FixedList { .. } => descr.max_rep_level() == 1 && descr.max_def_level() == nullable + 1,
        }
    }
}

/// The leaf columns of `field` in Parquet order: `Some` for those [`NumericChunk`] writes,
/// `None` for the others.
pub fn plan_field(field: &Field) -> Vec<Option<NumericLeaf>> {
    match field.data_type() {
        DataType::FixedSizeList(item, size) if *size > 0 => match Kind::of(item.data_type()) {
            Some(kind) => vec![Some(NumericLeaf {
                child_path: Vec::new(),
                nullable: vec![field.is_nullable(), item.is_nullable()],
                shape: Shape::FixedList { size: *size as usize },
                kind,
            })],
            None => vec![None; leaf_count(field.data_type())],
        },
        _ => {
            let mut leaves = Vec::new();
            plan_flat(field, &mut Vec::new(), &mut Vec::new(), &mut leaves);
            leaves
        }
    }
}

fn plan_flat(field: &Field, child_path: &mut Vec<usize>, nullable: &mut Vec<bool>, out: &mut Vec<Option<NumericLeaf>>) {
    nullable.push(field.is_nullable());
    match field.data_type() {
        DataType::Struct(children) => {
            for (i, child) in children.iter().enumerate() {
                child_path.push(i);
                plan_flat(child, child_path, nullable, out);
                child_path.pop();
            }
        }
        other => match Kind::of(other) {
            Some(kind) => out.push(Some(NumericLeaf {
                child_path: child_path.clone(),
                nullable: nullable.clone(),
                shape: Shape::Flat,
                kind,
            })),
            None => out.extend(std::iter::repeat_n(None, leaf_count(other))),
        },
    }
    nullable.pop();
}

/// Number of Parquet leaf columns a field of `data_type` has.
pub fn leaf_count(data_type: &DataType) -> usize {
    match data_type {
        DataType::Struct(children) => children.iter().map(|c| leaf_count(c.data_type())).sum(),
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) | DataType::ListView(item) => {
            leaf_count(item.data_type())
        }
        DataType::Map(entries, _) => leaf_count(entries.data_type()),
        _ => 1,
    }
}

/// The part of `array` (of `field`) that holds the leaves `keep` says yes to (consumed in leaf
/// order), as a field and array of the same nesting; `None` when it holds none of them. Only
/// structs are cut: any other subtree is kept or dropped whole, by its first leaf.
pub fn project(field: &Field, array: &ArrayRef, keep: &mut impl Iterator<Item = bool>) -> Result<Option<(Field, ArrayRef)>> {
    let DataType::Struct(children) = field.data_type() else {
        let mut decisions = keep.take(leaf_count(field.data_type()));
        let kept = decisions.next().unwrap_or(false);
        decisions.for_each(drop);
        return Ok(kept.then(|| (field.clone(), array.clone())));
    };
    let parts = array
        .as_struct_opt()
        .ok_or_else(|| ParquetError::General(format!("column {} is not a struct array", field.name())))?;
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (child, child_array) in children.iter().zip(parts.columns()) {
        if let Some((f, a)) = project(child, child_array, keep)? {
            fields.push(f);
            arrays.push(a);
        }
    }
    if fields.is_empty() {
        return Ok(None);
    }
    let fields = arrow::datatypes::Fields::from(fields);
    let projected = arrow::array::StructArray::try_new(fields.clone(), arrays, parts.nulls().cloned())?;
    Ok(Some((field.clone().with_data_type(DataType::Struct(fields)), std::sync::Arc::new(projected))))
}

thread_local! {
    /// This thread's zstd contexts, one per level in use: making a context costs more than
    /// compressing a page of constant values, or a sample.
    static ZSTD_CONTEXTS: RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(Vec::new()) };
    /// The uncompressed page being assembled (levels, then values), reused page after page.
    static PAGE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The present values of a page with nulls (their PLAIN bytes), gathered before they are
    /// encoded.
    static PRESENT_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compresses `input` into `out` (appended) with this thread's zstd context at `level`; returns
/// the compressed size. Used for pages here and for the compressibility samples of `parts`.
pub(super) fn zstd_compress(level: i32, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
    ZSTD_CONTEXTS.with_borrow_mut(|contexts| {
        let index = match contexts.iter().position(|(l, _)| *l == level) {
            Some(index) => index,
            None => {
                contexts.push((level, zstd::bulk::Compressor::new(level)?));
                contexts.len() - 1
            }
        };
        let (_, compressor) = &mut contexts[index];
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        compressor.compress_to_buffer(input, out)
    })
}

/// The value bytes of a fixed-width numeric array of 4- or 8-byte values (integers, floats,
/// times), as laid out in memory; `None` for everything else. Narrower integers are left out:
/// Parquet stores them as 4-byte integers whose padding compresses whatever the values are, so
/// their bytes in memory do not tell. The buffer shares the array's allocation.
pub(super) fn fixed_width_value_bytes(array: &dyn Array) -> Option<arrow::buffer::Buffer> {
    // Booleans, strings and byte arrays have no primitive width.
    let width = array.data_type().primitive_width()?;
    if width < 4 {
        return None;
    }
    let data = array.to_data();
    let buffer = data.buffers().first()?;
    let start = data.offset().checked_mul(width)?;
    let len = data.len().checked_mul(width)?;
    (start.checked_add(len)? <= buffer.len()).then(|| buffer.slice_with_length(start, len))
}

/// Bytes the 4- or 8-byte (`width`) little-endian integers of `plain` take as
/// DELTA_BINARY_PACKED: for judging a sample.
pub(super) fn delta_packed_len(plain: &[u8], width: usize) -> usize {
    let mut packed = Vec::new();
    delta::encode(plain, width, &mut packed);
    packed.len()
}

/// Whether [`NumericChunk`] writes pages with `codec`: zstd (any level) or none.
pub(super) fn writes_codec(codec: Compression) -> bool {
    matches!(codec, Compression::UNCOMPRESSED | Compression::ZSTD(_))
}

/// How large a data page may grow: the writer properties' data page size and row count limits.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub bytes: usize,
    pub rows: usize,
}

/// Whether a chunk's pages are dictionary indices of one repeated row.
enum Dictionary {
    /// No page written yet: the first one decides.
    Undecided,
    /// The chunk has this dictionary (its page written first); pages that repeat its row are
    /// written as indices, others as values.
    Repeating(RowDictionary),
    Off,
}

/// A data page's values part as stored, with its size before compression and its encoding.
struct PageBody {
    bytes: Bytes,
    uncompressed: usize,
    encoding: Encoding,
}

/// One column chunk of a numeric leaf being written: its pages so far, in memory.
pub struct NumericChunk {
    descr: ColumnDescPtr,
    leaf: NumericLeaf,
    codec: Compression,
    /// How values are stored: PLAIN, or DELTA_BINARY_PACKED (integers only).
    encoding: Encoding,
    /// Whether the chunk's pages repeat one row, stored as dictionary indices.
    dictionary: Dictionary,
    /// Data pages written as dictionary indices.
    dictionary_pages: i32,
    /// Where the first data page starts (after the dictionary page, if any).
    data_page_offset: i64,
    /// Rows per page, from the target page size.
    page_rows: usize,
    pages: TrackedWrite<Vec<u8>>,
    offset_index: OffsetIndexBuilder,
    statistics: Option<PageStatistics>,
    page_count: i32,
    rows: u64,
    level_count: i64,
    uncompressed_bytes: i64,
}

impl NumericChunk {
    /// A chunk for `leaf` (planned by [`plan_field`], checked with [`NumericLeaf::fits`]) in
    /// the column `descr`. `codec` is zstd or none, `encoding` PLAIN or (for integers)
    /// DELTA_BINARY_PACKED; a page holds at most `page.bytes` of plain values and `page.rows`
    /// rows; `statistics` asks for page and chunk minimum and maximum.
    pub fn new(descr: ColumnDescPtr, leaf: NumericLeaf, codec: Compression, encoding: Encoding, page: PageLimits, statistics: bool) -> Result<Self> {
        if !writes_codec(codec) {
            return Err(ParquetError::General(format!("codec {codec} is not written by the numeric column writer")));
        }
        if !leaf.writes_encoding(encoding) {
            return Err(ParquetError::General(format!("encoding {encoding} is not written by the numeric column writer for {}", descr.path())));
        }
        if !leaf.fits(&descr) {
            return Err(ParquetError::General(format!("column {} has levels its shape does not give", descr.path())));
        }
        Ok(NumericChunk {
            page_rows: (page.bytes / (leaf.shape.values_per_row() * leaf.kind.width())).min(page.rows).max(1),
            statistics: statistics.then(|| PageStatistics::new(&descr)),
            descr,
            leaf,
            codec,
            encoding,
            // Delta-packed integers are already small; only PLAIN chunks look for a repeated row.
            dictionary: if encoding == Encoding::PLAIN { Dictionary::Undecided } else { Dictionary::Off },
            dictionary_pages: 0,
            data_page_offset: 0,
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

    /// Appends the rows of `column`, the top-level column this chunk's leaf lies in, cut into
    /// pages.
    pub fn write(&mut self, column: &ArrayRef) -> Result<()> {
        let mut start = 0;
        while start < column.len() {
            let rows = self.page_rows.min(column.len() - start);
            self.write_page(&column.slice(start, rows))?;
            start += rows;
        }
        Ok(())
    }

    /// The arrays from the top-level column down to the leaf values.
    fn path_arrays(&self, column: &ArrayRef) -> Result<Vec<ArrayRef>> {
        let mut arrays = vec![column.clone()];
        for &child in &self.leaf.child_path {
            let parent = arrays.last().and_then(|a| a.as_struct_opt()).and_then(|s| s.columns().get(child).cloned());
            let parent = parent.ok_or_else(|| ParquetError::General(format!("no struct child {child} on the way to {}", self.descr.path())))?;
            arrays.push(parent);
        }
        if let Shape::FixedList { .. } = self.leaf.shape {
            let list = column
                .as_fixed_size_list_opt()
                .ok_or_else(|| ParquetError::General(format!("expected a fixed-size list for {}", self.descr.path())))?;
            arrays.push(list.values().slice(list.value_offset(0) as usize, list.len() * list.value_length() as usize));
        }
        Ok(arrays)
    }

    fn write_page(&mut self, column: &ArrayRef) -> Result<()> {
        let rows = column.len();
        let arrays = self.path_arrays(column)?;
        let Some(values) = arrays.last() else { return Ok(()) };
        let value_bytes = fixed_width_value_bytes(values.as_ref())
            .ok_or_else(|| ParquetError::General(format!("{} does not hold 4- or 8-byte numbers", self.descr.path())))?;
        let has_nulls = arrays.iter().any(|a| a.null_count() > 0);
        if !has_nulls {
            let values = value_bytes.as_slice().get(..rows * self.leaf.shape.values_per_row() * self.leaf.kind.width());
            if let Some(values) = values {
                if self.repeats_dictionary_row(values)? {
                    return self.write_repeated_rows_page(rows, values);
                }
            }
        }
        // A chunk whose first page does not repeat one row keeps PLAIN (or delta) pages.
        if matches!(self.dictionary, Dictionary::Undecided) {
            self.dictionary = Dictionary::Off;
        }
        let width = self.leaf.kind.width();
        let mut levels = self.level_histogram();
        let (body, level_count, uncompressed, present) = PAGE_SCRATCH.with_borrow_mut(|page| -> Result<_> {
            page.clear();
            let (level_count, bounds, present_count) = if has_nulls {
                PRESENT_SCRATCH.with_borrow_mut(|present| {
                    present.clear();
                    let level_count = self.encode_with_nulls(&arrays, value_bytes.as_slice(), page, present, levels.as_mut());
                    let bounds = self.append_values(page, present);
                    (level_count, bounds, present.len() / width)
                })
            } else {
                let level_count = self.encode_levels_without_nulls(rows, page, levels.as_mut());
                let bounds = self.append_values(page, &value_bytes[..level_count * width]);
                (level_count, bounds, level_count)
            };
            Ok((self.compress(page)?, level_count, page.len(), (bounds, present_count)))
        })?;
        let (bounds, present_count) = present;
        let body = PageBody { bytes: body, uncompressed, encoding: self.encoding };
        self.add_data_page(body, rows, level_count, (bounds, level_count - present_count), levels)
    }

    /// Appends the present values `plain` (their PLAIN bytes) to `page` in the chunk's
    /// encoding; returns their minimum and maximum when the chunk keeps statistics.
    fn append_values(&self, page: &mut Vec<u8>, plain: &[u8]) -> Option<statistics::MinMax> {
        if self.encoding == Encoding::DELTA_BINARY_PACKED {
            delta::encode(plain, self.leaf.kind.width(), page);
        } else {
            page.extend_from_slice(plain);
        }
        self.statistics.as_ref().and_then(|_| min_max(self.leaf.kind, plain))
    }

    fn level_histogram(&self) -> Option<LevelHistogram> {
        self.statistics.as_ref().and_then(|_| LevelHistogram::try_new(self.descr.max_def_level()))
    }

    /// True when every row of the page's `values` is the chunk's dictionary row. The first
    /// page decides: if it repeats one row, that row becomes the chunk's dictionary (its page
    /// written first); otherwise the chunk has none.
    fn repeats_dictionary_row(&mut self, values: &[u8]) -> Result<bool> {
        match &self.dictionary {
            Dictionary::Off => Ok(false),
            Dictionary::Repeating(dictionary) => Ok(dictionary.matches(values)),
            Dictionary::Undecided => {
                let row_bytes = self.leaf.shape.values_per_row() * self.leaf.kind.width();
                let dictionary = repeated::repeats_first_row(values, row_bytes)
                    .then(|| RowDictionary::new(&values[..row_bytes], self.leaf.kind.width()))
                    .flatten();
                let Some(dictionary) = dictionary else {
                    self.dictionary = Dictionary::Off;
                    return Ok(false);
                };
                self.write_dictionary_page(&dictionary)?;
                self.dictionary = Dictionary::Repeating(dictionary);
                Ok(true)
            }
        }
    }

    /// Writes the chunk's dictionary page: the repeated row's distinct values.
    fn write_dictionary_page(&mut self, dictionary: &RowDictionary) -> Result<()> {
        let (entries, count) = dictionary.page();
        let page = Page::DictionaryPage {
            buf: self.compress(entries)?,
            num_values: count as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let mut pages = SerializedPageWriter::new(&mut self.pages);
        let spec = pages.write_page(CompressedPage::new(page, entries.len()))?;
        self.uncompressed_bytes += spec.uncompressed_size as i64;
        self.data_page_offset = self.pages.bytes_written() as i64;
        Ok(())
    }

    /// A page of `rows` rows that all repeat the dictionary's row (`values`): levels, then the
    /// dictionary indices.
    fn write_repeated_rows_page(&mut self, rows: usize, values: &[u8]) -> Result<()> {
        let Dictionary::Repeating(dictionary) = &self.dictionary else {
            return Err(ParquetError::General("a repeated-row page without a dictionary".into()));
        };
        let bounds = self.statistics.as_ref().and_then(|_| min_max(self.leaf.kind, dictionary.row()));
        let mut levels = self.level_histogram();
        let (body, level_count, uncompressed) = PAGE_SCRATCH.with_borrow_mut(|page| -> Result<_> {
            page.clear();
            let level_count = self.encode_levels_without_nulls(rows, page, levels.as_mut());
            debug_assert_eq!(level_count * self.leaf.kind.width(), values.len());
            dictionary.encode_indices(level_count, page);
            Ok((self.compress(page)?, level_count, page.len()))
        })?;
        self.dictionary_pages += 1;
        let body = PageBody { bytes: body, uncompressed, encoding: Encoding::RLE_DICTIONARY };
        self.add_data_page(body, rows, level_count, (bounds, 0), levels)
    }

    /// Writes a data page of `rows` rows and `level_count` levels, and accounts for it: page
    /// statistics (`bounds` of the present values, and the number of nulls), offset index, sizes.
    fn add_data_page(
        &mut self,
        body: PageBody,
        rows: usize,
        level_count: usize,
        (bounds, nulls): (Option<statistics::MinMax>, usize),
        levels: Option<LevelHistogram>,
    ) -> Result<()> {
        if let Some(statistics) = self.statistics.as_mut() {
            statistics.add_page(bounds, rows, nulls, levels);
        }
        let page = Page::DataPage {
            buf: body.bytes,
            num_values: u32::try_from(level_count).map_err(|_| ParquetError::General("page too large".into()))?,
            encoding: body.encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = SerializedPageWriter::new(&mut self.pages).write_page(CompressedPage::new(page, body.uncompressed))?;
        self.offset_index.append_row_count(rows as i64);
        self.offset_index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        self.page_count += 1;
        self.rows += rows as u64;
        self.level_count += level_count as i64;
        self.uncompressed_bytes += spec.uncompressed_size as i64;
        Ok(())
    }

    /// The levels of `rows` rows in which nothing is null (counted into `histogram`); returns
    /// their number (one per value).
    fn encode_levels_without_nulls(&self, rows: usize, page: &mut Vec<u8>, histogram: Option<&mut LevelHistogram>) -> usize {
        let max_def = self.descr.max_def_level();
        let levels = match self.leaf.shape {
            Shape::Flat => {
                if max_def > 0 {
                    encode_levels(page, |out| rle_run(out, rows, max_def));
                }
                rows
            }
            Shape::FixedList { size } => {
                encode_levels(page, |out| rep_levels_of_full_rows(out, rows, size));
                encode_levels(page, |out| rle_run(out, rows * size, max_def));
                rows * size
            }
        };
        if let Some(histogram) = histogram {
            histogram.increment_by(max_def, levels as i64);
        }
        levels
    }

    /// Levels of rows in which something on the way to the leaf is null, appended to `page`
    /// (every level counted into `histogram`), and the PLAIN bytes of the present values, the
    /// only ones stored, appended to `present_values`. Returns the number of levels.
    fn encode_with_nulls(
        &self,
        arrays: &[ArrayRef],
        value_bytes: &[u8],
        page: &mut Vec<u8>,
        present_values: &mut Vec<u8>,
        histogram: Option<&mut LevelHistogram>,
    ) -> usize {
        let width = self.leaf.kind.width();
        let max_def = self.descr.max_def_level();
        let mut rep = Vec::new();
        let mut def = Vec::new();
        let mut present = Vec::new();
        // The definition level of slot `i` of the nodes `arrays` (one per nullable flag): how
        // many nullable nodes from the top are present before the first null.
        let depth = |nodes: &[ArrayRef], nullable: &[bool], i: usize| -> i16 {
            let mut level = 0;
            for (node, &is_nullable) in nodes.iter().zip(nullable) {
                if node.is_null(i) {
                    break;
                }
                level += i16::from(is_nullable);
            }
            level
        };
        match self.leaf.shape {
            Shape::Flat => {
                for row in 0..arrays[0].len() {
                    let level = depth(arrays, &self.leaf.nullable, row);
                    def.push(level);
                    if level == max_def {
                        present.push(row);
                    }
                }
            }
            Shape::FixedList { size } => {
                let (list, items) = (&arrays[0], &arrays[arrays.len() - 1]);
                let (list_nullable, item_nullable) = (self.leaf.nullable[0], self.leaf.nullable[1]);
                for row in 0..list.len() {
                    if list.is_null(row) {
                        rep.push(0);
                        def.push(0);
                        continue;
                    }
                    for i in 0..size {
                        let slot = row * size + i;
                        rep.push(i16::from(i > 0));
                        let item_present = !items.is_null(slot);
                        def.push(i16::from(list_nullable) + 1 + i16::from(item_nullable && item_present));
                        if item_present {
                            present.push(slot);
                        }
                    }
                }
            }
        }
        if self.descr.max_rep_level() > 0 {
            encode_levels(page, |out| rle_levels(out, &rep));
        }
        if max_def > 0 {
            encode_levels(page, |out| rle_levels(out, &def));
        }
        if let Some(histogram) = histogram {
            def.iter().for_each(|&level| histogram.increment_by(level, 1));
        }
        for i in present {
            present_values.extend_from_slice(&value_bytes[i * width..(i + 1) * width]);
        }
        def.len()
    }

    /// The page body as stored: compressed with this chunk's codec, or as is.
    fn compress(&self, page: &[u8]) -> Result<Bytes> {
        let Compression::ZSTD(level) = self.codec else {
            return Ok(Bytes::copy_from_slice(page));
        };
        let mut out = Vec::new();
        zstd_compress(level.compression_level(), page, &mut out).map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Bytes::from(out))
    }

    /// The encodings of the chunk's pages and levels.
    fn encodings(&self) -> Vec<Encoding> {
        let mut encodings = vec![Encoding::RLE];
        if matches!(self.dictionary, Dictionary::Repeating(_)) {
            encodings.extend([Encoding::PLAIN, Encoding::RLE_DICTIONARY]);
        }
        if self.page_count > self.dictionary_pages {
            encodings.push(self.encoding);
        }
        encodings
    }

    /// Pages per type and encoding, in file order: the dictionary page first.
    fn page_encoding_stats(&self) -> Vec<PageEncodingStats> {
        let mut stats = Vec::new();
        let mut add = |page_type, encoding, count| {
            if count > 0 {
                stats.push(PageEncodingStats { page_type, encoding, count });
            }
        };
        if matches!(self.dictionary, Dictionary::Repeating(_)) {
            add(PageType::DICTIONARY_PAGE, Encoding::PLAIN, 1);
        }
        add(PageType::DATA_PAGE, Encoding::RLE_DICTIONARY, self.dictionary_pages);
        add(PageType::DATA_PAGE, self.encoding, self.page_count - self.dictionary_pages);
        stats
    }

    /// The chunk's bytes and metadata, ready for `SerializedRowGroupWriter::append_column`.
    pub fn close(self) -> Result<(Bytes, ColumnCloseResult)> {
        let (encodings, encoding_stats) = (self.encodings(), self.page_encoding_stats());
        let bytes = Bytes::from(self.pages.into_inner()?);
        let mut metadata = ColumnChunkMetaData::builder(self.descr)
            .set_compression(self.codec)
            .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
            .set_total_compressed_size(bytes.len() as i64)
            .set_total_uncompressed_size(self.uncompressed_bytes)
            .set_num_values(self.level_count)
            .set_data_page_offset(self.data_page_offset)
            .set_dictionary_page_offset(matches!(self.dictionary, Dictionary::Repeating(_)).then_some(0));
        if self.page_count > 0 {
            metadata = metadata.set_page_encoding_stats(encoding_stats);
        }
        let mut column_index = None;
        if let Some(statistics) = self.statistics {
            let (chunk, definition_levels, index) = statistics.finish(self.leaf.kind)?;
            metadata = metadata.set_statistics(chunk).set_definition_level_histogram(definition_levels);
            column_index = index;
        }
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: self.rows,
            metadata: metadata.build()?,
            bloom_filter: None,
            column_index,
            offset_index: Some(self.offset_index.build()),
        };
        Ok((bytes, close))
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::sync::Arc;

    use arrow::array::{
        FixedSizeListArray, Float32Array, Float64Array, Int32Array, RecordBatch, TimestampNanosecondArray, UInt32Array,
    };
    use arrow::compute::concat_batches;
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
    use parquet::basic::ZstdLevel;

    use super::*;
    use crate::lake::location::TableLocation;
    use crate::lake::parquet::{IntegerEncoding, ParquetOptions, PartWriter};

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
        let mut fields: Vec<Field> = columns.iter().map(|(name, (field, _))| field.clone().with_name(*name)).collect();
        let mut arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, (_, array))| array).collect();
        for (field, array) in flat_columns(first_row, rows) {
            fields.push(field);
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    /// Numbers at the top level and inside structs, next to a string in the same struct, with
    /// nulls at every level, NaN, both zeros and unsigned values above `i32::MAX`.
    fn flat_columns(first_row: usize, rows: usize) -> Vec<(Field, ArrayRef)> {
        use arrow::array::{Int64Array, StringArray, StructArray};
        let r = |i: usize| first_row + i;
        let latitude = Float64Array::from_iter((0..rows).map(|i| match r(i) % 11 {
            0 => None,
            1 => Some(f64::NAN),
            2 => Some(-0.0),
            3 => Some(0.0),
            _ => Some((r(i) as f64 * 0.37).sin()),
        }));
        let speed = Float32Array::from_iter_values((0..rows).map(|i| r(i) as f32 * 0.5 - 10.0));
        let inner_fields = vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Int32, false)];
        let inner = StructArray::try_new(
            inner_fields.clone().into(),
            vec![
                Arc::new(Int64Array::from_iter((0..rows).map(|i| (r(i) % 5 != 0).then_some(-(r(i) as i64))))),
                Arc::new(Int32Array::from_iter_values((0..rows).map(|i| (r(i) % 97) as i32))),
            ],
            Some(arrow::buffer::NullBuffer::from_iter((0..rows).map(|i| r(i) % 13 != 0))),
        )
        .unwrap();
        let stamp_type = DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, Some("UTC".into()));
        let header_fields = vec![
            Field::new("seq", DataType::UInt32, true),
            Field::new("stamp", stamp_type.clone(), true),
            Field::new("frame_id", DataType::Utf8, true),
            Field::new("inner", DataType::Struct(inner_fields.into()), true),
        ];
        let header = StructArray::try_new(
            header_fields.clone().into(),
            vec![
                Arc::new(UInt32Array::from_iter_values((0..rows).map(|i| if r(i) % 2 == 0 { u32::MAX - r(i) as u32 } else { r(i) as u32 }))),
                Arc::new(TimestampNanosecondArray::from_iter_values((0..rows).map(|i| 1_000 * r(i) as i64)).with_timezone("UTC")),
                Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("frame{}", r(i) % 3)))),
                Arc::new(inner),
            ],
            Some(arrow::buffer::NullBuffer::from_iter((0..rows).map(|i| r(i) % 17 != 5))),
        )
        .unwrap();
        vec![
            (Field::new("latitude", DataType::Float64, true), Arc::new(latitude)),
            (Field::new("speed", DataType::Float32, false), Arc::new(speed)),
            (Field::new("header", DataType::Struct(header_fields.into()), true), Arc::new(header)),
        ]
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
    fn numeric_read_back_as_written_with_either_codec_across_pages_and_row_groups() {
        let batches = [batch(0, 20_000), batch(20_000, 5_000), batch(25_000, 3)];
        let expected = crate::lake::parquet::file_batch(&concat_batches(&batches[0].schema(), &batches).unwrap()).unwrap();
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).unwrap());
        let settings = [zstd, Compression::UNCOMPRESSED]
            .into_iter()
            .flat_map(|compression| [IntegerEncoding::Auto, IntegerEncoding::Plain].map(|encoding| (compression, encoding)));
        for (compression, integer_encoding) in settings {
            let opts = ParquetOptions { compression, integer_encoding, row_group_bytes: 1 << 20, ..ParquetOptions::default() };
            let (_dir, path) = write(&opts, &batches);
            assert_eq!(read(&path, None), expected, "{compression:?} {integer_encoding:?}");

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
            // Steady times are delta-packed when allowed: in a fixed-size list, and under
            // nullable structs with nulls (header.stamp_ns: the exact times).
            for name in ["stamps_ns.list.item", "header.stamp_ns"] {
                let column = first.columns().iter().find(|c| c.column_path().string() == name).unwrap();
                let delta = column.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED);
                assert_eq!(delta, integer_encoding == IntegerEncoding::Auto, "{name} {integer_encoding:?}");
            }

            // A selection in the middle of the file goes through the offset index's page
            // locations and first rows.
            let selection = RowSelection::from(vec![RowSelector::skip(19_990), RowSelector::select(25)]);
            assert_eq!(read(&path, Some(selection)), expected.slice(19_990, 25), "{compression:?} {integer_encoding:?}");
        }
    }

    #[test]
    fn pages_that_repeat_the_first_pages_row_are_dictionary_indices_and_the_rest_values() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        // Pages of 14,563 rows (1 MiB of doubles): two that repeat one matrix, one that
        // repeats another, one with the first matrix again, then changing values. A second
        // column repeats nothing in its first page.
        let page = (1 << 20) / 72;
        let rows = page * 4 + 1_000;
        let matrix = |row: usize, i: usize| match row / page {
            0 | 1 | 3 => [0.01, 0.0, -0.0][i % 3],
            2 => 0.5,
            _ => (row * 9 + i) as f64,
        };
        let values = Float64Array::from_iter_values((0..rows * 9).map(|v| matrix(v / 9, v % 9)));
        let (field, covariance) = fixed_list(Field::new("item", DataType::Float64, false), 9, Arc::new(values), &[]);
        let counter = Float64Array::from_iter_values((0..rows).map(|r| r as f64));
        let schema = Schema::new(vec![field.with_name("covariance"), Field::new("counter", DataType::Float64, false)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![covariance, Arc::new(counter)]).unwrap();
        for compression in [Compression::ZSTD(ZstdLevel::try_new(1).unwrap()), Compression::UNCOMPRESSED] {
            let opts = ParquetOptions { compression, min_compression_gain: 0.0, ..ParquetOptions::default() };
            let (_dir, path) = write(&opts, std::slice::from_ref(&batch));
            assert_eq!(read(&path, None), batch, "{compression:?}");
            let selection = RowSelection::from(vec![RowSelector::skip(page * 3 - 10), RowSelector::select(20)]);
            assert_eq!(read(&path, Some(selection)), batch.slice(page * 3 - 10, 20));

            // The pages as they lie in the file, read by the crate's page reader.
            let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
            let row_group = reader.get_row_group(0).unwrap();
            let pages = |column: usize| {
                let mut kinds: Vec<(PageType, Encoding)> = Vec::new();
                for page in row_group.get_column_page_reader(column).unwrap() {
                    let page = page.unwrap();
                    kinds.push((page.page_type(), page.encoding()));
                }
                kinds
            };
            let (dictionary, indices, plain) = (
                (PageType::DICTIONARY_PAGE, Encoding::PLAIN),
                (PageType::DATA_PAGE, Encoding::RLE_DICTIONARY),
                (PageType::DATA_PAGE, Encoding::PLAIN),
            );
            assert_eq!(pages(0), [dictionary, indices, indices, plain, indices, plain]);
            assert_eq!(pages(1), [plain; 3], "20,000 rows a page at most");
            let columns = reader.metadata().row_group(0).columns();
            assert!(columns[0].data_page_offset() > columns[0].dictionary_page_offset().unwrap());
            assert_eq!(columns[1].dictionary_page_offset(), None);
            let mask: Vec<Encoding> = columns[0].encodings().collect();
            assert!([Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY].iter().all(|e| mask.contains(e)), "{mask:?}");
        }
    }

    /// `batches` written twice: with snappy, which only the crate's Arrow writer takes, and with
    /// the default zstd, which sends the numeric columns through [`NumericChunk`].
    fn generic_and_numeric(batches: &[RecordBatch]) -> [(tempfile::TempDir, std::path::PathBuf); 2] {
        let generic = ParquetOptions { compression: Compression::SNAPPY, ..ParquetOptions::default() };
        [write(&generic, batches), write(&ParquetOptions::default(), batches)]
    }

    #[test]
    fn the_same_rows_through_the_arrow_writer_read_back_identically() {
        // Lists of other codecs take the generic path: the two must agree on every value.
        let batches = [batch(3, 1_000)];
        let [(_a, generic), (_b, numeric)] = generic_and_numeric(&batches);
        assert_eq!(read(&generic, None), read(&numeric, None));
        assert_eq!(read(&numeric, None), crate::lake::parquet::file_batch(&batches[0]).unwrap());
    }

    #[test]
    fn statistics_and_page_index_match_the_arrow_writers() {
        use parquet::file::reader::FileReader;
        use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
        // One page per column either way (1,000 rows), so the page indexes line up too.
        let [(_a, generic), (_b, numeric)] = generic_and_numeric(&[batch(0, 1_000)]);
        let metadata = |path: &std::path::Path| {
            let options = ReadOptionsBuilder::new().with_page_index().build();
            SerializedFileReader::new_with_options(File::open(path).unwrap(), options).unwrap().metadata().clone()
        };
        let (generic, numeric) = (metadata(&generic), metadata(&numeric));
        let columns = generic.row_group(0).columns().iter().zip(numeric.row_group(0).columns());
        for (i, (a, b)) in columns.enumerate() {
            let path = a.column_path().string();
            assert_eq!(a.statistics(), b.statistics(), "statistics of {path}");
            assert_eq!(a.num_values(), b.num_values(), "values of {path}");
            let index = |m: &parquet::file::metadata::ParquetMetaData| format!("{:?}", m.column_index().map(|c| &c[0][i]));
            assert_eq!(index(&generic), index(&numeric), "column index of {path}");
        }
        // The flat columns were written by the numeric writer (zstd), the string by Arrow's.
        let codec_of = |name: &str| {
            let columns = numeric.row_group(0).columns();
            columns.iter().find(|c| c.column_path().string() == name).map(|c| c.compression()).unwrap()
        };
        assert!(matches!(codec_of("header.seq"), Compression::ZSTD(_)));
        assert!(matches!(codec_of("header.frame_id"), Compression::ZSTD(_)));
        assert!(generic.row_group(0).columns()[0].statistics().is_none());
        let seq = numeric.row_group(0).columns().iter().find(|c| c.column_path().string() == "header.seq").unwrap();
        assert!(seq.statistics().is_some_and(|s| s.max_bytes_opt() == Some(&(u32::MAX).to_le_bytes()[..])));
    }

}
