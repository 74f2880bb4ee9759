//! Walking the records of a decompressed chunk, in either format: messages (connection id, log
//! time, payload in place) and the connection records found inside chunks.

use super::chunk::ChunkItem;
use super::connection::Connection;
use super::mcap_file;
use super::record::{op, read_message_record, read_record, time_from_bytes, ReadOutcome};

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
            match mcap_file::read_record(self.buf, self.pos) {
                Ok(None) => return None,
                Ok(Some((opcode, body, end))) => {
                    self.pos = end;
                    if opcode == mcap_file::op::MESSAGE {
                        match mcap_file::message(body) {
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
