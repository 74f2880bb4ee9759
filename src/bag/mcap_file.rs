//! MCAP files (the ROS 2 default bag format, and ROS1-profile MCAP) read into the same model as a
//! ROS1 bag: connections (an MCAP channel with its schema), chunks that are decompressed and
//! decoded independently, per-connection counts and damage. The file is walked record by record
//! from the start (summary sections are optional and absent from torn files); record contents
//! are parsed with the `mcap` crate, chunk data is decompressed by [`super::chunk::decompress`].

use std::collections::BTreeMap;

use ::mcap::records::Record;

use super::chunk::{ChunkItem, ChunkRef, Compression};
use super::connection::{Connection, Encoding};
use super::summary::{CutChunk, ScanDamage};

/// The first bytes of every MCAP file.
pub const MAGIC: &[u8] = b"\x89MCAP0\r\n";

/// MCAP record opcodes we look at.
pub mod op {
    pub const FOOTER: u8 = 0x02;
    pub const SCHEMA: u8 = 0x03;
    pub const CHANNEL: u8 = 0x04;
    pub const MESSAGE: u8 = 0x05;
    pub const CHUNK: u8 = 0x06;
    pub const DATA_END: u8 = 0x0F;
}


/// Reads the record at `pos` of `buf`: `(opcode, body, end)`, `None` at the end of the buffer,
/// an error when the record is cut off.
pub fn read_record(buf: &[u8], pos: usize) -> Result<Option<(u8, &[u8], usize)>, String> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let header = buf.get(pos..pos + 9).ok_or("record header cut off")?;
    let opcode = header[0];
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&header[1..9]);
    let len = u64::from_le_bytes(len_bytes);
    let start = pos + 9;
    let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).filter(|&e| e <= buf.len());
    match end {
        Some(end) => Ok(Some((opcode, &buf[start..end], end))),
        None => Err(format!("record (opcode {opcode:#04x}, {len} bytes) cut off by the end of the data")),
    }
}

/// The message in a Message record body: channel id, sequence, log time, publish time, data.
pub fn message(body: &[u8]) -> Option<ChunkItem<'_>> {
    let channel = u16::from_le_bytes(body.get(0..2)?.try_into().ok()?);
    let log_time = u64::from_le_bytes(body.get(6..14)?.try_into().ok()?);
    Some(ChunkItem::Message {
        conn: u32::from(channel),
        time: log_time,
        data: body.get(22..)?,
    })
}

/// A schema as stored in the file.
#[derive(Debug, Clone)]
pub struct Schema {
    pub name: String,
    pub encoding: String,
    pub data: Vec<u8>,
}

/// A channel as stored in the file.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: u16,
    pub schema_id: u16,
    pub topic: String,
    pub message_encoding: String,
    pub metadata: BTreeMap<String, String>,
}

/// Whether every length-prefixed field of a Schema or Channel record body fits in the body.
fn lengths_fit(opcode: u8, body: &[u8]) -> bool {
    let mut rest = body;
    let skip = |n: usize, rest: &mut &[u8]| -> bool {
        match rest.get(n..) {
            Some(tail) => {
                *rest = tail;
                true
            }
            None => false,
        }
    };
    let prefixed = |rest: &mut &[u8]| -> Option<usize> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        *rest = &rest[4..];
        (len <= rest.len()).then_some(len)
    };
    let string = |rest: &mut &[u8]| -> bool { prefixed(rest).is_some_and(|n| skip(n, rest)) };
    match opcode {
        // id u16, name, encoding, data (u32-prefixed bytes)
        op::SCHEMA => skip(2, &mut rest) && string(&mut rest) && string(&mut rest) && string(&mut rest),
        // id u16, schema id u16, topic, message encoding, metadata map (u32 byte length, then
        // key/value strings)
        op::CHANNEL => {
            if !(skip(4, &mut rest) && string(&mut rest) && string(&mut rest)) {
                return false;
            }
            let Some(map_len) = prefixed(&mut rest) else { return false };
            let mut map = &rest[..map_len];
            while !map.is_empty() {
                if !(string(&mut map) && string(&mut map)) {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

/// Schemas and channels found so far.
#[derive(Debug, Default)]
pub struct Catalog {
    pub schemas: BTreeMap<u16, Schema>,
    pub channels: BTreeMap<u16, Channel>,
}

impl Catalog {
    /// Records a Schema or Channel record body; other records are ignored.
    pub fn add(&mut self, opcode: u8, body: &[u8]) {
        if opcode != op::SCHEMA && opcode != op::CHANNEL {
            return;
        }
        // The `mcap` parser reserves each string's declared length before reading it: a
        // damaged length of 4 GB would allocate 4 GB (found by fuzzing). Check them first.
        if !lengths_fit(opcode, body) {
            return;
        }
        match ::mcap::read::parse_record(opcode, body) {
            Ok(Record::Schema { header, data }) => {
                self.schemas.entry(header.id).or_insert(Schema {
                    name: header.name,
                    encoding: header.encoding,
                    data: data.into_owned(),
                });
            }
            Ok(Record::Channel(c)) => {
                self.channels.entry(c.id).or_insert(Channel {
                    id: c.id,
                    schema_id: c.schema_id,
                    topic: c.topic,
                    message_encoding: c.message_encoding,
                    metadata: c.metadata.into_iter().collect(),
                });
            }
            _ => {}
        }
    }

    pub fn merge(&mut self, other: Catalog) {
        for (id, s) in other.schemas {
            self.schemas.entry(id).or_insert(s);
        }
        for (id, c) in other.channels {
            self.channels.entry(id).or_insert(c);
        }
    }

    /// Connections in the ROS1 bag model, one per channel.
    pub fn connections(&self) -> Vec<Connection> {
        self.channels
            .values()
            .map(|c| {
                let schema = self.schemas.get(&c.schema_id);
                let schema_encoding = schema.map(|s| s.encoding.as_str()).unwrap_or("");
                let encoding = match (c.message_encoding.as_str(), schema_encoding) {
                    ("ros1", "ros1msg") => Encoding::Ros1,
                    ("cdr", "ros2msg") => Encoding::Ros2Cdr,
                    ("cdr", "ros2idl") => Encoding::Ros2Idl,
                    (m, "") => Encoding::Unsupported(format!("'{m}' messages without a schema")),
                    (m, s) => Encoding::Unsupported(format!("'{m}' messages with '{s}' schemas")),
                };
                Connection {
                    id: u32::from(c.id),
                    topic: c.topic.clone(),
                    msg_type: schema.map(|s| s.name.clone()).unwrap_or_default(),
                    md5sum: c.metadata.get("md5sum").cloned().unwrap_or_default(),
                    definition: schema.map(|s| String::from_utf8_lossy(&s.data).into_owned()).unwrap_or_default(),
                    callerid: c.metadata.get("callerid").cloned(),
                    latching: c.metadata.get("latching").is_some_and(|v| v == "1"),
                    encoding,
                }
            })
            .collect()
    }
}

/// What a walk over the top-level records found.
pub struct Scan {
    pub catalog: Catalog,
    pub chunks: Vec<ChunkRef>,
    pub damage: ScanDamage,
    /// The file ends with a footer and the closing magic.
    pub complete: bool,
}

/// Walks the top-level records of an MCAP file: schemas and channels, chunks (a chunk cut by the
/// end of the file is kept as truncated), and runs of messages outside chunks (unchunked files).
pub fn scan(data: &[u8]) -> Scan {
    let mut scan = Scan {
        catalog: Catalog::default(),
        chunks: Vec::new(),
        damage: ScanDamage::default(),
        complete: false,
    };
    let mut loose: Option<(usize, usize)> = None;
    let mut pos = MAGIC.len();
    let mut in_data_section = true;
    loop {
        match read_record(data, pos) {
            Ok(None) => {
                scan.damage.stopped_at = Some(pos as u64);
                scan.damage.problems.push("the file ends before its footer: it was not closed".into());
                break;
            }
            Ok(Some((opcode, body, end))) => {
                match opcode {
                    op::MESSAGE if in_data_section => {
                        let run = loose.get_or_insert((pos, end));
                        run.1 = end;
                    }
                    op::SCHEMA | op::CHANNEL => {
                        scan.catalog.add(opcode, body);
                        if let Some(run) = loose.as_mut().filter(|_| in_data_section) {
                            run.1 = end;
                        }
                    }
                    op::CHUNK => {
                        close_loose_run(&mut loose, &mut scan.chunks);
                        match chunk_ref(pos, data, body, false) {
                            Ok(c) => scan.chunks.push(c),
                            Err(e) => scan.damage.problems.push(format!("chunk at byte {pos}: {e}")),
                        }
                    }
                    op::DATA_END => {
                        close_loose_run(&mut loose, &mut scan.chunks);
                        in_data_section = false;
                    }
                    op::FOOTER => {
                        close_loose_run(&mut loose, &mut scan.chunks);
                        scan.complete = data.len() >= MAGIC.len() && data[data.len() - MAGIC.len()..] == *MAGIC;
                        if !scan.complete {
                            scan.damage.problems.push("the footer is not followed by the closing magic".into());
                        }
                        break;
                    }
                    _ => close_loose_run(&mut loose, &mut scan.chunks),
                }
                pos = end;
            }
            Err(e) => {
                close_loose_run(&mut loose, &mut scan.chunks);
                scan.damage.stopped_at = Some(pos as u64);
                if data.get(pos) == Some(&op::CHUNK) {
                    keep_cut_chunk(pos, data, &mut scan);
                } else {
                    scan.damage.problems.push(format!("byte {pos}: {e}"));
                }
                break;
            }
        }
    }
    close_loose_run(&mut loose, &mut scan.chunks);
    scan
}

fn close_loose_run(loose: &mut Option<(usize, usize)>, chunks: &mut Vec<ChunkRef>) {
    if let Some((start, end)) = loose.take() {
        chunks.push(ChunkRef::outside_chunks(start, end));
    }
}

/// A chunk whose record runs past the end of the file: keep what is there to salvage.
fn keep_cut_chunk(pos: usize, data: &[u8], scan: &mut Scan) {
    let body = data.get(pos + 9..).unwrap_or(&[]);
    match chunk_ref(pos, data, body, true) {
        Ok(c) => {
            scan.damage.cut_chunk = Some(CutChunk {
                pos: pos as u64,
                declared_bytes: c.declared_stored_len,
                present_bytes: c.stored_len() as u64,
                recovered: BTreeMap::new(),
            });
            scan.chunks.push(c);
        }
        Err(e) => scan.damage.problems.push(format!("the file ends inside the chunk at byte {pos} ({e})")),
    }
}

/// [`chunk_ref`] of a complete Chunk record (for chunks fetched on their own).
pub(super) fn chunk_ref_in(pos: usize, data: &[u8], body: &[u8]) -> Result<ChunkRef, String> {
    chunk_ref(pos, data, body, false)
}

/// Locates the compressed records of a Chunk record whose body starts at `pos + 9`.
fn chunk_ref(pos: usize, data: &[u8], body: &[u8], truncated: bool) -> Result<ChunkRef, String> {
    let u64_at = |at: usize| -> Result<u64, String> {
        let b = body.get(at..at + 8).ok_or("chunk header cut off")?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "chunk header cut off")?))
    };
    let start_time = u64_at(0)?;
    let end_time = u64_at(8)?;
    let uncompressed_size = u64_at(16)?;
    // 4 bytes of CRC, then the compression name.
    let name_len = body.get(28..32).ok_or("chunk header cut off")?;
    let name_len = u32::from_le_bytes(name_len.try_into().map_err(|_| "chunk header cut off")?) as usize;
    let name = body.get(32..32 + name_len).ok_or("chunk header cut off")?;
    let compression = match name {
        b"" => Compression::None,
        other => Compression::parse(other)?,
    };
    let records_len = u64_at(32 + name_len)?;
    let body_start = pos + 9;
    let data_start = body_start + 32 + name_len + 8;
    let declared_end = usize::try_from(records_len).ok().and_then(|l| data_start.checked_add(l));
    let data_end = match declared_end {
        Some(end) if end <= data.len() => end,
        _ if truncated => data.len(),
        _ => return Err("chunk records run past the end of the record".into()),
    };
    if compression == Compression::Bz2 {
        return Err("bz2 is not an MCAP chunk compression".into());
    }
    Ok(ChunkRef {
        pos: pos as u64,
        compression,
        uncompressed_size,
        data_start,
        data_end,
        truncated,
        start_time: Some(start_time),
        end_time: Some(end_time),
        counts: Vec::new(),
        outside_chunks: false,
        declared_stored_len: records_len,
    })
}

#[cfg(test)]
mod length_tests {
    use super::*;

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    fn channel(topic_len_override: Option<u32>, map: &[u8]) -> Vec<u8> {
        let mut body = vec![1, 0, 0, 0];
        let mut topic = string(b"/imu");
        if let Some(len) = topic_len_override {
            topic[..4].copy_from_slice(&len.to_le_bytes());
        }
        body.extend(topic);
        body.extend(string(b"cdr"));
        body.extend((map.len() as u32).to_le_bytes());
        body.extend_from_slice(map);
        body
    }

    #[test]
    fn damaged_lengths_are_refused_before_parsing() {
        let mut pair = string(b"k");
        pair.extend(string(b"v"));
        assert!(lengths_fit(op::CHANNEL, &channel(None, &pair)));
        // A topic that declares 4 GB (the fuzzer's finding) and a map entry longer than the map.
        assert!(!lengths_fit(op::CHANNEL, &channel(Some(u32::MAX - 240), &pair)));
        let mut bad = string(b"k");
        bad.extend(1000u32.to_le_bytes());
        assert!(!lengths_fit(op::CHANNEL, &channel(None, &bad)));
        let mut catalog = Catalog::default();
        catalog.add(op::CHANNEL, &channel(Some(u32::MAX - 240), &pair));
        assert!(catalog.channels.is_empty());
        catalog.add(op::CHANNEL, &channel(None, &pair));
        assert_eq!(catalog.channels[&1].topic, "/imu");
        let mut schema = vec![1, 0];
        schema.extend(string(b"pkg/Msg"));
        schema.extend(string(b"ros2msg"));
        schema.extend(string(b"int32 x"));
        assert!(lengths_fit(op::SCHEMA, &schema));
        assert!(!lengths_fit(op::SCHEMA, &schema[..schema.len() - 1]));
    }
}
