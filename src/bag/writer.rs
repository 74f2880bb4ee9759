//! Writing ROS1 bags (format 2.0) with none, bz2 or lz4 chunks and a full index, laid out the
//! way `rosbag record` lays them out: padded bag header, chunks each followed by their index data
//! records, then connection and chunk info records at `index_pos`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{op, push_field, push_record, time_to_bytes};
use super::{Compression, MAGIC_V2};
use super::error::{BagError, Result};

/// Size of the bag header record including its padding, as written by ROS.
const BAG_HEADER_LEN: usize = 4096;

/// What a writer needs to know about a connection.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    pub topic: String,
    pub msg_type: String,
    pub md5sum: String,
    pub definition: String,
    pub callerid: Option<String>,
    pub latching: bool,
}

impl From<&super::Connection> for ConnectionSpec {
    fn from(c: &super::Connection) -> Self {
        ConnectionSpec {
            topic: c.topic.clone(),
            msg_type: c.msg_type.clone(),
            md5sum: c.md5sum.clone(),
            definition: c.definition.clone(),
            callerid: c.callerid.clone(),
            latching: c.latching,
        }
    }
}

struct OpenChunk {
    records: Vec<u8>,
    start_time: u64,
    end_time: u64,
    /// Per connection: (time, offset inside the chunk) of each message.
    index: BTreeMap<u32, Vec<(u64, u32)>>,
}

struct WrittenChunk {
    pos: u64,
    start_time: u64,
    end_time: u64,
    counts: Vec<(u32, u32)>,
}

/// Streams messages into a new bag file.
pub struct BagWriter {
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    compression: Compression,
    chunk_threshold: usize,
    connections: Vec<(u32, ConnectionSpec)>,
    chunk: Option<OpenChunk>,
    written: Vec<WrittenChunk>,
}

impl BagWriter {
    /// Creates (or replaces) `path`.
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| BagError::io(&path, e))?;
        let mut writer = BagWriter {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            compression,
            chunk_threshold: 768 * 1024,
            connections: Vec::new(),
            chunk: None,
            written: Vec::new(),
        };
        writer.write_bytes(MAGIC_V2)?;
        let header = bag_header_record(0, 0, 0);
        writer.write_bytes(&header)?;
        Ok(writer)
    }

    /// Uncompressed chunk size after which a chunk is closed (default 768 KiB, as `rosbag record`).
    pub fn set_chunk_threshold(&mut self, bytes: usize) {
        self.chunk_threshold = bytes.max(1);
    }

    /// Registers a connection and returns its id. Its record goes into the current chunk.
    pub fn add_connection(&mut self, spec: ConnectionSpec) -> u32 {
        let id = self.connections.len() as u32;
        let record = connection_record(id, &spec);
        self.connections.push((id, spec));
        self.open_chunk().records.extend_from_slice(&record);
        id
    }

    /// Appends one serialized message.
    pub fn write(&mut self, conn: u32, time_ns: u64, payload: &[u8]) -> Result<()> {
        if conn as usize >= self.connections.len() {
            return Err(BagError::UnknownConnection { path: self.path.clone(), conn });
        }
        let chunk = self.open_chunk();
        let offset = chunk.records.len() as u32;
        let mut header = Vec::with_capacity(40);
        push_field(&mut header, "op", &[op::MESSAGE_DATA]);
        push_field(&mut header, "conn", &conn.to_le_bytes());
        push_field(&mut header, "time", &time_to_bytes(time_ns));
        push_record(&mut chunk.records, &header, payload);
        chunk.start_time = chunk.start_time.min(time_ns);
        chunk.end_time = chunk.end_time.max(time_ns);
        chunk.index.entry(conn).or_default().push((time_ns, offset));
        if chunk.records.len() >= self.chunk_threshold {
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Writes the last chunk and the index, then patches the bag header.
    pub fn finish(mut self) -> Result<()> {
        self.flush_chunk()?;
        let index_pos = self.pos;
        let mut index = Vec::new();
        for (id, spec) in &self.connections {
            index.extend_from_slice(&connection_record(*id, spec));
        }
        for chunk in &self.written {
            index.extend_from_slice(&chunk_info_record(chunk));
        }
        self.write_bytes(&index)?;
        let header = bag_header_record(index_pos, self.connections.len() as u32, self.written.len() as u32);
        let path = self.path.clone();
        let io = |e| BagError::io(&path, e);
        self.out.seek(SeekFrom::Start(MAGIC_V2.len() as u64)).map_err(io)?;
        self.out.write_all(&header).map_err(io)?;
        self.out.flush().map_err(io)?;
        Ok(())
    }

    fn open_chunk(&mut self) -> &mut OpenChunk {
        self.chunk.get_or_insert_with(|| OpenChunk {
            records: Vec::with_capacity(1 << 20),
            start_time: u64::MAX,
            end_time: 0,
            index: BTreeMap::new(),
        })
    }

    fn flush_chunk(&mut self) -> Result<()> {
        let Some(chunk) = self.chunk.take() else {
            return Ok(());
        };
        if chunk.index.is_empty() && chunk.records.is_empty() {
            return Ok(());
        }
        let stored = compress(self.compression, &chunk.records).map_err(|e| BagError::io(&self.path, e))?;
        let mut header = Vec::new();
        push_field(&mut header, "op", &[op::CHUNK]);
        push_field(&mut header, "compression", self.compression.name().as_bytes());
        push_field(&mut header, "size", &(chunk.records.len() as u32).to_le_bytes());
        let mut bytes = Vec::with_capacity(stored.len() + 64);
        push_record(&mut bytes, &header, &stored);
        let pos = self.pos;
        for (conn, entries) in &chunk.index {
            bytes.extend_from_slice(&index_data_record(*conn, entries));
        }
        self.write_bytes(&bytes)?;
        let (start_time, end_time) = if chunk.index.is_empty() {
            (0, 0)
        } else {
            (chunk.start_time, chunk.end_time)
        };
        self.written.push(WrittenChunk {
            pos,
            start_time,
            end_time,
            counts: chunk.index.iter().map(|(c, e)| (*c, e.len() as u32)).collect(),
        });
        Ok(())
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| BagError::io(&self.path, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Compresses chunk records the way ROS does (bz2 stream, LZ4 frame).
pub fn compress(compression: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(data.to_vec()),
        Compression::Bz2 => {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            enc.write_all(data)?;
            enc.finish()
        }
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data)?;
            enc.finish().map_err(std::io::Error::other)
        }
        Compression::Zstd => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "ROS1 bags have no zstd chunks (use none, bz2 or lz4)",
        )),
    }
}

fn bag_header_record(index_pos: u64, conn_count: u32, chunk_count: u32) -> Vec<u8> {
    let mut header = Vec::new();
    push_field(&mut header, "op", &[op::BAG_HEADER]);
    push_field(&mut header, "index_pos", &index_pos.to_le_bytes());
    push_field(&mut header, "conn_count", &conn_count.to_le_bytes());
    push_field(&mut header, "chunk_count", &chunk_count.to_le_bytes());
    let padding = BAG_HEADER_LEN - 8 - header.len();
    let mut record = Vec::with_capacity(BAG_HEADER_LEN);
    push_record(&mut record, &header, &vec![b' '; padding]);
    record
}

fn connection_record(id: u32, spec: &ConnectionSpec) -> Vec<u8> {
    let mut header = Vec::new();
    push_field(&mut header, "op", &[op::CONNECTION]);
    push_field(&mut header, "conn", &id.to_le_bytes());
    push_field(&mut header, "topic", spec.topic.as_bytes());
    let mut data = Vec::new();
    push_field(&mut data, "topic", spec.topic.as_bytes());
    push_field(&mut data, "type", spec.msg_type.as_bytes());
    push_field(&mut data, "md5sum", spec.md5sum.as_bytes());
    push_field(&mut data, "message_definition", spec.definition.as_bytes());
    if let Some(callerid) = &spec.callerid {
        push_field(&mut data, "callerid", callerid.as_bytes());
    }
    if spec.latching {
        push_field(&mut data, "latching", b"1");
    }
    let mut record = Vec::new();
    push_record(&mut record, &header, &data);
    record
}

fn index_data_record(conn: u32, entries: &[(u64, u32)]) -> Vec<u8> {
    let mut header = Vec::new();
    push_field(&mut header, "op", &[op::INDEX_DATA]);
    push_field(&mut header, "ver", &1u32.to_le_bytes());
    push_field(&mut header, "conn", &conn.to_le_bytes());
    push_field(&mut header, "count", &(entries.len() as u32).to_le_bytes());
    let mut data = Vec::with_capacity(entries.len() * 12);
    for (time, offset) in entries {
        data.extend_from_slice(&time_to_bytes(*time));
        data.extend_from_slice(&offset.to_le_bytes());
    }
    let mut record = Vec::new();
    push_record(&mut record, &header, &data);
    record
}

fn chunk_info_record(chunk: &WrittenChunk) -> Vec<u8> {
    let mut header = Vec::new();
    push_field(&mut header, "op", &[op::CHUNK_INFO]);
    push_field(&mut header, "ver", &1u32.to_le_bytes());
    push_field(&mut header, "chunk_pos", &chunk.pos.to_le_bytes());
    push_field(&mut header, "start_time", &time_to_bytes(chunk.start_time));
    push_field(&mut header, "end_time", &time_to_bytes(chunk.end_time));
    push_field(&mut header, "count", &(chunk.counts.len() as u32).to_le_bytes());
    let mut data = Vec::with_capacity(chunk.counts.len() * 8);
    for (conn, count) in &chunk.counts {
        data.extend_from_slice(&conn.to_le_bytes());
        data.extend_from_slice(&count.to_le_bytes());
    }
    let mut record = Vec::new();
    push_record(&mut record, &header, &data);
    record
}
