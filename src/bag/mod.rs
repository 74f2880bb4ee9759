//! Reading ROS1 bags (format 2.0): validating the file, finding its connections and chunks from
//! the index when it is intact, or by a linear scan that salvages every complete record when it
//! is not (unindexed `.bag.active` files, torn uploads). Nothing in here panics on bad input.

pub mod chunk;
pub mod record;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
pub use chunk::{ChunkItem, ChunkRecords, ChunkRef, Compression};
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

/// What a linear scan could not recover.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScanDamage {
    /// Byte offset where the scan stopped, when it stopped before the end of the file.
    pub stopped_at: Option<u64>,
    pub problems: Vec<String>,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An opened bag: its connections and chunk locations, ready to be read chunk by chunk.
pub struct Bag {
    pub path: PathBuf,
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
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only. A file truncated by another process while we read it
            // can still fault; bags being written should be ingested after they are closed.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            Bytes::Mapped(map)
        };
        Self::from_bytes_inner(path, bytes)
    }

    /// Opens a bag held in memory (tests, fuzzing, objects fetched from a store).
    pub fn from_bytes(name: impl Into<PathBuf>, data: Vec<u8>) -> Result<Bag> {
        Self::from_bytes_inner(name.into(), Bytes::Owned(data))
    }

    fn from_bytes_inner(path: PathBuf, bytes: Bytes) -> Result<Bag> {
        let data = bytes.as_ref();
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
            bytes: Bytes::Owned(Vec::new()),
            connections: Vec::new(),
            chunks: Vec::new(),
            index: IndexState::Indexed,
            stats: BTreeMap::new(),
            damage: ScanDamage::default(),
        };
        match read_index(data, index_pos) {
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
        self.data().len() as u64
    }

    /// The stored (possibly compressed) bytes of one chunk.
    pub fn chunk_bytes(&self, chunk: &ChunkRef) -> &[u8] {
        self.data().get(chunk.data_start..chunk.data_end).unwrap_or(&[])
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

    pub fn end_time(&self) -> Option<u64> {
        self.stats.values().filter_map(|s| s.end_time).max()
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
                let mut records = ChunkRecords::new(&plain);
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
                (conns, stats, problem)
            })
            .collect();
        for (conns, stats, problem) in per_chunk {
            connections.extend(conns);
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
    let (plain, problem) = chunk::decompress(chunk, bag.chunk_bytes(chunk));
    let problem = match (problem, chunk.truncated) {
        (Some(p), _) => Some(p),
        (None, true) => Some("the file ends inside this chunk".to_string()),
        (None, false) => None,
    };
    (plain, problem)
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
fn read_index(data: &[u8], index_pos: u64) -> Result<(Vec<Connection>, Vec<ChunkRef>), String> {
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
    let mut connections = Vec::new();
    let mut infos = Vec::new();
    let mut pos = index_pos;
    loop {
        match read_record(data, pos) {
            ReadOutcome::End => break,
            ReadOutcome::Truncated { .. } => return Err(format!("the index is cut off at byte {pos}")),
            ReadOutcome::Invalid(e) => return Err(format!("bad index record at byte {pos}: {e}")),
            ReadOutcome::Record(rec) => {
                match rec.header.op() {
                    Some(op::CONNECTION) => connections.push(
                        Connection::from_record(&rec.header, rec.data)
                            .map_err(|e| format!("bad connection record at byte {pos}: {e}"))?,
                    ),
                    Some(op::CHUNK_INFO) => infos.push(
                        parse_chunk_info(&rec.header, rec.data)
                            .map_err(|e| format!("bad chunk info at byte {pos}: {e}"))?,
                    ),
                    _ => {}
                }
                pos = rec.end;
            }
        }
    }
    let mut chunks = Vec::with_capacity(infos.len());
    for info in infos {
        let at = usize::try_from(info.chunk_pos).unwrap_or(usize::MAX);
        match read_record(data, at) {
            ReadOutcome::Record(rec) if rec.header.op() == Some(op::CHUNK) => {
                let data_start = rec.end - rec.data.len();
                let mut chunk = ChunkRef::from_record(info.chunk_pos, &rec.header, data_start, rec.end, false)
                    .map_err(|e| format!("chunk at byte {at}: {e}"))?;
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
}

/// Walks the top-level records from `pos` to the end of the file, keeping every chunk (a chunk
/// cut by the end of the file is kept as truncated) and stopping at the first malformed record.
fn scan_records(data: &[u8], mut pos: usize) -> Scan {
    let mut scan = Scan {
        chunks: Vec::new(),
        connections: Vec::new(),
        damage: ScanDamage::default(),
    };
    loop {
        match read_record(data, pos) {
            ReadOutcome::End => break,
            ReadOutcome::Record(rec) => {
                match rec.header.op() {
                    Some(op::CHUNK) => {
                        let data_start = rec.end - rec.data.len();
                        match ChunkRef::from_record(pos as u64, &rec.header, data_start, rec.end, false) {
                            Ok(c) => scan.chunks.push(c),
                            Err(e) => scan.damage.problems.push(format!("chunk at byte {pos}: {e}")),
                        }
                    }
                    Some(op::CONNECTION) => {
                        if let Ok(c) = Connection::from_record(&rec.header, rec.data) {
                            scan.connections.push(c);
                        }
                    }
                    _ => {}
                }
                pos = rec.end;
            }
            ReadOutcome::Truncated {
                header: Some(header),
                data_start,
                ..
            } if header.op() == Some(op::CHUNK) => {
                if let Ok(c) = ChunkRef::from_record(pos as u64, &header, data_start, data.len(), true) {
                    scan.chunks.push(c);
                }
                scan.damage.stopped_at = Some(pos as u64);
                scan.damage
                    .problems
                    .push(format!("the file ends inside the chunk at byte {pos}"));
                break;
            }
            ReadOutcome::Truncated { .. } => {
                scan.damage.stopped_at = Some(pos as u64);
                scan.damage.problems.push(format!("the file ends inside a record at byte {pos}"));
                break;
            }
            ReadOutcome::Invalid(e) => {
                scan.damage.stopped_at = Some(pos as u64);
                scan.damage.problems.push(format!("unreadable record at byte {pos}: {e}"));
                break;
            }
        }
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
