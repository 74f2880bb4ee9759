//! Reading ROS1 bags (format 2.0): validating the file, finding its connections and chunks from
//! the index when it is intact, or by a linear scan that salvages every complete record when it
//! is not (unindexed `.bag.active` files, torn uploads). Nothing in here panics on bad input.

pub mod chunk;
mod lz4_frame;
pub mod mcap_file;
pub mod ranged;
pub mod record;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
pub use chunk::{recycle_chunk_buffer, ChunkItem, ChunkRecords, ChunkRef, Compression};
use record::{op, read_record, Fields, ReadOutcome};

/// The first line of every supported bag.
pub const MAGIC_V2: &[u8] = b"#ROSBAG V2.0\n";

/// A connection: one publisher of one topic, with the message definition it recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Connection {
    pub id: u32,
    pub topic: String,
    pub msg_type: String,
    pub md5sum: String,
    pub definition: String,
    pub callerid: Option<String>,
    pub latching: bool,
    /// How its messages are serialized (always ROS1 in a ROS1 bag).
    pub encoding: mcap_file::Encoding,
}

impl Connection {
    /// Parses a connection record (header holds `conn` and `topic`, data holds the rest).
    pub fn from_record(header: &Fields<'_>, data: &[u8]) -> Result<Self, String> {
        let id = header.u32("conn")?;
        let inner = Fields::parse(data)?;
        let topic = inner
            .optional_string("topic")
            .or_else(|| header.optional_string("topic"))
            .ok_or("connection without a topic")?;
        Ok(Connection {
            id,
            topic,
            msg_type: inner.string("type")?,
            md5sum: inner.optional_string("md5sum").unwrap_or_default(),
            definition: inner.optional_string("message_definition").unwrap_or_default(),
            callerid: inner.optional_string("callerid"),
            latching: inner.get("latching").is_some_and(|v| v == b"1"),
            encoding: mcap_file::Encoding::Ros1,
        })
    }
}

/// How the bag's chunk list was obtained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum IndexState {
    /// The index at `index_pos` was complete and consistent.
    Indexed,
    /// No usable index; chunks were found by a linear scan. The reason says why.
    Scanned(String),
}

/// Per-connection message counts and time range.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnectionStats {
    pub messages: u64,
    pub start_time: Option<u64>,
    pub end_time: Option<u64>,
}

impl ConnectionStats {
    fn add(&mut self, count: u64, start: Option<u64>, end: Option<u64>) {
        self.messages += count;
        self.start_time = min_opt(self.start_time, start);
        self.end_time = max_opt(self.end_time, end);
    }
}

/// What a linear scan found damaged, and what it could and could not recover.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScanDamage {
    /// Byte offset where the scan stopped, when it stopped before the end of the file.
    pub stopped_at: Option<u64>,
    pub problems: Vec<String>,
    /// Messages known to be lost, per connection id: listed by a chunk's index records (or seen
    /// as a record header cut by the end of the file) but not readable.
    pub lost_messages: BTreeMap<u32, u64>,
    /// The chunk cut by the end of the file, if any. Its index records were never written, so
    /// how many messages its missing bytes held is unknown.
    pub cut_chunk: Option<CutChunk>,
    /// Messages found in records outside any chunk: a chunk the recorder left open when it stopped
    /// (its header still says size 0), recovered record by record.
    pub messages_outside_chunks: u64,
}

/// Damage seen by one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TopicLoss {
    /// Messages known to be lost.
    pub lost: u64,
    /// Messages recovered from the chunk cut by the end of the file (more may have been in its
    /// missing bytes).
    pub recovered_from_cut_chunk: u64,
}

/// How much of the chunk cut by the end of the file is left.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CutChunk {
    /// File offset of the chunk record.
    pub pos: u64,
    /// Bytes of chunk data the chunk header declares, and how many of them the file holds.
    pub declared_bytes: u64,
    pub present_bytes: u64,
    /// Complete messages recovered from what is left of it, per connection id.
    pub recovered: BTreeMap<u32, u64>,
}

enum Bytes {
    /// A memory-mapped file, and the same bytes as an Arrow buffer that keeps the map alive, so
    /// columns can point into the file instead of copying large values (see [`Bag::share`]).
    Mapped { map: Arc<memmap2::Mmap>, shared: arrow::buffer::Buffer },
    Owned(arrow::buffer::Buffer),
    /// Read by byte ranges (an object in S3): only the index is held; chunks are fetched as
    /// they are read.
    Ranged(std::sync::Arc<dyn ranged::RangeReader>),
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Bytes::Mapped { shared, .. } | Bytes::Owned(shared) => shared.as_slice(),
            Bytes::Ranged(_) => &[],
        }
    }
}

/// The container format of a bag file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BagFormat {
    /// ROS1 bag, format V2.0.
    Ros1,
    /// MCAP (ROS 2 bags, or ROS1 messages in MCAP).
    Mcap,
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
}

impl Bag {
    /// Opens a bag file (memory-mapped) and reads its index, or scans it when the index is unusable.
    pub fn open(path: impl AsRef<Path>) -> Result<Bag> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            return Err(Error::NotABag { path });
        }
        let bytes = if meta.len() == 0 {
            Bytes::Owned(arrow::buffer::Buffer::from_vec(Vec::<u8>::new()))
        } else {
            // SAFETY: the map is read-only. A file truncated by another process while we read it
            // can still fault; bags being written should be ingested after they are closed.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            mapped_bytes(map)
        };
        let bag = Self::from_bytes_inner(path, bytes)?;
        // Opening touched a page of every chunk (the index is checked against each chunk
        // header); on a multi-GB bag that is hundreds of MB of resident pages. Drop them all.
        bag.release_pages(0, bag.data().len());
        Ok(bag)
    }

    /// Opens a bag held in memory (tests, fuzzing, objects fetched from a store).
    pub fn from_bytes(name: impl Into<PathBuf>, data: Vec<u8>) -> Result<Bag> {
        Self::from_bytes_inner(name.into(), Bytes::Owned(arrow::buffer::Buffer::from_vec(data)))
    }

    fn from_bytes_inner(path: PathBuf, bytes: Bytes) -> Result<Bag> {
        let data = bytes.as_ref();
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
            return Err(Error::EncryptedBag {
                path,
                encryptor: String::from_utf8_lossy(enc).into_owned(),
            });
        }
        let index_pos = header.u64("index_pos").unwrap_or(0);
        let mut bag = Bag {
            path,
            format: BagFormat::Ros1,
            bytes: Bytes::Owned(arrow::buffer::Buffer::from_vec(Vec::<u8>::new())),
            connections: Vec::new(),
            chunks: Vec::new(),
            index: IndexState::Indexed,
            stats: BTreeMap::new(),
            damage: ScanDamage::default(),
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

    /// The whole file's bytes.
    pub fn data(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    pub fn file_size(&self) -> u64 {
        match &self.bytes {
            Bytes::Ranged(reader) => reader.len(),
            _ => self.data().len() as u64,
        }
    }

    /// `bytes` (a slice of this bag's file) as an Arrow buffer sharing the file's memory, so that
    /// columns can refer to values in place. `None` for bags read by ranges, or when `bytes`
    /// does not lie in the file (a decompressed chunk).
    pub fn share(&self, bytes: &[u8]) -> Option<arrow::buffer::Buffer> {
        let (Bytes::Mapped { shared, .. } | Bytes::Owned(shared)) = &self.bytes else {
            return None;
        };
        let offset = offset_within(shared, bytes)?;
        Some(shared.slice_with_length(offset, bytes.len()))
    }

    /// Drops the pages under `buffer` from resident memory if it is a slice of this bag's map
    /// (from [`Bag::share`]), as [`Bag::release_chunk_pages`] does for a chunk. Call it once the
    /// values pointing there have been written out.
    pub fn release_shared(&self, buffer: &arrow::buffer::Buffer) {
        if let Bytes::Mapped { shared, .. } = &self.bytes {
            if let Some(start) = offset_within(shared, buffer) {
                self.release_pages(start, start + buffer.len());
            }
        }
    }

    /// The stored (possibly compressed) bytes of one chunk.
    pub fn chunk_bytes(&self, chunk: &ChunkRef) -> &[u8] {
        self.data().get(chunk.data_start..chunk.data_end).unwrap_or(&[])
    }

    /// Drops the pages of a chunk that has been read from this process's resident memory. They
    /// stay in the OS page cache; without this, every page of a multi-GB memory-mapped bag would
    /// count as resident once read. Does nothing for bags held in memory.
    pub fn release_chunk_pages(&self, chunk: &ChunkRef) {
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
        let scan = mcap_file::scan(bytes.as_ref());
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
            BagFormat::Mcap => ChunkRecords::mcap(plain),
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

/// Decompresses one chunk of `bag`; returns the plain bytes and why decompression stopped early.
pub fn decompress_chunk<'a>(bag: &'a Bag, chunk: &ChunkRef) -> (std::borrow::Cow<'a, [u8]>, Option<String>) {
    decompress_stored(chunk, bag.chunk_bytes(chunk))
}

/// Decompresses a chunk loaded by [`Bag::read_chunks`].
pub fn decompress_loaded<'a>(loaded: &'a ranged::LoadedChunk<'_>) -> (std::borrow::Cow<'a, [u8]>, Option<String>) {
    decompress_stored(&loaded.chunk, &loaded.stored)
}

fn decompress_stored<'a>(chunk: &ChunkRef, stored: &'a [u8]) -> (std::borrow::Cow<'a, [u8]>, Option<String>) {
    let (plain, problem) = chunk::decompress(chunk, stored);
    let problem = match (problem, chunk.truncated) {
        (Some(p), _) => Some(p),
        (None, true) => Some("the file ends inside this chunk".to_string()),
        (None, false) => None,
    };
    (plain, problem)
}

/// Granularity of the kernel's fault-around: reading one page of a file mapping can map up to
/// this many bytes around it.
const FAULT_AROUND_BYTES: usize = 64 * 1024;

/// Drops the pages of `start..end` of a mapped bag from resident memory, widened to the
/// fault-around windows that contain them. They stay in the OS page cache. Does nothing for
/// bags held in memory or read by ranges.
fn release_mapped(bytes: &Bytes, start: usize, end: usize) {
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
/// other cores' TLBs, and one call per chunk header made opening the 30-min benchmark drive
/// (113 chunks) take 3–4 ms longer.
struct BatchedRelease<'a> {
    bytes: &'a Bytes,
    /// The span of the ranges gathered so far, and their number.
    pending: Option<(usize, usize)>,
    count: usize,
}

impl<'a> BatchedRelease<'a> {
    /// At most this many ranges (of up to 64 KiB resident each) are held before they are dropped.
    const RANGES: usize = 64;

    fn new(bytes: &'a Bytes) -> Self {
        BatchedRelease { bytes, pending: None, count: 0 }
    }

    fn add(&mut self, start: usize, end: usize) {
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

/// Where `part` starts inside `container`, if it lies wholly inside it (compared by address).
pub(crate) fn offset_within(container: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(container.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= container.len()).then_some(start)
}

/// A mapped file, with an Arrow buffer over its bytes that owns (a reference to) the map.
fn mapped_bytes(map: memmap2::Mmap) -> Bytes {
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

fn check_magic(path: &Path, data: &[u8]) -> Result<()> {
    if data.starts_with(MAGIC_V2) {
        return Ok(());
    }
    if data.starts_with(b"#ROSBAG V") {
        let line_end = data.iter().take(32).position(|&b| b == b'\n').unwrap_or(12.min(data.len()));
        let version = String::from_utf8_lossy(&data[9..line_end.max(9)]).trim().to_string();
        return Err(Error::UnsupportedBagVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    Err(Error::NotABag {
        path: path.to_path_buf(),
    })
}

fn corrupt(path: &Path, offset: usize, problem: &str) -> Error {
    Error::CorruptBag {
        path: path.to_path_buf(),
        offset: offset as u64,
        problem: problem.to_string(),
    }
}

/// Reads the index section (connections and chunk infos) and checks that every chunk it points
/// at is a complete chunk record. Any inconsistency is returned as the reason to scan instead.
/// `checked(start, end)` is called with the file range of each chunk header once it has been
/// read, so the caller can drop those pages from a memory map at once.
fn read_index(data: &[u8], index_pos: u64, mut checked: impl FnMut(usize, usize)) -> Result<(Vec<Connection>, Vec<ChunkRef>), String> {
    if index_pos == 0 {
        return Err("the bag has no index (index_pos is 0: still recording or never closed)".into());
    }
    let index_pos = usize::try_from(index_pos).map_err(|_| "index_pos does not fit in memory".to_string())?;
    if index_pos > data.len() {
        return Err(format!(
            "index_pos {index_pos} is past the end of the file ({} bytes): the file is truncated",
            data.len()
        ));
    }
    let (mut connections, infos) = read_index_records(data, index_pos, 0)?;
    let mut chunks = Vec::with_capacity(infos.len());
    for info in infos {
        let at = usize::try_from(info.chunk_pos).unwrap_or(usize::MAX);
        match read_record(data, at) {
            ReadOutcome::Record(rec) if rec.header.op() == Some(op::CHUNK) => {
                let data_start = rec.end - rec.data.len();
                let chunk = ChunkRef::from_record(info.chunk_pos, &rec.header, data_start, rec.end, false);
                // Released only after the header's fields were parsed (which reads them again).
                checked(at, data_start);
                let mut chunk = chunk.map_err(|e| format!("chunk at byte {at}: {e}"))?;
                chunk.start_time = Some(info.start_time);
                chunk.end_time = Some(info.end_time);
                chunk.counts = info.counts;
                chunks.push(chunk);
            }
            _ => return Err(format!("chunk info points at byte {at}, which is not a complete chunk")),
        }
    }
    chunks.sort_by_key(|c| c.pos);
    connections.sort_by_key(|c| c.id);
    connections.dedup_by_key(|c| c.id);
    Ok((connections, chunks))
}

/// Reads the connection and chunk info records from `pos` to the end of `data`. `base` is the
/// file offset of `data[0]` (non-zero when only the index section was fetched), used in messages.
fn read_index_records(data: &[u8], mut pos: usize, base: u64) -> Result<(Vec<Connection>, Vec<ChunkInfo>), String> {
    let mut connections = Vec::new();
    let mut infos = Vec::new();
    loop {
        let at = base + pos as u64;
        match read_record(data, pos) {
            ReadOutcome::End => break,
            ReadOutcome::Truncated { .. } => return Err(format!("the index is cut off at byte {at}")),
            ReadOutcome::Invalid(e) => return Err(format!("bad index record at byte {at}: {e}")),
            ReadOutcome::Record(rec) => {
                match rec.header.op() {
                    Some(op::CONNECTION) => connections.push(
                        Connection::from_record(&rec.header, rec.data)
                            .map_err(|e| format!("bad connection record at byte {at}: {e}"))?,
                    ),
                    Some(op::CHUNK_INFO) => infos.push(
                        parse_chunk_info(&rec.header, rec.data)
                            .map_err(|e| format!("bad chunk info at byte {at}: {e}"))?,
                    ),
                    _ => {}
                }
                pos = rec.end;
            }
        }
    }
    Ok((connections, infos))
}

struct ChunkInfo {
    chunk_pos: u64,
    start_time: u64,
    end_time: u64,
    counts: Vec<(u32, u32)>,
}

fn parse_chunk_info(header: &Fields<'_>, data: &[u8]) -> Result<ChunkInfo, String> {
    let count = header.u32("count")? as usize;
    if data.len() < count.saturating_mul(8) {
        return Err(format!("{count} connection counts do not fit in {} bytes", data.len()));
    }
    let counts = data
        .chunks_exact(8)
        .take(count)
        .map(|c| {
            (
                u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    Ok(ChunkInfo {
        chunk_pos: header.u64("chunk_pos")?,
        start_time: header.time("start_time")?,
        end_time: header.time("end_time")?,
        counts,
    })
}

fn stats_from_index(chunks: &[ChunkRef]) -> BTreeMap<u32, ConnectionStats> {
    let mut stats: BTreeMap<u32, ConnectionStats> = BTreeMap::new();
    for chunk in chunks {
        for &(conn, count) in &chunk.counts {
            stats.entry(conn).or_default().add(count as u64, chunk.start_time, chunk.end_time);
        }
    }
    stats
}

struct Scan {
    chunks: Vec<ChunkRef>,
    connections: Vec<Connection>,
    damage: ScanDamage,
    /// File range of the message/connection records seen outside any chunk, not yet closed.
    loose: Option<(usize, usize)>,
}

impl Scan {
    /// Ends a run of records found outside any chunk, keeping it as an uncompressed pseudo-chunk.
    fn close_loose_run(&mut self) {
        if let Some((start, end)) = self.loose.take() {
            self.chunks.push(ChunkRef::outside_chunks(start, end));
        }
    }

    fn extend_loose_run(&mut self, start: usize, end: usize) {
        let run = self.loose.get_or_insert((start, end));
        run.1 = end;
    }
}

/// Walks the top-level records from `pos` to the end of the file, keeping every chunk (a chunk
/// cut by the end of the file is kept as truncated), the index records that follow each chunk
/// (they give its expected message counts), and message records found outside any chunk (a
/// chunk left open by a recorder that was killed). Stops at the first malformed record.
fn scan_records(data: &[u8], mut pos: usize) -> Scan {
    let mut scan = Scan {
        chunks: Vec::new(),
        connections: Vec::new(),
        damage: ScanDamage::default(),
        loose: None,
    };
    // Index records belong to the chunk just before them.
    let mut last_chunk: Option<usize> = None;
    loop {
        match read_record(data, pos) {
            ReadOutcome::End => break,
            ReadOutcome::Record(rec) => {
                match rec.header.op() {
                    Some(op::CHUNK) => {
                        scan.close_loose_run();
                        let data_start = rec.end - rec.data.len();
                        match ChunkRef::from_record(pos as u64, &rec.header, data_start, rec.end, false) {
                            Ok(c) => {
                                scan.chunks.push(c);
                                last_chunk = Some(scan.chunks.len() - 1);
                            }
                            Err(e) => scan.damage.problems.push(format!("chunk at byte {pos}: {e}")),
                        }
                    }
                    Some(op::INDEX_DATA) => {
                        scan.close_loose_run();
                        if let (Some(i), Ok(conn), Ok(count)) = (last_chunk, rec.header.u32("conn"), rec.header.u32("count")) {
                            scan.chunks[i].counts.push((conn, count));
                        }
                    }
                    Some(op::MESSAGE_DATA) => {
                        scan.extend_loose_run(pos, rec.end);
                        last_chunk = None;
                    }
                    Some(op::CONNECTION) => {
                        if scan.loose.is_some() {
                            scan.extend_loose_run(pos, rec.end);
                        }
                        if let Ok(c) = Connection::from_record(&rec.header, rec.data) {
                            scan.connections.push(c);
                        }
                    }
                    _ => {
                        scan.close_loose_run();
                        last_chunk = None;
                    }
                }
                pos = rec.end;
            }
            ReadOutcome::Truncated {
                header: Some(header),
                data_start,
                declared_data_len,
            } => {
                scan.close_loose_run();
                scan.damage.stopped_at = Some(pos as u64);
                match header.op() {
                    Some(op::CHUNK) => {
                        if let Ok(c) = ChunkRef::from_record(pos as u64, &header, data_start, data.len(), true) {
                            scan.chunks.push(c);
                            scan.damage.cut_chunk = Some(CutChunk {
                                pos: pos as u64,
                                declared_bytes: declared_data_len as u64,
                                present_bytes: (data.len() - data_start) as u64,
                                recovered: BTreeMap::new(),
                            });
                        }
                        // Reading the chunk reports "the file ends inside this chunk".
                    }
                    Some(op::MESSAGE_DATA) => {
                        if let Ok(conn) = header.u32("conn") {
                            *scan.damage.lost_messages.entry(conn).or_default() += 1;
                        }
                        scan.damage.problems.push(format!("the file ends inside a message record at byte {pos}"));
                    }
                    _ => scan.damage.problems.push(format!("the file ends inside a record at byte {pos}")),
                }
                break;
            }
            ReadOutcome::Truncated { header: None, .. } => {
                scan.close_loose_run();
                scan.damage.stopped_at = Some(pos as u64);
                scan.damage.problems.push(format!("the file ends inside a record at byte {pos}"));
                break;
            }
            ReadOutcome::Invalid(e) => {
                scan.close_loose_run();
                scan.damage.stopped_at = Some(pos as u64);
                scan.damage.problems.push(format!("unreadable record at byte {pos}: {e}"));
                break;
            }
        }
    }
    scan.close_loose_run();
    if let Some(open) = scan.chunks.iter().find(|c| c.outside_chunks) {
        scan.damage.problems.push(format!(
            "message records outside any chunk from byte {} (a chunk left open by a recorder that stopped) were read one by one",
            open.pos
        ));
    }
    scan
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
