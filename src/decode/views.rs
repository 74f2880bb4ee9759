//! Variable-length byte arrays (`uint8[]`, `char[]`: images, point clouds, blobs) collected as an
//! Arrow `BinaryView` column. A value up to 12 bytes is stored inside its view; a longer one
//! points into the buffer the message was read from when the caller can share it (a chunk of a
//! memory-mapped bag, or a decompressed chunk), so a camera frame is not copied before the
//! Parquet writer reads it; otherwise it is copied into the column's own buffer.

use std::sync::Arc;

use arrow::array::{make_view, ArrayRef, BinaryViewArray};
use arrow::buffer::{Buffer, ScalarBuffer};

use super::cursor::DecodeError;

/// Longest value stored inside its view.
const INLINE_MAX: usize = 12;

/// Index of the column's own buffer (copied values) among the array's data buffers; shared
/// buffers follow it.
const COPIED_BUFFER: u32 = 0;

/// Byte-array values being collected for one batch.
#[derive(Debug, Clone, Default)]
pub struct ByteViews {
    views: Vec<u128>,
    /// Values that could not be shared.
    copied: Vec<u8>,
    /// Buffers that views point into, in order: data buffer `i + 1` is `shared[i]`.
    shared: Vec<Buffer>,
    /// Total length of the buffers in `shared`, which stay alive until the values are written.
    shared_bytes: usize,
}

impl ByteViews {
    /// Adds `value`, which lies in `source` when the caller can share that buffer. Returns
    /// whether the value points into `source` (which must then stay readable until the values
    /// are written).
    pub fn push(&mut self, value: &[u8], source: Option<&Buffer>) -> Result<bool, DecodeError> {
        let mut shared = false;
        let len = u32::try_from(value.len()).map_err(|_| DecodeError::TooLarge)?;
        let view = if value.len() <= INLINE_MAX {
            make_view(value, 0, 0)
        } else if let Some((buffer, offset)) = source.and_then(|s| self.locate(s, value)) {
            shared = true;
            make_view(value, buffer, offset)
        } else {
            let offset = u32::try_from(self.copied.len()).map_err(|_| DecodeError::TooLarge)?;
            offset.checked_add(len).ok_or(DecodeError::TooLarge)?;
            self.copied.extend_from_slice(value);
            make_view(value, COPIED_BUFFER, offset)
        };
        self.views.push(view);
        Ok(shared)
    }

    /// The data buffer index and offset of `value` inside `source`, registering `source` as a
    /// data buffer if it is not the latest one. `None` if `value` is not inside `source` or the
    /// offset does not fit a view.
    fn locate(&mut self, source: &Buffer, value: &[u8]) -> Option<(u32, u32)> {
        let offset = u32::try_from(crate::source::offset_within(source, value)?).ok()?;
        let is_latest = self
            .shared
            .last()
            .is_some_and(|b| b.as_ptr() == source.as_ptr() && b.len() == source.len());
        if !is_latest {
            self.shared.push(source.clone());
            self.shared_bytes += source.len();
        }
        let index = u32::try_from(self.shared.len()).ok()?;
        Some((index, offset))
    }

    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Bytes the values hold or keep alive: views, copies, and the whole of every buffer they
    /// point into (a decompressed chunk stays in memory until its values are written), so a
    /// batch that refers to many chunks is flushed as soon as one that copied them would be.
    pub fn heap_bytes(&self) -> usize {
        self.views.len() * std::mem::size_of::<u128>() + self.copied.len() + self.shared_bytes
    }

    pub fn reserve(&mut self, rows: usize) {
        self.views.reserve(rows);
    }

    /// Keeps the first `rows` values.
    pub fn truncate(&mut self, rows: usize) {
        if rows >= self.views.len() {
            return;
        }
        // Copied values are appended in order: the first dropped one marks where they start.
        let first_dropped_copy = self.views[rows..]
            .iter()
            .filter(|&&v| view_len(v) > INLINE_MAX && view_buffer(v) == COPIED_BUFFER)
            .map(|&v| view_offset(v))
            .min();
        if let Some(offset) = first_dropped_copy {
            self.copied.truncate(offset);
        }
        self.views.truncate(rows);
    }

    /// Moves the values out as an array, leaving the builder empty, with room for as many.
    pub fn finish(&mut self) -> Result<ArrayRef, arrow::error::ArrowError> {
        let views = take_reserving(&mut self.views);
        let copied = take_reserving(&mut self.copied);
        let mut buffers = Vec::with_capacity(self.shared.len() + 1);
        buffers.push(Buffer::from_vec(copied));
        buffers.append(&mut self.shared);
        self.shared_bytes = 0;
        Ok(Arc::new(BinaryViewArray::try_new(ScalarBuffer::from(views), buffers, None)?))
    }
}

fn view_len(view: u128) -> usize {
    view as u32 as usize
}

fn view_buffer(view: u128) -> u32 {
    (view >> 64) as u32
}

fn view_offset(view: u128) -> usize {
    (view >> 96) as u32 as usize
}

/// Moves the values out and leaves an empty vector with the same capacity reserved: the next batch
/// is about as large, and growing from empty would copy it again at every doubling. The capacity,
/// not the length: batches differ by a chunk's messages, and a batch one row longer than the
/// last would otherwise copy the whole column into a vector twice the size.
pub(super) fn take_reserving<T>(values: &mut Vec<T>) -> Vec<T> {
    let reserved = Vec::with_capacity(values.capacity());
    std::mem::replace(values, reserved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    fn values(array: &ArrayRef) -> Vec<Vec<u8>> {
        array.as_binary_view().iter().map(|v| v.unwrap_or_default().to_vec()).collect()
    }

    #[test]
    fn long_values_point_into_a_shared_source_and_others_are_copied() {
        let source = Buffer::from_vec(b"header|a value longer than twelve bytes|tail".to_vec());
        let inside = &source.as_slice()[7..39];
        let outside = b"another value longer than twelve".to_vec();
        let mut views = ByteViews::default();
        assert!(!views.push(b"short", Some(&source)).unwrap());
        assert!(views.push(inside, Some(&source)).unwrap());
        assert!(!views.push(&outside, Some(&source)).unwrap());
        assert!(!views.push(inside, None).unwrap());
        let array = views.finish().unwrap();
        assert_eq!(values(&array), vec![b"short".to_vec(), inside.to_vec(), outside.clone(), inside.to_vec()]);
        let array = array.as_binary_view();
        // Buffer 0 holds the two copies; buffer 1 is the source itself, not a copy of it.
        assert_eq!(array.data_buffers().len(), 2);
        assert_eq!(array.data_buffers()[0].len(), outside.len() + inside.len());
        assert_eq!(array.data_buffers()[1].as_ptr(), source.as_ptr());
        assert!(views.is_empty());
    }

    #[test]
    fn truncate_drops_the_copies_of_dropped_rows() {
        let mut views = ByteViews::default();
        views.push(&[1; 20], None).unwrap();
        views.push(&[2; 3], None).unwrap();
        views.push(&[3; 30], None).unwrap();
        views.push(&[4; 40], None).unwrap();
        views.truncate(2);
        assert_eq!(views.copied.len(), 20);
        assert_eq!(views.heap_bytes(), 2 * 16 + 20, "the 3-byte value is inside its view");
        views.push(&[5; 15], None).unwrap();
        let array = views.finish().unwrap();
        assert_eq!(values(&array), vec![vec![1; 20], vec![2; 3], vec![5; 15]]);
    }

    #[test]
    fn sources_are_registered_once_per_run() {
        let a = Buffer::from_vec(vec![7u8; 64]);
        let b = Buffer::from_vec(vec![8u8; 64]);
        let mut views = ByteViews::default();
        for source in [&a, &a, &b, &b, &a] {
            views.push(&source.as_slice()[10..40], Some(source)).unwrap();
        }
        assert_eq!(views.heap_bytes(), 5 * 16 + 3 * 64, "each run keeps its whole source alive");
        let array = views.finish().unwrap();
        assert_eq!(array.as_binary_view().data_buffers().len(), 4);
        assert_eq!(array.len(), 5);
        assert_eq!(values(&array)[4], vec![7u8; 30]);
    }
}

