//! The summary of a closed MCAP file: its footer says where the summary section starts, and the
//! summary holds every schema and channel, one chunk index per chunk (where the chunk is, its
//! times, the channels in it) and the statistics (messages per channel). With it, a file read
//! by ranges (S3) is opened from its tail alone, and each chunk is then fetched on its own.
//! Every length read here is checked against the bytes it claims, so a damaged summary is an
//! error, never a huge allocation.

use std::collections::BTreeMap;

use super::chunk::{ChunkRef, Compression};
use super::mcap_file::{read_record, Catalog, MAGIC};
use super::summary::ConnectionStats;

/// Bytes of the footer record (opcode, length, summary start, summary offset start, CRC) and
/// the closing magic at the end of every closed MCAP file.
pub const FOOTER_AND_MAGIC: u64 = 1 + 8 + 8 + 8 + 4 + 8;

const FOOTER: u8 = 0x02;
const CHUNK: u8 = 0x06;
const CHUNK_INDEX: u8 = 0x08;
const STATISTICS: u8 = 0x0B;

/// Where the summary section starts, from the file's last [`FOOTER_AND_MAGIC`] bytes; `Err`
/// says why there is none to use.
pub fn summary_start(tail: &[u8]) -> Result<u64, String> {
    if tail.len() as u64 != FOOTER_AND_MAGIC || !tail.ends_with(MAGIC) || tail[0] != FOOTER {
        return Err("the file does not end with an MCAP footer (not closed, or torn)".into());
    }
    let start = u64_at(tail, 9).ok_or("the footer is cut off")?;
    if start == 0 {
        return Err("the file has no summary section".into());
    }
    Ok(start)
}

/// What the summary section says.
#[derive(Debug, Default)]
pub struct Summary {
    pub catalog: Catalog,
    /// One placeholder per chunk, in file order: its span is the whole chunk record (resolved
    /// by [`resolve_chunk`] once fetched).
    pub chunks: Vec<ChunkRef>,
    /// Messages and times per channel.
    pub stats: BTreeMap<u32, ConnectionStats>,
}

/// Reads the summary section `bytes` (from the summary start to the footer).
pub fn read_summary(bytes: &[u8]) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let mut counts: Option<BTreeMap<u16, u64>> = None;
    let mut times: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    let mut pos = 0;
    while let Some((opcode, body, end)) = read_record(bytes, pos)? {
        match opcode {
            CHUNK_INDEX => {
                let index = chunk_index(body).ok_or_else(|| format!("chunk index at summary byte {pos} is damaged"))?;
                for channel in &index.channels {
                    let t = times.entry(*channel).or_insert((u64::MAX, 0));
                    *t = (t.0.min(index.start_time), t.1.max(index.end_time));
                }
                summary.chunks.push(index.placeholder());
            }
            STATISTICS => counts = Some(channel_counts(body).ok_or_else(|| format!("statistics at summary byte {pos} are damaged"))?),
            _ => summary.catalog.add(opcode, body),
        }
        pos = end;
    }
    let counts = counts.ok_or("the summary has no statistics (messages per channel)")?;
    summary.chunks.sort_by_key(|c| c.pos);
    for (channel, messages) in counts {
        let (start, end) = times.get(&channel).copied().filter(|t| t.0 <= t.1).unzip();
        summary.stats.insert(u32::from(channel), ConnectionStats { messages, start_time: start, end_time: end });
    }
    Ok(summary)
}

struct ChunkIndex {
    start_time: u64,
    end_time: u64,
    offset: u64,
    length: u64,
    channels: Vec<u16>,
    compression: Compression,
    uncompressed_size: u64,
}

impl ChunkIndex {
    fn placeholder(&self) -> ChunkRef {
        let start = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let end = usize::try_from(self.offset.saturating_add(self.length)).unwrap_or(usize::MAX);
        let mut chunk = ChunkRef::outside_chunks(start, end);
        chunk.outside_chunks = false;
        chunk.compression = self.compression;
        chunk.uncompressed_size = self.uncompressed_size;
        chunk.start_time = Some(self.start_time);
        chunk.end_time = Some(self.end_time);
        chunk
    }
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// A map of u16 keys to u64 values (u32 byte length, then 10-byte entries) at `at`; returns it
/// and where it ends.
fn u16_u64_map(b: &[u8], at: usize) -> Option<(Vec<(u16, u64)>, usize)> {
    let len = u32_at(b, at)? as usize;
    let start = at + 4;
    let entries = b.get(start..start.checked_add(len)?)?;
    if len % 10 != 0 {
        return None;
    }
    let map = entries.chunks_exact(10).map(|e| (u16::from_le_bytes([e[0], e[1]]), u64::from_le_bytes(e[2..10].try_into().unwrap_or_default()))).collect();
    Some((map, start + len))
}

/// start time, end time, chunk offset, chunk length, message index offsets (channels), message
/// index length, compression, compressed size, uncompressed size.
fn chunk_index(body: &[u8]) -> Option<ChunkIndex> {
    let (channels, after_map) = u16_u64_map(body, 32)?;
    let name_at = after_map + 8;
    let name_len = u32_at(body, name_at)? as usize;
    let name = body.get(name_at + 4..(name_at + 4).checked_add(name_len)?)?;
    let compression = match name {
        b"" => Compression::None,
        other => Compression::parse(other).ok().filter(|c| *c != Compression::Bz2)?,
    };
    let sizes_at = name_at + 4 + name_len;
    Some(ChunkIndex {
        start_time: u64_at(body, 0)?,
        end_time: u64_at(body, 8)?,
        offset: u64_at(body, 16)?,
        length: u64_at(body, 24)?,
        channels: channels.into_iter().map(|(c, _)| c).collect(),
        compression,
        uncompressed_size: u64_at(body, sizes_at + 8)?,
    })
}

/// The messages per channel of a Statistics record: after message count (8), schema count (2),
/// channel, attachment, metadata and chunk counts (4 each), start and end times (8 each).
fn channel_counts(body: &[u8]) -> Option<BTreeMap<u16, u64>> {
    let (map, _) = u16_u64_map(body, 8 + 2 + 4 * 4 + 8 + 8)?;
    Some(map.into_iter().collect())
}

/// The chunk `placeholder` from its fetched `span` (the whole chunk record): its location with
/// the data range filled in, and the stored (compressed) records.
pub fn resolve_chunk(placeholder: &ChunkRef, span: &[u8]) -> Result<(ChunkRef, Vec<u8>), String> {
    let Some((CHUNK, body, _)) = read_record(span, 0)? else {
        return Err("the chunk index points here but there is no chunk record".into());
    };
    let local = super::mcap_file::chunk_ref_in(0, span, body)?;
    let base = placeholder.pos as usize;
    let stored = span.get(local.data_start..local.data_end).ok_or("chunk records outside the chunk")?.to_vec();
    let mut chunk = local;
    chunk.pos = placeholder.pos;
    chunk.data_start += base;
    chunk.data_end += base;
    Ok((chunk, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_footer_or_summary_is_refused_with_the_reason() {
        assert!(summary_start(b"short").unwrap_err().contains("footer"));
        let mut tail = vec![FOOTER];
        tail.extend(20u64.to_le_bytes());
        tail.extend([0u8; 20]);
        tail.extend(MAGIC);
        assert!(summary_start(&tail).unwrap_err().contains("no summary"));
        tail[9] = 42;
        assert_eq!(summary_start(&tail), Ok(42));
    }

    #[test]
    fn damaged_summary_records_are_errors_not_allocations() {
        // A chunk index whose channel map claims 4 GB.
        let mut body = vec![0u8; 32];
        body.extend(u32::MAX.to_le_bytes());
        let mut record = vec![CHUNK_INDEX];
        record.extend((body.len() as u64).to_le_bytes());
        record.extend(&body);
        assert!(read_summary(&record).unwrap_err().contains("damaged"));
        assert!(read_summary(&[]).unwrap_err().contains("no statistics"));
    }
}
