//! `DELTA_BINARY_PACKED` values: the Parquet encoding that stores each 32- or 64-bit integer as
//! its difference from the one before, bit-packed in blocks. Timestamps that advance by a
//! steady period take a few bits each instead of eight bytes, and sequence numbers none at all;
//! encoding them this way costs a fraction of compressing their plain bytes with zstd.
//!
//! Layout (Parquet format, `Encodings.md`): a header (values per block, miniblocks per block,
//! value count, first value as zigzag varint), then per block of [`BLOCK`] deltas: the smallest
//! delta (zigzag varint), one bit width per miniblock, and each miniblock's deltas minus the
//! smallest, packed least significant bit first. The last miniblock holding values is padded
//! with zeros; miniblocks after it are not written (their bit width is written as 0).
//! Differences of 32-bit columns wrap at 32 bits, as readers compute them.

use super::levels::{pack_bits, put_varint};

/// Deltas per block, and per miniblock: the smallest sizes the format allows.
const BLOCK: usize = 128;
const MINIBLOCKS: usize = 4;
const MINIBLOCK: usize = BLOCK / MINIBLOCKS;

/// Appends the values of `plain` (little-endian 4- or 8-byte integers, as in a PLAIN page;
/// `width` says which) to `out` as one `DELTA_BINARY_PACKED` run.
pub(super) fn encode(plain: &[u8], width: usize, out: &mut Vec<u8>) {
    if width == 4 {
        encode_values::<4>(plain, out);
    } else {
        encode_values::<8>(plain, out);
    }
}

/// The `i`th value of `bytes`, sign-extended from `WIDTH` (4 or 8) bytes.
#[inline(always)]
fn value_at<const WIDTH: usize>(bytes: &[u8], i: usize) -> i64 {
    let b = &bytes[i * WIDTH..(i + 1) * WIDTH];
    if WIDTH == 4 {
        i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    } else {
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// Encodes the `WIDTH`-byte values of `plain`.
fn encode_values<const WIDTH: usize>(plain: &[u8], out: &mut Vec<u8>) {
    let count = plain.len() / WIDTH;
    put_varint(out, BLOCK as u64);
    put_varint(out, MINIBLOCKS as u64);
    put_varint(out, count as u64);
    if count == 0 {
        put_varint(out, 0);
        return;
    }
    let mut previous = value_at::<WIDTH>(plain, 0);
    put_varint(out, zigzag(previous));
    let mut deltas = [0i64; BLOCK];
    for block in plain[WIDTH..count * WIDTH].chunks(BLOCK * WIDTH) {
        let n = block.len() / WIDTH;
        for (i, delta_slot) in deltas[..n].iter_mut().enumerate() {
            let value = value_at::<WIDTH>(block, i);
            *delta_slot = delta::<WIDTH>(value, previous);
            previous = value;
        }
        // Padding deltas equal the smallest one, so they pack as zeros.
        let min = deltas[..n].iter().copied().fold(i64::MAX, i64::min);
        deltas[n..].fill(min);
        write_block::<WIDTH>(&deltas, n, min, out);
    }
}

/// One block: `count` deltas of `deltas` are values, the rest padding.
fn write_block<const WIDTH: usize>(deltas: &[i64; BLOCK], count: usize, min: i64, out: &mut Vec<u8>) {
    put_varint(out, zigzag(min));
    let used = count.div_ceil(MINIBLOCK);
    let widths_at = out.len();
    out.resize(widths_at + MINIBLOCKS, 0);
    for (m, miniblock) in deltas.chunks_exact(MINIBLOCK).take(used).enumerate() {
        let mut offsets = [0u64; MINIBLOCK];
        for (offset_slot, &d) in offsets.iter_mut().zip(miniblock) {
            *offset_slot = offset::<WIDTH>(d, min);
        }
        let widest = offsets.iter().fold(0, |a, &b| a | b);
        let width = (u64::BITS - widest.leading_zeros()) as usize;
        out[widths_at + m] = width as u8;
        pack_bits(&offsets, width, out);
    }
}

/// `value - previous`, wrapping at the column's width.
#[inline(always)]
fn delta<const WIDTH: usize>(value: i64, previous: i64) -> i64 {
    if WIDTH == 4 {
        i64::from((value as i32).wrapping_sub(previous as i32))
    } else {
        value.wrapping_sub(previous)
    }
}

/// `delta - min` as the unsigned number that is packed, wrapping at the column's width.
#[inline(always)]
fn offset<const WIDTH: usize>(delta: i64, min: i64) -> u64 {
    if WIDTH == 4 {
        u64::from((delta as i32).wrapping_sub(min as i32) as u32)
    } else {
        delta.wrapping_sub(min) as u64
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference decoder written from the format description, bit by bit.
    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Reader<'_> {
        fn varint(&mut self) -> u64 {
            let (mut value, mut shift) = (0u64, 0);
            loop {
                let b = self.bytes[self.at];
                self.at += 1;
                value |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    return value;
                }
            }
        }

        fn zigzag(&mut self) -> i64 {
            let v = self.varint();
            ((v >> 1) as i64) ^ -((v & 1) as i64)
        }

        /// `count` numbers of `width` bits, least significant bit first.
        fn unpack(&mut self, count: usize, width: usize) -> Vec<u64> {
            let numbers = (0..count)
                .map(|i| {
                    (0..width).fold(0u64, |n, k| {
                        let bit = i * width + k;
                        n | (u64::from((self.bytes[self.at + bit / 8] >> (bit % 8)) & 1) << k)
                    })
                })
                .collect();
            self.at += count * width / 8;
            numbers
        }
    }

    fn decode(bytes: &[u8], bits32: bool) -> (Vec<i64>, usize) {
        let mut r = Reader { bytes, at: 0 };
        let (block, miniblocks, total) = (r.varint() as usize, r.varint() as usize, r.varint() as usize);
        let first = r.zigzag();
        let mut values = Vec::new();
        if total > 0 {
            values.push(first);
        }
        let wrap = |v: i64| if bits32 { i64::from(v as i32) } else { v };
        while values.len() < total {
            let min = r.zigzag();
            let widths: Vec<usize> = (0..miniblocks).map(|m| bytes[r.at + m] as usize).collect();
            r.at += miniblocks;
            for width in widths {
                if values.len() >= total {
                    break;
                }
                for n in r.unpack(block / miniblocks, width) {
                    if values.len() < total {
                        let previous = values[values.len() - 1];
                        values.push(wrap(previous.wrapping_add(min).wrapping_add(n as i64)));
                    }
                }
            }
        }
        (values, r.at)
    }

    fn round_trip(values: &[i64], width: usize) {
        let plain: Vec<u8> = if width == 4 {
            values.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect()
        } else {
            values.iter().flat_map(|&v| v.to_le_bytes()).collect()
        };
        let mut out = vec![0xAB]; // appended after what is there
        encode(&plain, width, &mut out);
        assert_eq!(out[0], 0xAB);
        let (decoded, used) = decode(&out[1..], width == 4);
        let expected: Vec<i64> = values.iter().map(|&v| if width == 4 { i64::from(v as i32) } else { v }).collect();
        assert_eq!(decoded, expected, "width {width}, {} values", values.len());
        assert_eq!(used, out.len() - 1, "every byte written is read");
    }

    #[test]
    fn values_read_back_whatever_their_count_spread_and_width() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Steady timestamps with jitter (the common case), constants, a sequence, extremes
        // that overflow every difference, and random bits of every width.
        let stamps: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000_000_000 + i * 10_000_000 + (random() % 50_000) as i64).collect();
        let extremes = [i64::MIN, i64::MAX, 0, -1, i64::MAX, i64::MIN, 1];
        let mut cases: Vec<Vec<i64>> = vec![vec![], vec![42], vec![7; 300], (0..129).collect(), (0..=256).rev().collect(), stamps, extremes.to_vec()];
        for bits in [1, 5, 17, 31, 32, 33, 63, 64] {
            cases.push((0..200).map(|_| (random() >> (64 - bits)) as i64).collect());
        }
        for values in &cases {
            for width in [4, 8] {
                for count in [values.len(), values.len().saturating_sub(1), values.len().min(33)] {
                    round_trip(&values[..count], width);
                }
            }
        }
    }

    #[test]
    fn steady_timestamps_take_a_few_bits_and_sequences_none() {
        let stamps: Vec<u8> = (0..1024i64).flat_map(|i| (1_700_000_000_000_000_000 + i * 10_000_000 + (i * 7919) % 4096).to_le_bytes()).collect();
        let mut out = Vec::new();
        encode(&stamps, 8, &mut out);
        // 10 ms steps plus 12 bits of jitter: 13 bits per value, not 64.
        assert!(out.len() < stamps.len() / 4, "{} bytes for {} values", out.len(), 1024);
        let sequence: Vec<u8> = (0..1024u32).flat_map(|i| i.to_le_bytes()).collect();
        out.clear();
        encode(&sequence, 4, &mut out);
        // Header and one minimum plus four widths per block of 128.
        assert!(out.len() < 64, "{} bytes", out.len());
    }
}
