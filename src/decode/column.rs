//! Columnar builders that ROS1-serialized messages are decoded into. A connection's definition is
//! compiled once into a tree of [`Column`]s (the decode plan); each message then appends straight
//! into typed vectors, and a batch is turned into Arrow arrays without copying values again.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, DurationNanosecondArray, FixedSizeListArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, ListArray,
    StringArray, StructArray, TimestampNanosecondArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::cursor::{Cursor, DecodeError};
use super::views::{take_reserving, ByteViews};

/// Name of the element field of list columns.
pub const LIST_ITEM: &str = "item";

/// The member a message type without fields gets in its struct column: the name rosidl gives
/// the placeholder member of such a message in the code it generates.
pub const EMPTY_MESSAGE_MEMBER: &str = "structure_needs_at_least_one_member";

/// Timezone of every timestamp column.
pub const UTC: &str = "UTC";

/// One column of decoded values, mirroring one node of a message definition.
#[derive(Debug, Clone)]
pub enum Column {
    Bool(Vec<bool>),
    Int8(Vec<i8>),
    UInt8(Vec<u8>),
    Int16(Vec<i16>),
    UInt16(Vec<u16>),
    Int32(Vec<i32>),
    UInt32(Vec<u32>),
    Int64(Vec<i64>),
    UInt64(Vec<u64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    /// ROS `time` as nanoseconds since the epoch.
    Time(Vec<i64>),
    /// ROS `duration` as nanoseconds.
    Duration(Vec<i64>),
    /// UTF-8 text; values that were not valid UTF-8 are stored with replacement characters and
    /// flagged so the caller can keep the raw message.
    Utf8(Bytes),
    /// `uint8[]`, `char[]` (and their fixed-size forms) inside other fields: raw bytes.
    Binary { fixed: Option<usize>, values: Bytes },
    /// `uint8[]`, `char[]` as a message's own field (images, point clouds): raw bytes, large
    /// values shared with the chunk they were read from rather than copied. (Only top-level
    /// columns: the Parquet writer accepts views in place of binary there, not nested.)
    ByteArray(ByteViews),
    Struct { names: Vec<String>, children: Vec<Column>, rows: usize },
    /// The one member of a message type without fields ([`EMPTY_MESSAGE_MEMBER`]): Parquet
    /// cannot store a struct without fields. CDR puts a placeholder byte on the wire for such a
    /// message, which is read into it; ROS1 puts nothing, and the value is 0.
    EmptyMessage(Vec<u8>),
    List { offsets: Vec<i32>, child: Box<Column> },
    FixedList { size: usize, child: Box<Column>, rows: usize },
}

/// Variable-length values: offsets into one byte buffer.
#[derive(Debug, Clone)]
pub struct Bytes {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
}

impl Default for Bytes {
    fn default() -> Self {
        Bytes {
            offsets: vec![0],
            data: Vec::new(),
        }
    }
}

impl Bytes {
    fn push(&mut self, value: &[u8]) -> Result<(), DecodeError> {
        self.data.extend_from_slice(value);
        let end = i32::try_from(self.data.len()).map_err(|_| DecodeError::TooLarge)?;
        self.offsets.push(end);
        Ok(())
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn truncate(&mut self, rows: usize) {
        if rows < self.len() {
            self.data.truncate(self.offsets[rows] as usize);
            self.offsets.truncate(rows + 1);
        }
    }

    fn take(&mut self) -> (OffsetBuffer<i32>, arrow::buffer::Buffer) {
        let offsets = take_reserving(&mut self.offsets);
        self.offsets.push(0);
        let data = take_reserving(&mut self.data);
        (
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            arrow::buffer::Buffer::from_vec(data),
        )
    }
}

/// Reads `n` values of a fixed-width primitive in one pass (aligned and in the payload's byte
/// order for CDR; ROS1 is packed little-endian).
macro_rules! extend_le {
    ($vec:expr, $cur:expr, $n:expr, $t:ty) => {{
        const W: usize = std::mem::size_of::<$t>();
        // CDR pads before a value, so an empty sequence has no padding for its elements.
        if $n > 0 {
            $cur.align(W)?;
        }
        let big_endian = $cur.big_endian();
        let bytes = $cur.take($n.checked_mul(W).ok_or(DecodeError::TooLarge)?)?;
        // Whole `W`-byte arrays (no fallible conversion per value), so the copy vectorises.
        let (values, _) = bytes.as_chunks::<W>();
        if big_endian {
            $vec.extend(values.iter().map(|&c| <$t>::from_be_bytes(c)));
        } else {
            $vec.extend(values.iter().map(|&c| <$t>::from_le_bytes(c)));
        }
    }};
}

/// Reads one fixed-width primitive (the common case: a scalar field), without the iterator
/// machinery of [`extend_le`].
macro_rules! push_le {
    ($vec:expr, $cur:expr, $t:ty) => {{
        const W: usize = std::mem::size_of::<$t>();
        $cur.align(W)?;
        let big_endian = $cur.big_endian();
        let bytes: [u8; W] = $cur.take(W)?.try_into().map_err(|_| DecodeError::Truncated)?;
        $vec.push(if big_endian { <$t>::from_be_bytes(bytes) } else { <$t>::from_le_bytes(bytes) });
    }};
}

impl Column {
    /// Number of values (rows at this level) held.
    pub fn len(&self) -> usize {
        match self {
            Column::Bool(v) => v.len(),
            Column::Int8(v) => v.len(),
            Column::UInt8(v) | Column::EmptyMessage(v) => v.len(),
            Column::Int16(v) => v.len(),
            Column::UInt16(v) => v.len(),
            Column::Int32(v) => v.len(),
            Column::UInt32(v) => v.len(),
            Column::Int64(v) | Column::Time(v) | Column::Duration(v) => v.len(),
            Column::UInt64(v) => v.len(),
            Column::Float32(v) => v.len(),
            Column::Float64(v) => v.len(),
            Column::Utf8(b) => b.len(),
            Column::Binary { values, .. } => values.len(),
            Column::ByteArray(views) => views.len(),
            Column::Struct { rows, .. } | Column::FixedList { rows, .. } => *rows,
            Column::List { offsets, .. } => offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of value data held (to decide when to flush a batch).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Column::Bool(v) => v.len(),
            Column::Int8(v) => v.len(),
            Column::UInt8(v) | Column::EmptyMessage(v) => v.len(),
            Column::Int16(v) => v.len() * 2,
            Column::UInt16(v) => v.len() * 2,
            Column::Int32(v) => v.len() * 4,
            Column::UInt32(v) => v.len() * 4,
            Column::Float32(v) => v.len() * 4,
            Column::Int64(v) | Column::Time(v) | Column::Duration(v) => v.len() * 8,
            Column::UInt64(v) => v.len() * 8,
            Column::Float64(v) => v.len() * 8,
            Column::Utf8(b) | Column::Binary { values: b, .. } => b.data.len() + b.offsets.len() * 4,
            Column::ByteArray(views) => views.heap_bytes(),
            Column::Struct { children, .. } => children.iter().map(Column::heap_bytes).sum(),
            Column::List { offsets, child } => offsets.len() * 4 + child.heap_bytes(),
            Column::FixedList { child, .. } => child.heap_bytes(),
        }
    }

    /// Bytes one value takes when its size does not depend on the message (lists count their
    /// offset only; text and variable binary their offset only). Saturates: nested fixed-size
    /// arrays of a hostile definition can multiply past `usize`.
    pub fn fixed_value_bytes(&self) -> usize {
        match self {
            Column::Bool(_) | Column::Int8(_) | Column::UInt8(_) | Column::EmptyMessage(_) => 1,
            Column::Int16(_) | Column::UInt16(_) => 2,
            Column::Int32(_) | Column::UInt32(_) | Column::Float32(_) => 4,
            Column::Int64(_) | Column::UInt64(_) | Column::Float64(_) | Column::Time(_) | Column::Duration(_) => 8,
            Column::Utf8(_) | Column::List { .. } => 4,
            Column::Binary { fixed, .. } => fixed.unwrap_or(0).saturating_add(4),
            Column::ByteArray(_) => std::mem::size_of::<u128>(),
            Column::Struct { children, .. } => children.iter().fold(0, |sum, c| sum.saturating_add(c.fixed_value_bytes())),
            Column::FixedList { size, child, .. } => size.saturating_mul(child.fixed_value_bytes()),
        }
    }

    /// Reserves room for `rows` more values, where their size is known in advance, so a batch
    /// does not grow by repeated doubling (each a copy into fresh memory). The caller bounds
    /// `rows` by [`Column::fixed_value_bytes`].
    pub fn reserve(&mut self, rows: usize) {
        match self {
            Column::Bool(v) => v.reserve(rows),
            Column::Int8(v) => v.reserve(rows),
            Column::UInt8(v) | Column::EmptyMessage(v) => v.reserve(rows),
            Column::Int16(v) => v.reserve(rows),
            Column::UInt16(v) => v.reserve(rows),
            Column::Int32(v) => v.reserve(rows),
            Column::UInt32(v) => v.reserve(rows),
            Column::Int64(v) | Column::Time(v) | Column::Duration(v) => v.reserve(rows),
            Column::UInt64(v) => v.reserve(rows),
            Column::Float32(v) => v.reserve(rows),
            Column::Float64(v) => v.reserve(rows),
            Column::Utf8(b) => b.offsets.reserve(rows),
            Column::Binary { fixed, values } => {
                values.offsets.reserve(rows);
                values.data.reserve(rows.saturating_mul(fixed.unwrap_or(0)));
            }
            Column::ByteArray(views) => views.reserve(rows),
            Column::Struct { children, .. } => children.iter_mut().for_each(|c| c.reserve(rows)),
            Column::List { offsets, .. } => offsets.reserve(rows),
            Column::FixedList { size, child, .. } => child.reserve(rows.saturating_mul(*size)),
        }
    }

    /// Arrow type of this column.
    pub fn data_type(&self) -> DataType {
        match self {
            Column::Bool(_) => DataType::Boolean,
            Column::Int8(_) => DataType::Int8,
            Column::UInt8(_) | Column::EmptyMessage(_) => DataType::UInt8,
            Column::Int16(_) => DataType::Int16,
            Column::UInt16(_) => DataType::UInt16,
            Column::Int32(_) => DataType::Int32,
            Column::UInt32(_) => DataType::UInt32,
            Column::Int64(_) => DataType::Int64,
            Column::UInt64(_) => DataType::UInt64,
            Column::Float32(_) => DataType::Float32,
            Column::Float64(_) => DataType::Float64,
            Column::Time(_) => DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into())),
            Column::Duration(_) => DataType::Duration(TimeUnit::Nanosecond),
            Column::Utf8(_) => DataType::Utf8,
            Column::Binary { .. } => DataType::Binary,
            // Stored in Parquet and table schemas as plain binary (`lake::parquet::storage_schema`).
            Column::ByteArray(_) => DataType::BinaryView,
            Column::Struct { names, children, .. } => DataType::Struct(struct_fields(names, children)),
            Column::List { child, .. } => DataType::List(Arc::new(Field::new(LIST_ITEM, child.data_type(), true))),
            Column::FixedList { size, child, .. } => {
                DataType::FixedSizeList(Arc::new(Field::new(LIST_ITEM, child.data_type(), true)), *size as i32)
            }
        }
    }

    /// Decodes one value of this column's type from `cur`. On error the column may hold a partial
    /// value; the caller rolls back with [`Column::truncate`].
    pub fn decode(&mut self, cur: &mut Cursor<'_>) -> Result<(), DecodeError> {
        match self {
            Column::Bool(v) => v.push(cur.u8()? != 0),
            Column::Int8(v) => v.push(cur.u8()? as i8),
            Column::UInt8(v) => v.push(cur.u8()?),
            Column::EmptyMessage(v) => v.push(if cur.is_cdr() { cur.u8()? } else { 0 }),
            Column::Int16(v) => push_le!(v, cur, i16),
            Column::UInt16(v) => push_le!(v, cur, u16),
            Column::Int32(v) => push_le!(v, cur, i32),
            Column::UInt32(v) => push_le!(v, cur, u32),
            Column::Int64(v) => push_le!(v, cur, i64),
            Column::UInt64(v) => push_le!(v, cur, u64),
            Column::Float32(v) => push_le!(v, cur, f32),
            Column::Float64(v) => push_le!(v, cur, f64),
            Column::Time(v) => v.push(read_time(cur)?),
            Column::Duration(v) => {
                // ROS1: int32 secs, int32 nsecs; ROS 2 builtin_interfaces/Duration: uint32 nanosec.
                let sec = cur.u32()? as i32 as i64;
                let raw_nsec = cur.u32()?;
                let nsec = if cur.is_cdr() { raw_nsec as i64 } else { raw_nsec as i32 as i64 };
                v.push(sec * 1_000_000_000 + nsec);
            }
            Column::Utf8(b) => {
                let len = cur.u32()? as usize;
                let mut raw = cur.take(len)?;
                if cur.is_cdr() {
                    // CDR strings carry their terminating NUL in the length.
                    raw = raw.strip_suffix(&[0]).unwrap_or(raw);
                }
                // Frame ids and labels are short ASCII: the plain byte check is the fast way in.
                if raw.is_ascii() || std::str::from_utf8(raw).is_ok() {
                    b.push(raw)?;
                } else {
                    b.push(String::from_utf8_lossy(raw).as_bytes())?;
                    cur.invalid_utf8 = true;
                }
            }
            Column::Binary { fixed, values } => {
                let len = match fixed {
                    Some(n) => *n,
                    None => cur.u32()? as usize,
                };
                values.push(cur.take(len)?)?;
            }
            Column::ByteArray(views) => {
                let len = cur.u32()? as usize;
                let raw = cur.take(len)?;
                cur.shared_used |= views.push(raw, cur.shared())?;
            }
            Column::Struct { children, rows, .. } => {
                if children.is_empty() && cur.is_cdr() {
                    // ROS 2 gives empty messages one placeholder byte on the wire (a nested
                    // empty message reads it into its EmptyMessage member instead).
                    cur.u8()?;
                }
                for child in children.iter_mut() {
                    // The commonest leaf (float64: points, vectors, quaternions) is read here
                    // rather than through a call per field.
                    match child {
                        Column::Float64(v) => push_le!(v, cur, f64),
                        other => other.decode(cur)?,
                    }
                }
                *rows += 1;
            }
            Column::List { offsets, child } => {
                let count = cur.u32()? as usize;
                child.decode_many(cur, count)?;
                let end = i32::try_from(child.len()).map_err(|_| DecodeError::TooLarge)?;
                offsets.push(end);
            }
            Column::FixedList { size, child, rows } => {
                child.decode_many(cur, *size)?;
                *rows += 1;
            }
        }
        Ok(())
    }

    /// Decodes `count` consecutive values; primitive runs are copied in one pass.
    fn decode_many(&mut self, cur: &mut Cursor<'_>, count: usize) -> Result<(), DecodeError> {
        // Primitive runs first (covariance matrices are a call here per message): taking their
        // bytes checks the count against what is left before anything is reserved.
        match self {
            Column::Int16(v) => extend_le!(v, cur, count, i16),
            Column::UInt16(v) => extend_le!(v, cur, count, u16),
            Column::Int32(v) => extend_le!(v, cur, count, i32),
            Column::UInt32(v) => extend_le!(v, cur, count, u32),
            Column::Int64(v) => extend_le!(v, cur, count, i64),
            Column::UInt64(v) => extend_le!(v, cur, count, u64),
            Column::Float32(v) => extend_le!(v, cur, count, f32),
            Column::Float64(v) => extend_le!(v, cur, count, f64),
            Column::Int8(v) => v.extend(cur.take(count)?.iter().map(|&b| b as i8)),
            Column::UInt8(v) => v.extend_from_slice(cur.take(count)?),
            _ => self.decode_many_compound(cur, count)?,
        }
        Ok(())
    }

    /// [`Column::decode_many`] for values that are not fixed-width numbers: structs, lists,
    /// strings, byte arrays, booleans and times.
    fn decode_many_compound(&mut self, cur: &mut Cursor<'_>, count: usize) -> Result<(), DecodeError> {
        // A count larger than the remaining bytes cannot be valid (every element takes ≥ 1 byte,
        // except empty structs); reject it before reserving memory.
        if self.may_be_zero_sized() {
            cur.charge_empty_elements(count)?;
        } else if count > cur.remaining() {
            return Err(DecodeError::Truncated);
        }
        if let Column::Struct { children, rows, .. } = self {
            if !cur.is_cdr() && decode_fixed_structs(children, cur, count)? {
                *rows += count;
                return Ok(());
            }
        }
        for _ in 0..count {
            self.decode(cur)?;
        }
        Ok(())
    }

    #[inline]
    fn may_be_zero_sized(&self) -> bool {
        match self {
            Column::Struct { children, .. } => children.iter().all(Column::may_be_zero_sized),
            Column::FixedList { size, child, .. } => *size == 0 || child.may_be_zero_sized(),
            Column::Binary { fixed: Some(0), .. } | Column::EmptyMessage(_) => true,
            _ => false,
        }
    }

    /// Drops every value after the first `rows` (used to undo a message that failed to decode).
    pub fn truncate(&mut self, rows: usize) {
        match self {
            Column::Bool(v) => v.truncate(rows),
            Column::Int8(v) => v.truncate(rows),
            Column::UInt8(v) | Column::EmptyMessage(v) => v.truncate(rows),
            Column::Int16(v) => v.truncate(rows),
            Column::UInt16(v) => v.truncate(rows),
            Column::Int32(v) => v.truncate(rows),
            Column::UInt32(v) => v.truncate(rows),
            Column::Int64(v) | Column::Time(v) | Column::Duration(v) => v.truncate(rows),
            Column::UInt64(v) => v.truncate(rows),
            Column::Float32(v) => v.truncate(rows),
            Column::Float64(v) => v.truncate(rows),
            Column::Utf8(b) | Column::Binary { values: b, .. } => b.truncate(rows),
            Column::ByteArray(views) => views.truncate(rows),
            Column::Struct { children, rows: n, .. } => {
                for c in children.iter_mut() {
                    c.truncate(rows);
                }
                *n = (*n).min(rows);
            }
            Column::List { offsets, child } => {
                if rows + 1 < offsets.len() {
                    offsets.truncate(rows + 1);
                }
                let keep = offsets.last().copied().unwrap_or(0) as usize;
                child.truncate(keep);
            }
            Column::FixedList { size, child, rows: n } => {
                *n = (*n).min(rows);
                child.truncate(*n * *size);
            }
        }
    }

    /// Moves the values out as an Arrow array, leaving the column empty and reusable.
    pub fn finish(&mut self) -> Result<ArrayRef, arrow::error::ArrowError> {
        Ok(match self {
            Column::Bool(v) => Arc::new(BooleanArray::from(take_reserving(v))),
            Column::Int8(v) => Arc::new(Int8Array::from(take_reserving(v))),
            Column::UInt8(v) | Column::EmptyMessage(v) => Arc::new(UInt8Array::from(take_reserving(v))),
            Column::Int16(v) => Arc::new(Int16Array::from(take_reserving(v))),
            Column::UInt16(v) => Arc::new(UInt16Array::from(take_reserving(v))),
            Column::Int32(v) => Arc::new(Int32Array::from(take_reserving(v))),
            Column::UInt32(v) => Arc::new(UInt32Array::from(take_reserving(v))),
            Column::Int64(v) => Arc::new(Int64Array::from(take_reserving(v))),
            Column::UInt64(v) => Arc::new(UInt64Array::from(take_reserving(v))),
            Column::Float32(v) => Arc::new(Float32Array::from(take_reserving(v))),
            Column::Float64(v) => Arc::new(Float64Array::from(take_reserving(v))),
            Column::Time(v) => Arc::new(TimestampNanosecondArray::from(take_reserving(v)).with_timezone(UTC)),
            Column::Duration(v) => Arc::new(DurationNanosecondArray::from(take_reserving(v))),
            Column::Utf8(b) => {
                let (offsets, data) = b.take();
                Arc::new(StringArray::try_new(offsets, data, None)?)
            }
            Column::Binary { values, .. } => {
                let (offsets, data) = values.take();
                Arc::new(BinaryArray::try_new(offsets, data, None)?)
            }
            Column::ByteArray(views) => views.finish()?,
            Column::Struct { names, children, rows } => {
                let fields = struct_fields(names, children);
                let arrays = children.iter_mut().map(Column::finish).collect::<Result<Vec<_>, _>>()?;
                let n = std::mem::take(rows);
                if arrays.is_empty() {
                    Arc::new(StructArray::new_empty_fields(n, None))
                } else {
                    Arc::new(StructArray::try_new(fields, arrays, None)?)
                }
            }
            Column::List { offsets, child } => {
                let field = Arc::new(Field::new(LIST_ITEM, child.data_type(), true));
                let taken = take_reserving(offsets);
                offsets.push(0);
                let offsets = OffsetBuffer::new(ScalarBuffer::from(taken));
                Arc::new(ListArray::try_new(field, offsets, child.finish()?, None)?)
            }
            Column::FixedList { size, child, rows } => {
                let field = Arc::new(Field::new(LIST_ITEM, child.data_type(), true));
                let n = std::mem::take(rows);
                let values = child.finish()?;
                if n == 0 && values.is_empty() {
                    Arc::new(FixedSizeListArray::new_null(field, *size as i32, 0))
                } else {
                    Arc::new(FixedSizeListArray::try_new(field, *size as i32, values, None::<NullBuffer>)?)
                }
            }
        })
    }
}

/// A ROS `time` as nanoseconds since the epoch. ROS1 time is uint32 secs; ROS 2
/// builtin_interfaces/Time is int32 sec. Both count nanoseconds in a uint32.
#[inline(always)]
fn read_time(cur: &mut Cursor<'_>) -> Result<i64, DecodeError> {
    let raw_sec = cur.u32()?;
    let sec = if cur.is_cdr() { raw_sec as i32 as i64 } else { raw_sec as i64 };
    let nsec = cur.u32()? as i64;
    Ok(sec * 1_000_000_000 + nsec)
}

/// Bytes one struct takes on the wire when every field is a number of fixed width (points,
/// boxes: `{x, y}` of float32); `None` otherwise, or for a struct without fields.
fn fixed_struct_width(children: &[Column]) -> Option<usize> {
    let mut width = 0;
    for child in children {
        width += match child {
            Column::Int8(_) | Column::UInt8(_) => 1,
            Column::Int16(_) | Column::UInt16(_) => 2,
            Column::Int32(_) | Column::UInt32(_) | Column::Float32(_) => 4,
            Column::Int64(_) | Column::UInt64(_) | Column::Float64(_) => 8,
            _ => return None,
        };
    }
    (width > 0).then_some(width)
}

/// Decodes `count` consecutive ROS1-serialized structs of fixed-width numbers (see
/// [`fixed_struct_width`]) from one slice of the message, a field at a time, instead of a call
/// per field per element. Lane points are most of the values of lane messages. Returns `false`,
/// reading nothing, for structs with other fields.
fn decode_fixed_structs(children: &mut [Column], cur: &mut Cursor<'_>, count: usize) -> Result<bool, DecodeError> {
    let Some(width) = fixed_struct_width(children) else { return Ok(false) };
    let bytes = cur.take(count.checked_mul(width).ok_or(DecodeError::TooLarge)?)?;
    let mut offset = 0;
    macro_rules! read_field {
        ($vec:expr, $t:ty) => {{
            const W: usize = std::mem::size_of::<$t>();
            // From this field's first byte, one chunk per element: each holds at least the W
            // bytes of this field (the last one ends with the element, so is shorter by offset).
            let field = bytes.get(offset..).unwrap_or(&[]);
            $vec.extend(field.chunks(width).take(count).map(|element| {
                let mut raw = [0u8; W];
                raw.copy_from_slice(&element[..W]);
                <$t>::from_le_bytes(raw)
            }));
            offset += W;
        }};
    }
    for child in children.iter_mut() {
        match child {
            Column::Int8(v) => read_field!(v, i8),
            Column::UInt8(v) => read_field!(v, u8),
            Column::Int16(v) => read_field!(v, i16),
            Column::UInt16(v) => read_field!(v, u16),
            Column::Int32(v) => read_field!(v, i32),
            Column::UInt32(v) => read_field!(v, u32),
            Column::Float32(v) => read_field!(v, f32),
            Column::Int64(v) => read_field!(v, i64),
            Column::UInt64(v) => read_field!(v, u64),
            Column::Float64(v) => read_field!(v, f64),
            _ => {}
        }
    }
    Ok(true)
}

fn struct_fields(names: &[String], children: &[Column]) -> Fields {
    names
        .iter()
        .zip(children)
        .map(|(n, c)| Field::new(n, c.data_type(), true))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, ListArray, StringArray};
    use arrow::datatypes::{Float64Type, Int32Type, TimestampNanosecondType};

    use super::*;

    fn decode_all(column: &mut Column, messages: &[Vec<u8>]) {
        for m in messages {
            column.decode(&mut Cursor::new(m)).unwrap();
        }
    }

    #[test]
    fn a_struct_of_time_string_and_list_round_trips_into_arrow() {
        let mut column = Column::Struct {
            names: vec!["stamp".into(), "label".into(), "values".into()],
            children: vec![
                Column::Time(Vec::new()),
                Column::Utf8(Bytes::default()),
                Column::List { offsets: vec![0], child: Box::new(Column::Int32(Vec::new())) },
            ],
            rows: 0,
        };
        let message = |sec: u32, nsec: u32, label: &str, values: &[i32]| {
            let mut m = Vec::new();
            m.extend(sec.to_le_bytes());
            m.extend(nsec.to_le_bytes());
            m.extend((label.len() as u32).to_le_bytes());
            m.extend(label.as_bytes());
            m.extend((values.len() as u32).to_le_bytes());
            values.iter().for_each(|v| m.extend(v.to_le_bytes()));
            m
        };
        decode_all(&mut column, &[message(1, 5, "car", &[1, 2]), message(2, 0, "person", &[])]);
        assert_eq!(column.len(), 2);
        let array = column.finish().unwrap();
        assert_eq!(column.len(), 0, "finish leaves the column empty");
        let s = array.as_struct();
        let stamps = s.column(0).as_primitive::<TimestampNanosecondType>();
        assert_eq!(stamps.values().to_vec(), vec![1_000_000_005, 2_000_000_000]);
        assert_eq!(s.column(1).as_any().downcast_ref::<StringArray>().unwrap().value(1), "person");
        let lists = s.column(2).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(lists.value(0).as_primitive::<Int32Type>().values().to_vec(), vec![1, 2]);
        assert_eq!(lists.value(1).len(), 0);
    }

    #[test]
    fn truncate_undoes_a_message_that_failed_half_way() {
        let mut column = Column::Struct {
            names: vec!["x".into(), "y".into()],
            children: vec![Column::Float64(Vec::new()), Column::Float64(Vec::new())],
            rows: 0,
        };
        decode_all(&mut column, &[[1.0f64.to_le_bytes(), 2.0f64.to_le_bytes()].concat()]);
        // The second message holds x but ends before y.
        let short = 3.0f64.to_le_bytes();
        assert_eq!(column.decode(&mut Cursor::new(&short)), Err(DecodeError::Truncated));
        column.truncate(1);
        let array = column.finish().unwrap();
        let s = array.as_struct();
        assert_eq!(s.len(), 1);
        assert_eq!(s.column(0).as_primitive::<Float64Type>().values().to_vec(), vec![1.0]);
        assert_eq!(s.column(1).as_primitive::<Float64Type>().values().to_vec(), vec![2.0]);
    }

    #[test]
    fn invalid_utf8_is_kept_lossy_and_flagged() {
        let mut column = Column::Utf8(Bytes::default());
        let bytes = [2u8, 0, 0, 0, 0xff, b'a'];
        let mut cur = Cursor::new(&bytes);
        column.decode(&mut cur).unwrap();
        assert!(cur.invalid_utf8);
        let array = column.finish().unwrap();
        assert_eq!(array.as_any().downcast_ref::<StringArray>().unwrap().value(0), "\u{fffd}a");
    }
}
