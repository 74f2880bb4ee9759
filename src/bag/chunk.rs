//! Chunks: where they are in the file, how they are compressed, and the records inside them.
//! A chunk is decompressed exactly once per pass; its records are then walked in place.

use std::borrow::Cow;
use std::io::Read;

use super::connection::Connection;
use super::memory::chunk_buffer;
use super::record::Fields;

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

/// Decompresses the stored bytes of `chunk`; returns the plain bytes and why decompression
/// stopped early (a damaged stream, or a chunk cut by the end of the file).
pub fn decompress_stored<'a>(chunk: &ChunkRef, stored: &'a [u8]) -> (Cow<'a, [u8]>, Option<String>) {
    let (plain, problem) = decompress(chunk, stored);
    let problem = match (problem, chunk.truncated) {
        (Some(p), _) => Some(p),
        (None, true) => Some("the file ends inside this chunk".to_string()),
        (None, false) => None,
    };
    (plain, problem)
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

fn read_all<'a>(mut reader: impl Read, capacity: usize, what: &str) -> (Cow<'a, [u8]>, Option<String>) {
    // An initialized buffer that the decoder writes into directly: `read_to_end` would zero
    // every piece of spare capacity before each `read` of a decoder that only implements
    // `read` — a memset of every decompressed byte.
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


#[cfg(test)]
mod tests {
    use super::*;
    use crate::bag::writer::compress;

    fn chunk(compression: Compression, stored: &[u8], plain_len: usize) -> ChunkRef {
        let mut c = ChunkRef::outside_chunks(0, stored.len());
        c.outside_chunks = false;
        c.compression = compression;
        c.uncompressed_size = plain_len as u64;
        c
    }

    fn plain() -> Vec<u8> {
        (0..50_000u32).flat_map(|i| (i % 97).to_le_bytes()).collect()
    }

    #[test]
    fn every_codec_decompresses_to_the_same_bytes() {
        let plain = plain();
        for compression in [Compression::None, Compression::Bz2, Compression::Lz4] {
            let stored = compress(compression, &plain).unwrap();
            let (out, problem) = decompress_stored(&chunk(compression, &stored, plain.len()), &stored);
            assert_eq!(problem, None, "{compression:?}");
            assert_eq!(out.as_ref(), plain.as_slice(), "{compression:?}");
        }
        let zstd = zstd::encode_all(plain.as_slice(), 1).unwrap();
        let (out, problem) = decompress_stored(&chunk(Compression::Zstd, &zstd, plain.len()), &zstd);
        assert_eq!((out.as_ref(), problem), (plain.as_slice(), None));
    }

    #[test]
    fn a_cut_stream_keeps_what_decompressed_and_says_why_it_stopped() {
        let plain = plain();
        for compression in [Compression::Bz2, Compression::Lz4] {
            let stored = compress(compression, &plain).unwrap();
            let cut = &stored[..stored.len() / 2];
            let (out, problem) = decompress_stored(&chunk(compression, cut, plain.len()), cut);
            assert!(problem.is_some(), "{compression:?}: a cut stream is reported");
            assert!(plain.starts_with(&out), "{compression:?}: what came out is the start of the chunk");
        }
    }

    #[test]
    fn output_never_exceeds_the_declared_size() {
        let plain = plain();
        let stored = compress(Compression::Lz4, &plain).unwrap();
        let (out, _) = decompress_stored(&chunk(Compression::Lz4, &stored, 1000), &stored);
        assert!(out.len() <= 1000, "{} bytes from a chunk that declares 1000", out.len());
    }

    #[test]
    fn a_truncated_chunk_is_reported_even_when_its_bytes_decompress() {
        let mut c = chunk(Compression::None, b"abc", 3);
        c.truncated = true;
        let (out, problem) = decompress_stored(&c, b"abc");
        assert_eq!(out.as_ref(), b"abc");
        assert!(problem.is_some_and(|p| p.contains("ends inside")));
    }

    #[test]
    fn compression_names_parse_and_unknown_ones_are_refused() {
        assert_eq!(Compression::parse(b"lz4").ok(), Some(Compression::Lz4));
        assert_eq!(Compression::parse(b"none").ok().map(Compression::name), Some("none"));
        assert!(Compression::parse(b"gzip").is_err());
    }
}
