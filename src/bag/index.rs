//! The ROS1 bag index: the magic line, the connection and chunk info records at `index_pos`, and
//! the check that every chunk they point at is a complete chunk record. Any inconsistency is a
//! reason to scan the file instead ([`super::scan`]).

use std::collections::BTreeMap;
use std::path::Path;

use super::chunk::ChunkRef;
use super::connection::Connection;
use super::record::{op, read_record, Fields, ReadOutcome};
use super::summary::ConnectionStats;
use super::error::{BagError, Result};

/// The first line of every supported bag.
pub const MAGIC_V2: &[u8] = b"#ROSBAG V2.0\n";

pub(super) fn check_magic(path: &Path, data: &[u8]) -> Result<()> {
    if data.starts_with(MAGIC_V2) {
        return Ok(());
    }
    if data.starts_with(b"#ROSBAG V") {
        let line_end = data.iter().take(32).position(|&b| b == b'\n').unwrap_or(12.min(data.len()));
        let version = String::from_utf8_lossy(&data[9..line_end.max(9)]).trim().to_string();
        return Err(BagError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    Err(BagError::NotABag {
        path: path.to_path_buf(),
    })
}

pub(super) fn corrupt(path: &Path, offset: usize, reason: &str) -> BagError {
    BagError::Corrupt { path: path.to_path_buf(), offset: offset as u64, reason: reason.to_string() }
}

/// Reads the index section (connections and chunk infos) and checks that every chunk it points
/// at is a complete chunk record. Any inconsistency is returned as the reason to scan instead.
/// `checked(start, end)` is called with the file range of each chunk header once it has been
/// read, so the caller can drop those pages from a memory map at once.
pub(super) fn read_index(data: &[u8], index_pos: u64, mut checked: impl FnMut(usize, usize)) -> Result<(Vec<Connection>, Vec<ChunkRef>), String> {
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
pub(super) fn read_index_records(data: &[u8], mut pos: usize, base: u64) -> Result<(Vec<Connection>, Vec<ChunkInfo>), String> {
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

pub(super) struct ChunkInfo {
    pub(super) chunk_pos: u64,
    pub(super) start_time: u64,
    pub(super) end_time: u64,
    pub(super) counts: Vec<(u32, u32)>,
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

pub(super) fn stats_from_index(chunks: &[ChunkRef]) -> BTreeMap<u32, ConnectionStats> {
    let mut stats: BTreeMap<u32, ConnectionStats> = BTreeMap::new();
    for chunk in chunks {
        for &(conn, count) in &chunk.counts {
            stats.entry(conn).or_default().add(count as u64, chunk.start_time, chunk.end_time);
        }
    }
    stats
}
