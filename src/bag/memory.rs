//! The bag reader's memory, owned here and nowhere else: the file's bytes (a read-only memory map
//! shared with Arrow buffers, bytes held in memory, or a source of byte ranges), dropping the
//! pages of a mapped bag from resident memory once they have been read, and the per-thread
//! buffer that decompressed chunks reuse.

use std::sync::Arc;

use crate::source::RangeReader;

/// Where the bytes of a bag are.
pub(super) enum Bytes {
    /// A memory-mapped file, and the same bytes as an Arrow buffer that keeps the map alive, so
    /// columns can point into the file instead of copying large values (see [`Bag::share`]).
    Mapped { map: Arc<memmap2::Mmap>, shared: arrow::buffer::Buffer },
    Owned(arrow::buffer::Buffer),
    /// Read by byte ranges (an object in S3): only the index is held; chunks are fetched as
    /// they are read.
    Ranged(Arc<dyn RangeReader>),
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Bytes::Mapped { shared, .. } | Bytes::Owned(shared) => shared.as_slice(),
            Bytes::Ranged(_) => &[],
        }
    }
}

impl Bytes {
    /// The whole file, when it is in memory (mapped or held); `None` for a bag read by ranges.
    pub(super) fn in_memory(&self) -> Option<&[u8]> {
        match self {
            Bytes::Mapped { shared, .. } | Bytes::Owned(shared) => Some(shared.as_slice()),
            Bytes::Ranged(_) => None,
        }
    }

    /// No bytes at all (an empty file).
    pub(super) fn empty() -> Self {
        Bytes::Owned(arrow::buffer::Buffer::from_vec(Vec::<u8>::new()))
    }
}

/// A mapped file, with an Arrow buffer over its bytes that owns (a reference to) the map.
pub(super) fn mapped_bytes(map: memmap2::Mmap) -> Bytes {
    let map = Arc::new(map);
    let len = map.len();
    let shared = match std::ptr::NonNull::new(map.as_ptr().cast_mut()) {
        // SAFETY: the pointer is valid for `len` bytes for as long as the map lives, and the
        // buffer holds an `Arc` of the map. The map is read-only; the bytes can only change if
        // another process rewrites the file while we read it (the same caveat as the map).
        Some(ptr) => unsafe { arrow::buffer::Buffer::from_custom_allocation(ptr, len, map.clone()) },
        None => arrow::buffer::Buffer::from_vec(Vec::<u8>::new()),
    };
    Bytes::Mapped { map, shared }
}

/// Granularity of the kernel's fault-around: reading one page of a file mapping can map up to
/// this many bytes around it.
const FAULT_AROUND_BYTES: usize = 64 * 1024;

/// Drops the pages of `start..end` of a mapped bag from resident memory, widened to the
/// fault-around windows that contain them. They stay in the OS page cache. Does nothing for
/// bags held in memory or read by ranges.
pub(super) fn release_mapped(bytes: &Bytes, start: usize, end: usize) {
    if let Bytes::Mapped { map, .. } = bytes {
        let start = start / FAULT_AROUND_BYTES * FAULT_AROUND_BYTES;
        let end = end.div_ceil(FAULT_AROUND_BYTES).saturating_mul(FAULT_AROUND_BYTES).min(map.len());
        if start < end {
            // SAFETY: the map is a read-only shared file mapping: after MADV_DONTNEED, the next
            // access faults the same bytes back in from the file, so slices into it held
            // elsewhere keep their contents.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
        }
    }
}

/// Pages of a mapped bag to drop from resident memory, gathered into one call per
/// [`BatchedRelease::RANGES`] ranges: every call makes the kernel flush the mapping from the
/// other cores' TLBs, so one call per chunk header makes opening a bag of many chunks slower.
pub(super) struct BatchedRelease<'a> {
    bytes: &'a Bytes,
    /// The span of the ranges gathered so far, and their number.
    pending: Option<(usize, usize)>,
    count: usize,
}

impl<'a> BatchedRelease<'a> {
    /// At most this many ranges (of up to 64 KiB resident each) are held before they are dropped.
    const RANGES: usize = 64;

    pub(super) fn new(bytes: &'a Bytes) -> Self {
        BatchedRelease { bytes, pending: None, count: 0 }
    }

    pub(super) fn add(&mut self, start: usize, end: usize) {
        let (low, high) = self.pending.map_or((start, end), |(low, high)| (low.min(start), high.max(end)));
        self.pending = Some((low, high));
        self.count += 1;
        if self.count >= Self::RANGES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some((start, end)) = self.pending.take() {
            release_mapped(self.bytes, start, end);
        }
        self.count = 0;
    }
}

impl Drop for BatchedRelease<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    /// The buffer of a decompressed chunk that nothing points into any more, handed back with
    /// [`recycle_chunk_buffer`] for the next chunk this thread decompresses.
    static SPARE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` initialized bytes to decompress a chunk into: this thread's spare one
/// when it has one (only the bytes it lacks are zeroed), else a zeroed new one (fresh pages,
/// zero already). A reused allocator block would be zeroed by `calloc` in full, every byte of
/// every decompressed chunk.
pub(super) fn chunk_buffer(len: usize) -> Vec<u8> {
    let mut buffer = SPARE_BUFFER.with_borrow_mut(std::mem::take);
    if buffer.is_empty() {
        return vec![0u8; len];
    }
    if buffer.len() >= len {
        buffer.truncate(len);
    } else {
        buffer.resize(len, 0);
    }
    buffer
}

/// Keeps `buffer`, the bytes of a decompressed chunk that has been read and that nothing
/// points into, for the next chunk this thread decompresses (the larger one, if it already
/// keeps one).
pub(super) fn recycle_chunk_buffer(buffer: Vec<u8>) {
    SPARE_BUFFER.with_borrow_mut(|spare| {
        if buffer.len() > spare.len() {
            *spare = buffer;
        }
    });
}
