//! Salvage of a ROS1 bag without a usable index: a linear walk over the top-level records that
//! keeps every complete chunk (and the one cut by the end of the file), the index records after
//! each chunk (its expected message counts), and messages recorded outside any chunk.

use std::collections::BTreeMap;

use super::chunk::ChunkRef;
use super::connection::Connection;
use super::record::{op, read_record, ReadOutcome};
use super::summary::{CutChunk, ScanDamage};

pub(super) struct Scan {
    pub(super) chunks: Vec<ChunkRef>,
    pub(super) connections: Vec<Connection>,
    pub(super) damage: ScanDamage,
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
pub(super) fn scan_records(data: &[u8], mut pos: usize) -> Scan {
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
