//! Bags read by byte ranges instead of from a local file: an object in S3, or anything else that
//! serves ranges. Opening fetches the bag header and the index section only; each chunk is
//! fetched when a worker reaches it, several at a time, and dropped once decoded, so neither the
//! disk nor memory ever holds the whole bag.
//!
//! Only indexed ROS1 bags and closed MCAP files with a summary are read this way. Recovering an
//! unindexed or torn bag means scanning every byte in order; that is done on a local copy (the
//! error says so, and ingest from S3 makes the copy).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use super::chunk::ChunkRef;
use super::index::{check_magic, read_index_records, stats_from_index, ChunkInfo, MAGIC_V2};
use super::memory::Bytes;
use super::record::{op, read_record, ReadOutcome};
use super::summary::{IndexState, ScanDamage};
use super::{Bag, BagFormat};
use super::error::{BagError, Result};
use crate::source::RangeReader;

/// Bytes fetched at open to find the bag header (which ROS pads to 4 KiB).
const HEAD_BYTES: u64 = 64 * 1024;

fn fetch_one(reader: &dyn RangeReader, range: Range<u64>) -> Result<Vec<u8>> {
    let start = range.start;
    match reader.fetch(vec![range]).next() {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(problem)) => Err(read_error(reader, start, &problem)),
        None => Err(read_error(reader, start, "no data returned")),
    }
}

pub(super) fn read_error(reader: &dyn RangeReader, offset: u64, reason: &str) -> BagError {
    BagError::RangeRead { source_name: reader.name(), offset, reason: reason.to_string() }
}

fn needs_local_copy(path: &std::path::Path, reason: &str) -> BagError {
    BagError::NeedsLocalCopy { path: path.to_path_buf(), reason: reason.to_string() }
}

impl Bag {
    /// Opens a ROS1 bag served by `reader`: reads its header and index, not its chunks.
    pub fn open_ranged(reader: Arc<dyn RangeReader>) -> Result<Bag> {
        let path = PathBuf::from(reader.name());
        let len = reader.len();
        let head = fetch_one(reader.as_ref(), 0..len.min(HEAD_BYTES))?;
        if head.starts_with(super::mcap_file::MAGIC) {
            return Self::open_ranged_mcap(reader, path, len);
        }
        check_magic(&path, &head)?;
        let header = match read_record(&head, MAGIC_V2.len()) {
            ReadOutcome::Record(r) if r.header.op() == Some(op::BAG_HEADER) => r.header.clone(),
            _ => return Err(needs_local_copy(&path, "the bag header is missing or damaged")),
        };
        if let Some(enc) = header.get("encryptor").filter(|v| !v.is_empty()) {
            return Err(BagError::Encrypted {
                path,
                encryptor: String::from_utf8_lossy(enc).into_owned(),
            });
        }
        let index_pos = header.u64("index_pos").unwrap_or(0);
        if index_pos == 0 {
            return Err(needs_local_copy(&path, "the bag has no index (index_pos is 0: still recording or never closed)"));
        }
        if index_pos >= len {
            return Err(needs_local_copy(&path, &format!("index_pos {index_pos} is past the end of the object ({len} bytes): it is truncated")));
        }
        let index = fetch_one(reader.as_ref(), index_pos..len)?;
        let (mut connections, mut infos) = read_index_records(&index, 0, index_pos).map_err(|reason| needs_local_copy(&path, &reason))?;
        infos.sort_by_key(|i| i.chunk_pos);
        infos.dedup_by_key(|i| i.chunk_pos);
        connections.sort_by_key(|c| c.id);
        connections.dedup_by_key(|c| c.id);
        let mut chunks = Vec::with_capacity(infos.len());
        for (i, info) in infos.iter().enumerate() {
            // A chunk's span runs to the next chunk (its index records included) or the index.
            let end = infos.get(i + 1).map(|n| n.chunk_pos).unwrap_or(index_pos);
            if info.chunk_pos < MAGIC_V2.len() as u64 || end <= info.chunk_pos {
                return Err(needs_local_copy(&path, &format!("chunk info points at byte {}, outside the chunk section", info.chunk_pos)));
            }
            chunks.push(placeholder_chunk(info.chunk_pos, end, info));
        }
        let stats = stats_from_index(&chunks);
        let source_version = reader.version();
        Ok(Bag {
            path,
            format: BagFormat::Ros1,
            bytes: Bytes::Ranged(reader),
            connections,
            chunks,
            index: IndexState::Indexed,
            stats,
            damage: ScanDamage::default(),
            source_version,
        })
    }
}

impl Bag {
    /// Opens a closed MCAP file served by `reader` from its footer and summary section: every
    /// schema, channel and chunk location is there, so no chunk is read until a worker needs it.
    fn open_ranged_mcap(reader: Arc<dyn RangeReader>, path: PathBuf, len: u64) -> Result<Bag> {
        use super::mcap_summary::{read_summary, summary_start, FOOTER_AND_MAGIC};
        if len < FOOTER_AND_MAGIC + super::mcap_file::MAGIC.len() as u64 {
            return Err(needs_local_copy(&path, "the MCAP file is too short to have a footer"));
        }
        let tail = fetch_one(reader.as_ref(), len - FOOTER_AND_MAGIC..len)?;
        let start = summary_start(&tail).map_err(|reason| needs_local_copy(&path, &reason))?;
        if start >= len - FOOTER_AND_MAGIC {
            return Err(needs_local_copy(&path, &format!("the footer puts the summary at byte {start}, past its own position")));
        }
        let section = fetch_one(reader.as_ref(), start..len - FOOTER_AND_MAGIC)?;
        let summary = read_summary(&section).map_err(|reason| needs_local_copy(&path, &reason))?;
        let connections = summary.catalog.connections();
        let source_version = reader.version();
        Ok(Bag {
            path,
            format: BagFormat::Mcap,
            bytes: Bytes::Ranged(reader),
            connections,
            chunks: summary.chunks,
            index: IndexState::Indexed,
            stats: summary.stats,
            damage: ScanDamage::default(),
            source_version,
        })
    }
}

/// What the index says of a chunk before its record header is read: where its span is, its
/// times and counts. The compression and data range come from the header once fetched.
fn placeholder_chunk(pos: u64, end: u64, info: &ChunkInfo) -> ChunkRef {
    let mut chunk = ChunkRef::outside_chunks(pos as usize, end as usize);
    chunk.outside_chunks = false;
    chunk.start_time = Some(info.start_time);
    chunk.end_time = Some(info.end_time);
    chunk.counts = info.counts.clone();
    chunk
}

/// Parses the chunk record at the start of a fetched span and keeps only its data bytes.
pub(super) fn resolve_chunk(path: &std::path::Path, placeholder: &ChunkRef, mut span: Vec<u8>) -> Result<(ChunkRef, Vec<u8>)> {
    let corrupt = |reason: String| BagError::Corrupt { path: path.to_path_buf(), offset: placeholder.pos, reason };
    let base = placeholder.pos as usize;
    let (mut chunk, data_start, data_end) = match read_record(&span, 0) {
        ReadOutcome::Record(rec) if rec.header.op() == Some(op::CHUNK) => {
            let data_start = rec.end - rec.data.len();
            let chunk = ChunkRef::from_record(placeholder.pos, &rec.header, base + data_start, base + rec.end, false).map_err(corrupt)?;
            (chunk, data_start, rec.end)
        }
        _ => return Err(corrupt("the index points here but there is no complete chunk record".into())),
    };
    chunk.start_time = placeholder.start_time;
    chunk.end_time = placeholder.end_time;
    chunk.counts = placeholder.counts.clone();
    span.truncate(data_end);
    span.drain(..data_start);
    Ok((chunk, span))
}
