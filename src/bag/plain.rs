//! Reading chunks: [`Bag::read_chunks`] hands out [`PlainChunk`]s, the plain (decompressed)
//! bytes of each chunk in order, from a memory-mapped file, bytes in memory, or ranges fetched
//! several ahead of the reader. The reader owns their memory: dropping a chunk drops the bag's
//! pages it touched from resident memory and keeps its decompression buffer for the next chunk
//! of the thread, unless decoded values still point into it (then the values' owner hands the
//! buffers back with [`Bag::release_values`] once they are written).

use arrow::buffer::Buffer;

use super::chunk::{decompress_stored, ChunkRef};
use super::chunk_records::ChunkRecords;
use super::memory::{recycle_chunk_buffer, Bytes};
use super::ranged::{read_error, resolve_chunk};
use super::Bag;
use super::error::Result;

/// The plain bytes of one chunk, as read by [`Bag::read_chunks`].
pub struct PlainChunk<'bag> {
    bag: &'bag Bag,
    info: std::borrow::Cow<'bag, ChunkRef>,
    bytes: Plain<'bag>,
    problem: Option<String>,
    /// Decoded values point into the bag's own pages: they stay resident when the chunk goes.
    values_point_into_bag: bool,
}

/// Where a chunk's plain bytes are.
enum Plain<'bag> {
    /// Read in place from the bag (stored uncompressed): a slice of the bag's buffer.
    InBag(Buffer),
    /// Decompressed (or fetched) into memory of its own.
    Owned(Buffer),
    /// In the bag but not shareable as a buffer (a bag given as bytes without a buffer).
    Borrowed(&'bag [u8]),
    /// Handed back already (while the chunk is dropped).
    Released,
}

impl<'bag> PlainChunk<'bag> {
    /// A chunk of a bag whose bytes are in memory (mapped or held).
    fn in_memory(bag: &'bag Bag, info: &'bag ChunkRef) -> Self {
        let (plain, problem) = decompress_stored(info, bag.chunk_bytes(info));
        let bytes = match plain {
            std::borrow::Cow::Borrowed(slice) => bag.share(slice).map_or(Plain::Borrowed(slice), Plain::InBag),
            std::borrow::Cow::Owned(vec) => Plain::Owned(Buffer::from_vec(vec)),
        };
        PlainChunk { bag, info: std::borrow::Cow::Borrowed(info), bytes, problem, values_point_into_bag: false }
    }

    /// A chunk fetched by range: `stored` is its data, owned.
    fn fetched(bag: &'bag Bag, info: ChunkRef, stored: Vec<u8>) -> Self {
        let (plain, problem) = match decompress_stored(&info, &stored) {
            (std::borrow::Cow::Owned(vec), problem) => (Some(vec), problem),
            (std::borrow::Cow::Borrowed(_), problem) => (None, problem),
        };
        // Stored uncompressed: the fetched bytes are the plain bytes.
        let bytes = Plain::Owned(Buffer::from_vec(plain.unwrap_or(stored)));
        PlainChunk { bag, info: std::borrow::Cow::Owned(info), bytes, problem, values_point_into_bag: false }
    }

    /// Where the chunk is in the file, its compression, times and message counts.
    pub fn info(&self) -> &ChunkRef {
        &self.info
    }

    /// The plain bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Plain::InBag(buffer) | Plain::Owned(buffer) => buffer.as_slice(),
            Plain::Borrowed(slice) => slice,
            Plain::Released => &[],
        }
    }

    /// The plain bytes as an Arrow buffer that decoded values may point into instead of copying
    /// them; `None` when they cannot be shared.
    pub fn shared(&self) -> Option<&Buffer> {
        match &self.bytes {
            Plain::InBag(buffer) | Plain::Owned(buffer) => Some(buffer),
            Plain::Borrowed(_) | Plain::Released => None,
        }
    }

    /// The records of the chunk, in its bag's format.
    pub fn records(&self) -> ChunkRecords<'_> {
        self.bag.records(self.bytes())
    }

    /// Why decompression stopped early, if it did (the bytes before that point are readable).
    pub fn take_problem(&mut self) -> Option<String> {
        self.problem.take()
    }

    /// Says that decoded values still point into this chunk's bytes. When they lie in the bag's
    /// own pages, those stay resident until the values are handed back with
    /// [`Bag::release_values`]; a buffer of the chunk's own lives as long as the values do.
    pub fn keep_for_values(&mut self) {
        self.values_point_into_bag = true;
    }
}

impl Drop for PlainChunk<'_> {
    fn drop(&mut self) {
        let in_bag = matches!(self.bytes, Plain::InBag(_));
        if !(in_bag && self.values_point_into_bag) {
            self.bag.release_chunk_pages(&self.info);
        }
        if let Plain::Owned(buffer) = std::mem::replace(&mut self.bytes, Plain::Released) {
            // Unless values still point into it, the thread's next chunk is decompressed into it.
            if let Ok(bytes) = buffer.into_vec::<u8>() {
                recycle_chunk_buffer(bytes);
            }
        }
    }
}

impl Bag {
    /// The chunks `chunks`, in order, each decompressed: read in place from a file in memory,
    /// or fetched (several ahead of the reader) when the bag is read by ranges.
    pub fn read_chunks<'a>(&'a self, chunks: &'a [ChunkRef]) -> Box<dyn Iterator<Item = Result<PlainChunk<'a>>> + 'a> {
        match &self.bytes {
            Bytes::Ranged(reader) => {
                let spans = chunks.iter().map(|c| c.data_start as u64..c.data_end as u64).collect();
                let reader = reader.as_ref();
                Box::new(reader.fetch(spans).zip(chunks).map(move |(fetched, placeholder)| {
                    let bytes = fetched.map_err(|problem| read_error(reader, placeholder.pos, &problem))?;
                    let (info, stored) = match self.format {
                        super::BagFormat::Ros1 => resolve_chunk(&self.path, placeholder, bytes)?,
                        super::BagFormat::Mcap | super::BagFormat::Rosbag2 => super::mcap_summary::resolve_chunk(placeholder, &bytes)
                            .map_err(|reason| super::BagError::Corrupt { path: self.path.clone(), offset: placeholder.pos, reason })?,
                    };
                    Ok(PlainChunk::fetched(self, info, stored))
                }))
            }
            _ => Box::new(chunks.iter().map(move |c| Ok(PlainChunk::in_memory(self, c)))),
        }
    }

    /// Hands back buffers that decoded values pointed into (from [`PlainChunk::shared`]) once
    /// those values have been written out: pages of the bag they lie in leave resident memory.
    pub fn release_values<'b>(&self, buffers: impl IntoIterator<Item = &'b Buffer>) {
        for buffer in buffers {
            self.release_shared(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bag::writer::{BagWriter, ConnectionSpec};
    use crate::bag::{ChunkItem, Compression};

    fn bag_bytes(compression: Compression) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bag");
        let mut writer = BagWriter::create(&path, compression).unwrap();
        writer.set_chunk_threshold(256);
        let conn = writer.add_connection(ConnectionSpec {
            topic: "/n".into(),
            msg_type: "std_msgs/UInt32".into(),
            md5sum: "x".into(),
            definition: "uint32 data".into(),
            callerid: None,
            latching: false,
        });
        for i in 0..200u32 {
            writer.write(conn, 1_000 + u64::from(i), &i.to_le_bytes()).unwrap();
        }
        writer.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    fn messages(bag: &Bag) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for chunk in bag.read_chunks(&bag.chunks) {
            let chunk = chunk.unwrap();
            for item in chunk.records() {
                if let ChunkItem::Message { time, data, .. } = item {
                    out.push((time, data.to_vec()));
                }
            }
        }
        out
    }

    #[test]
    fn every_compression_reads_back_the_same_messages_in_order() {
        let plain = Bag::from_bytes("plain.bag", bag_bytes(Compression::None)).unwrap();
        let expected = messages(&plain);
        assert_eq!(expected.len(), 200);
        assert_eq!(expected[7], (1_007, 7u32.to_le_bytes().to_vec()));
        for compression in [Compression::Lz4, Compression::Bz2] {
            let bag = Bag::from_bytes("c.bag", bag_bytes(compression)).unwrap();
            assert!(bag.chunks.len() > 1, "several chunks for {compression:?}");
            assert_eq!(messages(&bag), expected, "{compression:?}");
        }
    }

    #[test]
    fn an_uncompressed_chunk_is_shared_in_place_and_a_compressed_one_owns_its_bytes() {
        let plain = Bag::from_bytes("plain.bag", bag_bytes(Compression::None)).unwrap();
        let chunk = plain.read_chunks(&plain.chunks[..1]).next().unwrap().unwrap();
        let shared = chunk.shared().expect("bytes of a bag in memory are shareable");
        assert_eq!(shared.as_ptr(), chunk.bytes().as_ptr());
        assert!(plain.share(chunk.bytes()).is_some(), "the plain bytes lie inside the bag");
        let lz4 = Bag::from_bytes("lz4.bag", bag_bytes(Compression::Lz4)).unwrap();
        let chunk = lz4.read_chunks(&lz4.chunks[..1]).next().unwrap().unwrap();
        assert!(chunk.shared().is_some());
        assert!(lz4.share(chunk.bytes()).is_none(), "decompressed bytes are the chunk's own");
    }
}
