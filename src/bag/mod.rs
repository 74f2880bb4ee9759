//! Bag readers: ROS1 bags (format 2.0) and MCAP files, from a memory-mapped file, bytes in
//! memory, or byte ranges (S3). Opening validates the file and finds its connections and chunks
//! from the index when it is intact, or by a linear scan that salvages every complete record when
//! it is not (unindexed `.bag.active` files, torn uploads). [`Bag::read_chunks`] then hands out
//! chunks one by one, and the reader owns their memory. Nothing in here panics on bad input.
//!
//! Files: [`connection`] (what a topic carries), [`summary`] (what opening found), [`index`]
//! and [`scan`] (ROS1 index and salvage), [`mcap_file`] (MCAP records), [`ranged`] (opening by
//! ranges), [`chunk`] (chunk locations and decompression), [`chunk_records`] (walking a chunk),
//! [`plain`] (handing chunks out), [`memory`] (pages and buffers), [`record`] (ROS1 record
//! headers), [`writer`] (writing ROS1 bags).

pub mod chunk;
pub mod chunk_records;
pub mod connection;
mod error;
mod index;
mod lz4_frame;
pub mod mcap_file;
mod mcap_summary;
mod memory;
pub mod plain;
pub mod ranged;
pub mod record;
#[cfg(feature = "lake")]
pub mod rosbag2;
mod scan;
pub mod summary;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::source::offset_within;
pub use chunk::{ChunkItem, ChunkRef, Compression};
pub use chunk_records::ChunkRecords;
pub use connection::{Connection, Encoding};
pub use error::{BagError, Result};
pub use index::MAGIC_V2;
use index::{check_magic, corrupt, read_index, stats_from_index};
use memory::{mapped_bytes, release_mapped, BatchedRelease, Bytes};
pub use plain::PlainChunk;
use record::{op, read_record, ReadOutcome};
use scan::scan_records;
pub use summary::{ConnectionStats, CutChunk, IndexState, ScanDamage, TopicLoss};

/// The container format of a bag file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BagFormat {
    /// ROS1 bag, format V2.0.
    Ros1,
    /// MCAP (ROS 2 bags, or ROS1 messages in MCAP).
    Mcap,
    /// A rosbag2 recording (folder or `.db3` file), read through a merged MCAP copy.
    Rosbag2,
}

/// An opened bag (ROS1 or MCAP): its connections and chunk locations, ready to be read chunk by
/// chunk.
pub struct Bag {
    pub path: PathBuf,
    pub format: BagFormat,
    bytes: Bytes,
    pub connections: Vec<Connection>,
    pub chunks: Vec<ChunkRef>,
    pub index: IndexState,
    pub stats: BTreeMap<u32, ConnectionStats>,
    pub damage: ScanDamage,
    /// What identifies this version of the source file (size and mtime, or size and ETag),
    /// recorded so that an unchanged bag is not ingested again; `None` for bytes in memory.
    pub source_version: Option<String>,
}

impl Bag {
    /// Opens a bag file (memory-mapped) and reads its index, or scans it when the index is
    /// unusable. A rosbag2 recording (folder or `.db3`) is opened with the definitions it holds.
    pub fn open(path: impl AsRef<Path>) -> Result<Bag> {
        Self::open_with_definitions(path, &|msg_type: &str| Err(format!("no definition of {msg_type} in the recording")))
    }

    /// As [`Bag::open`]; the definitions of types a rosbag2 recording does not hold come from
    /// `resolve` (message search paths).
    pub fn open_with_definitions(path: impl AsRef<Path>, resolve: &dyn Fn(&str) -> std::result::Result<String, String>) -> Result<Bag> {
        let path = path.as_ref().to_path_buf();
        #[cfg(feature = "lake")]
        if rosbag2::is_rosbag2(&path) {
            return rosbag2::open(&path, resolve);
        }
        #[cfg(not(feature = "lake"))]
        let _ = resolve;
        let file = std::fs::File::open(&path).map_err(|e| BagError::io(&path, e))?;
        let meta = file.metadata().map_err(|e| BagError::io(&path, e))?;
        if meta.is_dir() {
            return Err(BagError::Directory { path });
        }
        let mut bag = Self::open_file(&path, &file)?;
        bag.source_version = Some(crate::source::local_version(&meta));
        Ok(bag)
    }

    /// Opens the bag in `file` (memory-mapped), named `path`.
    pub(crate) fn open_file(path: &Path, file: &std::fs::File) -> Result<Bag> {
        let path = path.to_path_buf();
        let meta = file.metadata().map_err(|e| BagError::io(&path, e))?;
        let bytes = if meta.len() == 0 {
            Bytes::empty()
        } else {
            // SAFETY: the map is read-only. A file truncated by another process while we read it
            // can still fault; bags being written should be ingested after they are closed.
            let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| BagError::io(&path, e))?;
            mapped_bytes(map)
        };
        let bag = Self::from_bytes_inner(path, bytes)?;
        // Opening touched a page of every chunk (the index is checked against each chunk
        // header); on a multi-GB bag that is hundreds of MB of resident pages. Drop them all.
        bag.release_pages(0, usize::try_from(bag.file_size()).unwrap_or(usize::MAX));
        Ok(bag)
    }

    /// Opens a bag held in memory (tests, fuzzing, objects fetched from a store).
    pub fn from_bytes(name: impl Into<PathBuf>, data: Vec<u8>) -> Result<Bag> {
        Self::from_bytes_inner(name.into(), Bytes::Owned(arrow::buffer::Buffer::from_vec(data)))
    }

    /// Opens a bag whose bytes are in memory (mapped or held).
    fn from_bytes_inner(path: PathBuf, bytes: Bytes) -> Result<Bag> {
        let data = bytes.in_memory().unwrap_or_default();
        if data.starts_with(mcap_file::MAGIC) {
            return Ok(Self::open_mcap(path, bytes));
        }
        check_magic(&path, data)?;
        let header_pos = MAGIC_V2.len();
        let (header, after_header) = match read_record(data, header_pos) {
            ReadOutcome::Record(r) if r.header.op() == Some(op::BAG_HEADER) => (r.header.clone(), r.end),
            ReadOutcome::Record(_) | ReadOutcome::Invalid(_) => {
                return Err(corrupt(&path, header_pos, "the first record is not a bag header"))
            }
            ReadOutcome::End | ReadOutcome::Truncated { .. } => {
                return Err(corrupt(&path, header_pos, "the file ends inside the bag header"))
            }
        };
        if let Some(enc) = header.get("encryptor").filter(|v| !v.is_empty()) {
            return Err(BagError::Encrypted {
                path,
                encryptor: String::from_utf8_lossy(enc).into_owned(),
            });
        }
        let index_pos = header.u64("index_pos").unwrap_or(0);
        let mut bag = Bag {
            path,
            format: BagFormat::Ros1,
            bytes: Bytes::empty(),
            connections: Vec::new(),
            chunks: Vec::new(),
            index: IndexState::Indexed,
            stats: BTreeMap::new(),
            damage: ScanDamage::default(),
            source_version: None,
        };
        // Checking each chunk header maps its pages (and, by the kernel's fault-around, up to
        // 64 KiB around them): on a bag of thousands of chunks that is hundreds of MiB of
        // resident memory, so they are dropped every few dozen headers (`Bag::open` drops the
        // rest).
        let indexed = {
            let mut checked = BatchedRelease::new(&bytes);
            read_index(data, index_pos, |start, end| checked.add(start, end))
        };
        match indexed {
            Ok((connections, chunks)) => {
                bag.connections = connections;
                bag.chunks = chunks;
                bag.stats = stats_from_index(&bag.chunks);
                bag.bytes = bytes;
            }
            Err(reason) => {
                let scan = scan_records(data, after_header);
                bag.index = IndexState::Scanned(reason);
                bag.chunks = scan.chunks;
                bag.damage = scan.damage;
                bag.bytes = bytes;
                bag.discover_by_reading_chunks(scan.connections);
            }
        }
        Ok(bag)
    }

    /// Size of the bag file in bytes.
    pub fn file_size(&self) -> u64 {
        match &self.bytes {
            Bytes::Ranged(reader) => reader.len(),
            in_memory => in_memory.in_memory().map_or(0, |data| data.len() as u64),
        }
    }

    /// `bytes` (a slice of this bag's file) as an Arrow buffer sharing the file's memory, so that
    /// columns can refer to values in place. `None` for bags read by ranges, or when `bytes`
    /// does not lie in the file (a decompressed chunk).
    pub(crate) fn share(&self, bytes: &[u8]) -> Option<arrow::buffer::Buffer> {
        let (Bytes::Mapped { shared, .. } | Bytes::Owned(shared)) = &self.bytes else {
            return None;
        };
        let offset = offset_within(shared, bytes)?;
        Some(shared.slice_with_length(offset, bytes.len()))
    }

    /// Drops the pages under `buffer` from resident memory if it is a slice of this bag's map
    /// (from [`Bag::share`]), as [`Bag::release_chunk_pages`] does for a chunk. Call it once the
    /// values pointing there have been written out.
    fn release_shared(&self, buffer: &arrow::buffer::Buffer) {
        if let Bytes::Mapped { shared, .. } = &self.bytes {
            if let Some(start) = offset_within(shared, buffer) {
                self.release_pages(start, start + buffer.len());
            }
        }
    }

    /// The stored (possibly compressed) bytes of one chunk of a bag in memory (empty for a bag
    /// read by ranges: [`Bag::read_chunks`] fetches those).
    fn chunk_bytes(&self, chunk: &ChunkRef) -> &[u8] {
        self.bytes.in_memory().and_then(|data| data.get(chunk.data_start..chunk.data_end)).unwrap_or(&[])
    }

    /// Drops the pages of a chunk that has been read from this process's resident memory. They
    /// stay in the OS page cache; without this, every page of a multi-GB memory-mapped bag would
    /// count as resident once read. Does nothing for bags held in memory.
    fn release_chunk_pages(&self, chunk: &ChunkRef) {
        // From the record header (touched when the index was checked) to the end of the data.
        let start = usize::try_from(chunk.pos).unwrap_or(chunk.data_start).min(chunk.data_start);
        self.release_pages(start, chunk.data_end);
    }

    /// Drops the mapped pages of `start..end` from this process's resident memory.
    fn release_pages(&self, start: usize, end: usize) {
        release_mapped(&self.bytes, start, end);
    }

    pub fn is_indexed(&self) -> bool {
        self.index == IndexState::Indexed
    }

    pub fn message_count(&self) -> u64 {
        self.stats.values().map(|s| s.messages).sum()
    }

    pub fn start_time(&self) -> Option<u64> {
        self.stats.values().filter_map(|s| s.start_time).min()
    }

    /// Per topic: messages known to be lost and messages recovered from the chunk cut by the end
    /// of the file (both 0 for an undamaged bag).
    pub fn topic_losses(&self) -> BTreeMap<String, TopicLoss> {
        let mut out: BTreeMap<String, TopicLoss> = BTreeMap::new();
        for conn in &self.connections {
            let loss = out.entry(conn.topic.clone()).or_default();
            loss.lost += self.damage.lost_messages.get(&conn.id).copied().unwrap_or(0);
            if let Some(cut) = &self.damage.cut_chunk {
                loss.recovered_from_cut_chunk += cut.recovered.get(&conn.id).copied().unwrap_or(0);
            }
        }
        out
    }

    pub fn end_time(&self) -> Option<u64> {
        self.stats.values().filter_map(|s| s.end_time).max()
    }

    /// An MCAP file: walk its records, then read every chunk for channels and counts.
    fn open_mcap(path: PathBuf, bytes: Bytes) -> Bag {
        let scan = mcap_file::scan(bytes.in_memory().unwrap_or_default());
        let mut bag = Bag {
            path,
            format: BagFormat::Mcap,
            bytes,
            connections: Vec::new(),
            chunks: scan.chunks,
            index: if scan.complete {
                IndexState::Indexed
            } else {
                IndexState::Scanned("the MCAP file was not closed (no footer): torn or still being written".into())
            },
            stats: BTreeMap::new(),
            damage: scan.damage,
            source_version: None,
        };
        let mut catalog = scan.catalog;
        let per_chunk: Vec<mcap_file::Catalog> = bag
            .chunks
            .par_iter()
            .map(|chunk| {
                let (plain, _) = decompress_chunk(&bag, chunk);
                let mut found = mcap_file::Catalog::default();
                let mut pos = 0;
                while let Ok(Some((opcode, body, end))) = mcap_file::read_record(&plain, pos) {
                    found.add(opcode, body);
                    pos = end;
                }
                found
            })
            .collect();
        for found in per_chunk {
            catalog.merge(found);
        }
        bag.discover_by_reading_chunks(catalog.connections());
        bag
    }

    /// The records of one decompressed chunk of this bag, in its format.
    pub fn records<'a>(&self, plain: &'a [u8]) -> ChunkRecords<'a> {
        match self.format {
            BagFormat::Ros1 => ChunkRecords::new(plain),
            BagFormat::Mcap | BagFormat::Rosbag2 => ChunkRecords::mcap(plain),
        }
    }

    /// Without an index, connections and counts are only known by reading every chunk: decompress
    /// each one (in parallel) and collect its connection records and message counts.
    fn discover_by_reading_chunks(&mut self, mut connections: Vec<Connection>) {
        let per_chunk: Vec<(Vec<Connection>, BTreeMap<u32, ConnectionStats>, Option<String>)> = self
            .chunks
            .par_iter()
            .map(|chunk| {
                let (plain, mut problem) = decompress_chunk(self, chunk);
                let mut conns = Vec::new();
                let mut stats: BTreeMap<u32, ConnectionStats> = BTreeMap::new();
                let mut records = self.records(&plain);
                for item in records.by_ref() {
                    match item {
                        ChunkItem::Connection(c) => conns.push(c),
                        ChunkItem::Message { conn, time, .. } => {
                            stats.entry(conn).or_default().add(1, Some(time), Some(time))
                        }
                    }
                }
                if problem.is_none() {
                    problem = records.problem.take();
                }
                let problem = problem.map(|p| format!("chunk at byte {}: {p}", chunk.pos));
                drop(records);
                drop(plain);
                self.release_chunk_pages(chunk);
                (conns, stats, problem)
            })
            .collect();
        for (chunk, (conns, stats, problem)) in self.chunks.iter().zip(per_chunk) {
            connections.extend(conns);
            // The index records written after a complete chunk say what it should hold.
            for &(conn, expected) in &chunk.counts {
                let found = stats.get(&conn).map(|s| s.messages).unwrap_or(0);
                if u64::from(expected) > found {
                    *self.damage.lost_messages.entry(conn).or_default() += u64::from(expected) - found;
                }
            }
            if chunk.outside_chunks {
                self.damage.messages_outside_chunks += stats.values().map(|s| s.messages).sum::<u64>();
            }
            if let Some(cut) = self.damage.cut_chunk.as_mut().filter(|c| c.pos == chunk.pos && chunk.truncated) {
                cut.recovered = stats.iter().map(|(id, s)| (*id, s.messages)).collect();
            }
            for (id, s) in stats {
                self.stats.entry(id).or_default().add(s.messages, s.start_time, s.end_time);
            }
            self.damage.problems.extend(problem);
        }
        let mut seen = std::collections::HashSet::new();
        connections.retain(|c| seen.insert(c.id));
        connections.sort_by_key(|c| c.id);
        self.connections = connections;
    }
}


/// Decompresses one chunk of `bag` (in memory); returns the plain bytes and why decompression
/// stopped early. For the scans of opening; readers use [`Bag::read_chunks`].
fn decompress_chunk<'a>(bag: &'a Bag, chunk: &ChunkRef) -> (std::borrow::Cow<'a, [u8]>, Option<String>) {
    chunk::decompress_stored(chunk, bag.chunk_bytes(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bag::writer::{BagWriter, ConnectionSpec};

    /// A bag of 300 messages on two topics in chunks of about 1 KiB.
    fn small_bag(dir: &Path) -> PathBuf {
        let path = dir.join("small.bag");
        let mut writer = BagWriter::create(&path, Compression::Lz4).unwrap();
        writer.set_chunk_threshold(1024);
        let spec = |topic: &str| ConnectionSpec {
            topic: topic.into(),
            msg_type: "std_msgs/UInt64".into(),
            md5sum: "1b2a79973e8bf53d7b53acb71299cb57".into(),
            definition: "uint64 data".into(),
            callerid: None,
            latching: false,
        };
        let (a, b) = (writer.add_connection(spec("/a")), writer.add_connection(spec("/b")));
        for i in 0..300u64 {
            writer.write(if i % 3 == 0 { b } else { a }, 1_000_000_000 + i * 10_000_000, &i.to_le_bytes()).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    #[test]
    fn an_indexed_bag_opens_from_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let bag = Bag::open(small_bag(dir.path())).unwrap();
        assert!(bag.is_indexed());
        assert_eq!(bag.format, BagFormat::Ros1);
        assert_eq!(bag.connections.iter().map(|c| c.topic.as_str()).collect::<Vec<_>>(), vec!["/a", "/b"]);
        assert_eq!(bag.message_count(), 300);
        assert_eq!((bag.start_time(), bag.end_time()), (Some(1_000_000_000), Some(1_000_000_000 + 299 * 10_000_000)));
        assert!(bag.chunks.len() > 3);
        assert!(bag.topic_losses().values().all(|l| l.lost == 0));
    }

    #[test]
    fn a_torn_bag_is_scanned_and_says_what_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(small_bag(dir.path())).unwrap();
        let torn = bytes[..bytes.len() * 2 / 3].to_vec();
        let bag = Bag::from_bytes("torn.bag", torn).unwrap();
        assert!(matches!(bag.index, IndexState::Scanned(_)));
        assert!(bag.message_count() > 0 && bag.message_count() < 300, "{}", bag.message_count());
        assert_eq!(bag.connections.len(), 2, "connections are found inside the chunks");
    }

    #[test]
    fn files_that_are_not_supported_bags_are_named_and_refused() {
        let not_a_bag = Bag::from_bytes("x.txt", b"hello world".to_vec()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(not_a_bag.contains("x.txt") && not_a_bag.contains("not a ROS bag"), "{not_a_bag}");
        let old = Bag::from_bytes("old.bag", b"#ROSBAG V1.2\nrest".to_vec()).err();
        assert!(matches!(old, Some(BagError::UnsupportedVersion { ref version, .. }) if version == "1.2"), "{old:?}");
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Bag::open(dir.path()), Err(BagError::Directory { .. })));
        assert!(matches!(Bag::open(dir.path().join("missing.bag")), Err(BagError::Io { .. })));
    }
}
