//! Chunks: where they are in the file, how they are compressed, and the records inside them.
//! A chunk is decompressed exactly once per pass; its records are then walked in place.

use std::borrow::Cow;
use std::io::Read;

use super::record::{op, read_message_record, read_record, time_from_bytes, Fields, ReadOutcome};
use super::Connection;

/// Chunk compression named in the chunk record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Bz2,
    Lz4,
    /// MCAP chunks only.
    Zstd,
}

impl Compression {
    pub fn parse(name: &[u8]) -> Result<Self, String> {
        match name {
            b"none" => Ok(Compression::None),
            b"bz2" => Ok(Compression::Bz2),
            b"lz4" => Ok(Compression::Lz4),
            b"zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown chunk compression '{}'",
                String::from_utf8_lossy(other)
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Bz2 => "bz2",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Where one chunk's stored bytes are and what the index says about it.
#[derive(Debug, Clone)]
pub struct ChunkRef {
    /// File offset of the chunk record.
    pub pos: u64,
    pub compression: Compression,
    pub uncompressed_size: u64,
    /// File range of the (compressed) chunk data.
    pub data_start: usize,
    pub data_end: usize,
    /// The file ends inside this chunk; only its complete records can be recovered.
    pub truncated: bool,
    /// From the chunk info record, when the bag is indexed.
    pub start_time: Option<u64>,
    pub end_time: Option<u64>,
    /// (connection id, message count) from the chunk info record when indexed, or from the
    /// index records after the chunk when scanned.
    pub counts: Vec<(u32, u32)>,
    /// Not a chunk record: a run of message records found outside any chunk, read as an
    /// uncompressed chunk.
    pub outside_chunks: bool,
    /// Bytes of (compressed) data the chunk declares; more than `data_end - data_start` when the
    /// file ends inside the chunk.
    pub declared_stored_len: u64,
}

impl ChunkRef {
    pub fn stored_len(&self) -> usize {
        self.data_end - self.data_start
    }

    /// Parses the chunk record header found at `pos`.
    pub fn from_record(pos: u64, header: &Fields<'_>, data_start: usize, data_end: usize, truncated: bool) -> Result<Self, String> {
        let compression = Compression::parse(header.get("compression").ok_or("chunk without 'compression' field")?)?;
        let uncompressed_size = u64::from(header.u32("size")?);
        Ok(ChunkRef {
            pos,
            compression,
            uncompressed_size,
            data_start,
            data_end,
            truncated,
            start_time: None,
            end_time: None,
            counts: Vec::new(),
            outside_chunks: false,
            declared_stored_len: (data_end - data_start) as u64,
        })
    }

    /// A run of records found outside any chunk (file range `start..end`), read as an
    /// uncompressed chunk.
    pub fn outside_chunks(start: usize, end: usize) -> Self {
        ChunkRef {
            pos: start as u64,
            compression: Compression::None,
            uncompressed_size: (end - start) as u64,
            data_start: start,
            data_end: end,
            truncated: false,
            start_time: None,
            end_time: None,
            counts: Vec::new(),
            outside_chunks: true,
            declared_stored_len: (end - start) as u64,
        }
    }
}

/// Decompresses a chunk's stored bytes. For a truncated chunk (or a damaged stream) the bytes
/// that could be decompressed are returned together with the reason decompression stopped.
pub fn decompress<'a>(chunk: &ChunkRef, stored: &'a [u8]) -> (Cow<'a, [u8]>, Option<String>) {
    // Bound the pre-allocation: the size field comes from the file and may be garbage.
    let capacity = usize::try_from(chunk.uncompressed_size).unwrap_or(usize::MAX).min(256 << 20);
    // A chunk never decompresses to more than its declared size; stopping there bounds the
    // memory a damaged or hostile stream can take.
    let limit = chunk.uncompressed_size;
    match chunk.compression {
        Compression::None => (Cow::Borrowed(stored), None),
        Compression::Bz2 => read_all(bzip2::read::BzDecoder::new(stored).take(limit), capacity, "bz2"),
        Compression::Lz4 => match super::lz4_frame::decode(stored, capacity, usize::try_from(limit).unwrap_or(usize::MAX)) {
            Some((plain, problem)) => (Cow::Owned(plain), problem),
            None => read_all(lz4_flex::frame::FrameDecoder::new(stored).take(limit), capacity, "lz4"),
        },
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(stored) {
            Ok(decoder) => read_all(decoder.take(limit), capacity, "zstd"),
            Err(e) => (Cow::Owned(Vec::new()), Some(format!("zstd decompression failed: {e}"))),
        },
    }
}

thread_local! {
    /// The buffer of a decompressed chunk that nothing points into any more, handed back with
    /// [`recycle_chunk_buffer`] for the next chunk this thread decompresses.
    static SPARE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` initialized bytes to decompress a chunk into: this thread's spare one
/// when it has one (only the bytes it lacks are zeroed), else a zeroed new one (fresh pages,
/// zero already). A reused allocator block is zeroed by `calloc` in full: 93 MB of `memset`
/// and fresh pages on the 30-min lz4 drive, one chunk at a time.
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
pub fn recycle_chunk_buffer(buffer: Vec<u8>) {
    SPARE_BUFFER.with_borrow_mut(|spare| {
        if buffer.len() > spare.len() {
            *spare = buffer;
        }
    });
}

fn read_all<'a>(mut reader: impl Read, capacity: usize, what: &str) -> (Cow<'a, [u8]>, Option<String>) {
    // An initialized buffer that the decoder writes into directly: `read_to_end` would zero
    // every piece of spare capacity before each `read` of a decoder that only implements
    // `read` — a memset of every decompressed byte, 10 % of the time on lz4 image drives.
    let mut out = chunk_buffer(capacity);
    let mut filled = 0;
    let mut problem = None;
    while filled < out.len() {
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                problem = Some(format!("{what} decompression stopped: {e}"));
                break;
            }
        }
    }
    out.truncate(filled);
    if filled == capacity && problem.is_none() {
        // The buffer was capped below the declared size: read the rest the growing way (on
        // error, read_to_end keeps what it had already read).
        if let Err(e) = reader.read_to_end(&mut out) {
            problem = Some(format!("{what} decompression stopped: {e}"));
        }
    }
    (Cow::Owned(out), problem)
}

/// One item found while walking a decompressed chunk.
#[derive(Debug)]
pub enum ChunkItem<'a> {
    Connection(Connection),
    Message { conn: u32, time: u64, data: &'a [u8] },
}

/// Walks the records of a decompressed chunk. Stops at the first record that is incomplete or
/// malformed; `problem` then says why.
pub struct ChunkRecords<'a> {
    buf: &'a [u8],
    pos: usize,
    mcap: bool,
    pub problem: Option<String>,
}

impl<'a> ChunkRecords<'a> {
    /// Records of a ROS1 chunk.
    pub fn new(buf: &'a [u8]) -> Self {
        ChunkRecords {
            buf,
            pos: 0,
            mcap: false,
            problem: None,
        }
    }

    /// Records of an MCAP chunk (or of MCAP records outside chunks); schemas and channels are
    /// skipped (the file's scan collected them), messages are yielded.
    pub fn mcap(buf: &'a [u8]) -> Self {
        ChunkRecords {
            buf,
            pos: 0,
            mcap: true,
            problem: None,
        }
    }

    fn next_mcap(&mut self) -> Option<ChunkItem<'a>> {
        loop {
            if self.problem.is_some() {
                return None;
            }
            match super::mcap_file::read_record(self.buf, self.pos) {
                Ok(None) => return None,
                Ok(Some((opcode, body, end))) => {
                    self.pos = end;
                    if opcode == super::mcap_file::op::MESSAGE {
                        match super::mcap_file::message(body) {
                            Some(m) => return Some(m),
                            None => {
                                self.problem = Some(format!("message record too short at chunk offset {}", self.pos));
                                return None;
                            }
                        }
                    }
                }
                Err(e) => {
                    self.problem = Some(format!("{e} at chunk offset {}", self.pos));
                    return None;
                }
            }
        }
    }
}

impl<'a> Iterator for ChunkRecords<'a> {
    type Item = ChunkItem<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.mcap {
            return self.next_mcap();
        }
        loop {
            if self.problem.is_some() {
                return None;
            }
            if let Some(message) = read_message_record(self.buf, self.pos) {
                self.pos = message.end;
                return Some(ChunkItem::Message { conn: message.conn, time: message.time, data: message.data });
            }
            match read_record(self.buf, self.pos) {
                ReadOutcome::End => return None,
                ReadOutcome::Truncated { .. } => {
                    self.problem = Some(format!("chunk data ends inside a record at chunk offset {}", self.pos));
                    return None;
                }
                ReadOutcome::Invalid(e) => {
                    self.problem = Some(format!("bad record at chunk offset {}: {e}", self.pos));
                    return None;
                }
                ReadOutcome::Record(rec) => {
                    self.pos = rec.end;
                    match rec.header.op() {
                        Some(op::MESSAGE_DATA) => {
                            let conn = rec.header.u32("conn");
                            let time = rec.header.get("time").filter(|t| t.len() == 8);
                            match (conn, time) {
                                (Ok(conn), Some(t)) => {
                                    return Some(ChunkItem::Message {
                                        conn,
                                        time: time_from_bytes(t),
                                        data: rec.data,
                                    })
                                }
                                _ => {
                                    self.problem = Some("message record without valid 'conn'/'time'".into());
                                    return None;
                                }
                            }
                        }
                        Some(op::CONNECTION) => match Connection::from_record(&rec.header, rec.data) {
                            Ok(c) => return Some(ChunkItem::Connection(c)),
                            Err(e) => {
                                self.problem = Some(format!("bad connection record: {e}"));
                                return None;
                            }
                        },
                        // Other record kinds do not belong in a chunk; skip them.
                        _ => continue,
                    }
                }
            }
        }
    }
}
