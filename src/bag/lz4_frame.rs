//! LZ4 frames (the format of lz4-compressed ROS1 and MCAP chunks) decoded block by block straight
//! into one output buffer.
//!
//! `lz4_flex`'s `FrameDecoder` is a `Read`er: it copies every compressed block into a buffer of
//! its own, decompresses it into a second one and copies that out again — three passes over
//! every byte of an image drive. Here each block is decompressed once, in place, with the
//! previous 64 KiB of output as the dictionary of linked blocks; the checksums the frame carries
//! are still verified. Frames this module does not handle (legacy format, skippable frames,
//! dictionary ids) are left to `FrameDecoder`: [`decode`] returns `None` for them.

use std::hash::Hasher;

use twox_hash::XxHash32;

const MAGIC: u32 = 0x184D_2204;
/// Linked blocks may refer back this far into the output.
const WINDOW: usize = 64 * 1024;

/// What one frame header says.
struct Header {
    independent_blocks: bool,
    block_checksums: bool,
    content_checksum: bool,
    max_block_size: usize,
    /// Bytes of header, from the magic number to the header checksum included.
    len: usize,
}

/// Decodes every frame of `stored` into a buffer of `capacity` bytes (grown if the frames hold
/// more), stopping at `limit` bytes of output. Returns the output and, if decoding stopped
/// early, why (the output then holds every block decoded before). `None`: the stream uses a
/// feature this decoder leaves to `lz4_flex::frame::FrameDecoder`.
pub fn decode(stored: &[u8], capacity: usize, limit: usize) -> Option<(Vec<u8>, Option<String>)> {
    let mut out = super::memory::chunk_buffer(capacity.min(limit));
    let mut filled = 0;
    let mut pos = 0;
    while pos < stored.len() {
        let header = match parse_header(&stored[pos..]) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(problem) => return Some(finish(out, filled, Some(problem))),
        };
        pos += header.len;
        match decode_blocks(&stored[pos..], &header, &mut out, &mut filled, limit) {
            Ok(used) => pos += used,
            Err(problem) => return Some(finish(out, filled, Some(problem))),
        }
        if filled >= limit {
            break;
        }
    }
    Some(finish(out, filled, None))
}

fn finish(mut out: Vec<u8>, filled: usize, problem: Option<String>) -> (Vec<u8>, Option<String>) {
    out.truncate(filled);
    (out, problem.map(|p| format!("lz4 decompression stopped: {p}")))
}

/// Reads a frame header; `Ok(None)` for frames left to `FrameDecoder`.
fn parse_header(input: &[u8]) -> Result<Option<Header>, String> {
    let magic = read_u32(input, 0).ok_or("frame header cut short")?;
    if magic != MAGIC {
        return Ok(None);
    }
    let (flags, block_descriptor) = match input.get(4..6) {
        Some(&[f, b]) => (f, b),
        _ => return Err("frame header cut short".into()),
    };
    if flags >> 6 != 0b01 {
        return Err(format!("frame version {} is not 1", flags >> 6));
    }
    let has_content_size = flags & 0b1000 != 0;
    let has_dict_id = flags & 0b1 != 0;
    if has_dict_id {
        return Ok(None);
    }
    let max_block_size = match (block_descriptor >> 4) & 0b111 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        // Not in the LZ4 specification (lz4_flex knows an 8 MB size): FrameDecoder's business.
        _ => return Ok(None),
    };
    let descriptor_len = 2 + if has_content_size { 8 } else { 0 };
    let descriptor = input.get(4..4 + descriptor_len).ok_or("frame header cut short")?;
    let checksum = *input.get(4 + descriptor_len).ok_or("frame header cut short")?;
    if (xxh32(descriptor) >> 8) as u8 != checksum {
        return Err("frame header checksum does not match".into());
    }
    Ok(Some(Header {
        independent_blocks: flags & 0b10_0000 != 0,
        block_checksums: flags & 0b1_0000 != 0,
        content_checksum: flags & 0b100 != 0,
        max_block_size,
        len: 4 + descriptor_len + 1,
    }))
}

/// Decodes the blocks of one frame (after its header) into `out[*filled..]`; returns the bytes
/// of input used, up to and including the end mark and content checksum.
fn decode_blocks(input: &[u8], header: &Header, out: &mut Vec<u8>, filled: &mut usize, limit: usize) -> Result<usize, String> {
    let frame_start = *filled;
    let mut pos = 0;
    loop {
        let word = read_u32(input, pos).ok_or("block size cut short")?;
        pos += 4;
        if word == 0 {
            break;
        }
        let stored_raw = word & 0x8000_0000 != 0;
        let len = (word & 0x7FFF_FFFF) as usize;
        if len > header.max_block_size {
            return Err(format!("block of {len} bytes exceeds the frame's maximum of {}", header.max_block_size));
        }
        let block = input.get(pos..pos + len).ok_or("block cut short")?;
        pos += len;
        if header.block_checksums {
            let expected = read_u32(input, pos).ok_or("block checksum cut short")?;
            pos += 4;
            if xxh32(block) != expected {
                return Err("block checksum does not match".into());
            }
        }
        let written = if stored_raw {
            let end = (*filled + len).min(limit);
            if out.len() < end {
                out.resize(end, 0);
            }
            out[*filled..end].copy_from_slice(&block[..end - *filled]);
            end - *filled
        } else {
            decompress_block(block, header.independent_blocks, out, *filled, header.max_block_size.min(limit - *filled))?
        };
        *filled += written;
        if *filled >= limit {
            return Ok(pos);
        }
    }
    if header.content_checksum {
        let expected = read_u32(input, pos).ok_or("content checksum cut short")?;
        pos += 4;
        if xxh32(&out[frame_start..*filled]) != expected {
            return Err("content checksum does not match".into());
        }
    }
    Ok(pos)
}

/// Decompresses one block into `out[filled..]`. The buffer is sized from the chunk's declared
/// size, which normally fits every block; it grows (by at most `max_growth`) only for a block
/// that does not fit.
fn decompress_block(block: &[u8], independent: bool, out: &mut Vec<u8>, filled: usize, max_growth: usize) -> Result<usize, String> {
    let mut grown = false;
    loop {
        let (before, after) = out.split_at_mut(filled);
        let result = if independent || before.is_empty() {
            lz4_flex::block::decompress_into(block, after)
        } else {
            let dict_start = before.len().saturating_sub(WINDOW);
            lz4_flex::block::decompress_into_with_dict(block, after, &before[dict_start..])
        };
        match result {
            Ok(n) => return Ok(n),
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if !grown && out.len() < filled + max_growth => {
                out.resize(filled + max_growth, 0);
                grown = true;
            }
            Err(e) => return Err(format!("block: {e}")),
        }
    }
}

fn read_u32(input: &[u8], at: usize) -> Option<u32> {
    let bytes = input.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn xxh32(data: &[u8]) -> u32 {
    let mut hasher = XxHash32::with_seed(0);
    hasher.write(data);
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
    use std::io::{Read, Write};

    /// Compressible but varied bytes: repeated phrases with a counter.
    fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u32;
        while out.len() < len {
            out.extend_from_slice(format!("message {i} of a drive, x={} ", i % 97).as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn encode(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn reference(stored: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameDecoder::new(stored).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn matches_frame_decoder_for_every_block_mode_and_checksum() {
        let data = sample(700_000);
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for checksums in [false, true] {
                let info = FrameInfo::new()
                    .block_mode(mode)
                    .block_size(BlockSize::Max64KB)
                    .block_checksums(checksums)
                    .content_checksum(checksums)
                    .content_size(checksums.then_some(data.len() as u64));
                let stored = encode(&data, info);
                let (out, problem) = decode(&stored, data.len(), usize::MAX).unwrap();
                assert_eq!(problem, None);
                assert_eq!(out, reference(&stored));
                assert_eq!(out, data);
            }
        }
    }

    #[test]
    fn a_recycled_buffer_leaves_nothing_of_the_last_chunk_behind() {
        // Decoded one after another on this thread, each into the buffer of the one before:
        // larger, smaller, a cut stream, and one larger than the spare buffer again.
        let inputs: Vec<Vec<u8>> = [300_000usize, 120_000, 250_000, 400_000]
            .iter()
            .enumerate()
            .map(|(i, &len)| sample(len).into_iter().map(|b| b.wrapping_add(i as u8)).collect())
            .collect();
        for (i, data) in inputs.iter().enumerate() {
            let mut stored = encode(data, FrameInfo::new().block_mode(BlockMode::Linked).block_size(BlockSize::Max64KB));
            if i == 2 {
                stored.truncate(stored.len() / 2);
            }
            let (out, problem) = decode(&stored, data.len(), usize::MAX).unwrap();
            if i == 2 {
                assert!(problem.is_some());
                assert!(!out.is_empty() && data.starts_with(&out), "the blocks before the cut, nothing more");
            } else {
                assert_eq!((out.len(), problem), (data.len(), None));
                assert!(out == *data, "chunk {i}");
            }
            crate::bag::memory::recycle_chunk_buffer(out);
        }
    }

    #[test]
    fn wrong_capacity_and_concatenated_frames_still_decode() {
        let a = sample(100_000);
        let b = sample(30_000);
        let mut stored = encode(&a, FrameInfo::new().block_mode(BlockMode::Linked));
        stored.extend(encode(&b, FrameInfo::new()));
        for capacity in [0, 10, 200_000] {
            let (out, problem) = decode(&stored, capacity, usize::MAX).unwrap();
            assert_eq!(problem, None);
            assert_eq!(out, [a.clone(), b.clone()].concat());
        }
    }

    #[test]
    fn a_cut_stream_keeps_the_whole_blocks_before_the_cut() {
        let data = sample(300_000);
        let stored = encode(&data, FrameInfo::new().block_size(BlockSize::Max64KB));
        let (out, problem) = decode(&stored[..stored.len() / 2], data.len(), usize::MAX).unwrap();
        assert!(problem.unwrap().contains("cut short"));
        assert!(!out.is_empty() && out.len() % (64 << 10) == 0, "{}", out.len());
        assert_eq!(out, data[..out.len()]);
    }

    #[test]
    fn a_flipped_byte_fails_the_content_checksum() {
        let data = sample(50_000);
        let mut stored = encode(&data, FrameInfo::new().content_checksum(true));
        let last_block_byte = stored.len() - 9;
        stored[last_block_byte] ^= 0x55;
        let (_, problem) = decode(&stored, data.len(), usize::MAX).unwrap();
        assert!(problem.is_some());
    }

    #[test]
    fn output_stops_at_the_limit() {
        let data = sample(200_000);
        let stored = encode(&data, FrameInfo::new().block_size(BlockSize::Max64KB));
        let (out, _) = decode(&stored, 1_000, 70_000).unwrap();
        assert!(out.len() <= 70_000 && out.len() >= 65_536, "{}", out.len());
        assert_eq!(out, data[..out.len()]);
    }

    #[test]
    fn legacy_and_foreign_streams_are_left_to_frame_decoder() {
        assert!(decode(b"\x02\x21\x4c\x18rest", 10, 100).is_none());
        assert!(decode(b"not lz4 at all", 10, 100).is_none());
    }
}
