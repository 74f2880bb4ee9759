//! Repetition and definition levels of version-1 data pages: a 4-byte length, then the
//! RLE/bit-packed hybrid encoding (here only RLE runs; levels never exceed 255, so a run's value
//! takes one byte). Also the two pieces the other encodings of this writer share with it:
//! varints and bit packing.

/// Appends one level stream of a version-1 page: its length (4 bytes, little-endian), then the
/// RLE/bit-packed hybrid encoding `encode` appends.
pub(super) fn encode_levels(page: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) {
    let start = page.len();
    page.extend_from_slice(&[0; 4]);
    encode(page);
    let len = (page.len() - start - 4) as u32;
    page[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// One RLE run: `count` times `level`. Levels here never exceed 255, so the value takes one byte.
pub(super) fn rle_run(out: &mut Vec<u8>, count: usize, level: i16) {
    if count == 0 {
        return;
    }
    put_varint(out, (count as u64) << 1);
    out.push(level as u8);
}

/// Packs `numbers` of `width` bits each (0 to 64), least significant bit first, as the
/// bit-packed runs of the RLE/bit-packed hybrid and the miniblocks of DELTA_BINARY_PACKED lay
/// them out. `numbers.len() * width` must be a multiple of 8 (whole groups of 8 numbers, or
/// miniblocks of 32).
pub(super) fn pack_bits(numbers: &[u64], width: usize, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mut word = 0u64;
    let mut bits = 0usize;
    for &n in numbers {
        word |= n << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&word.to_le_bytes());
            bits -= 64;
            // The high bits of `n` that did not fit (none when it ended exactly at the word).
            word = if bits == 0 { 0 } else { n >> (width - bits) };
        }
    }
    // The numbers end on a byte boundary.
    out.extend_from_slice(&word.to_le_bytes()[..bits / 8]);
}

/// Appends `value` as an unsigned LEB128 varint: the run headers of the RLE/bit-packed hybrid,
/// and the numbers of DELTA_BINARY_PACKED headers.
pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Repetition levels of `rows` non-null lists of `size` elements: each row is a 0 (new list)
/// followed by `size - 1` ones.
pub(super) fn rep_levels_of_full_rows(out: &mut Vec<u8>, rows: usize, size: usize) {
    if size == 1 {
        rle_run(out, rows, 0);
        return;
    }
    for _ in 0..rows {
        rle_run(out, 1, 0);
        rle_run(out, size - 1, 1);
    }
}

/// Any sequence of levels, as RLE runs of equal values.
pub(super) fn rle_levels(out: &mut Vec<u8>, levels: &[i16]) {
    let mut i = 0;
    while i < levels.len() {
        let run = levels[i..].iter().take_while(|&&l| l == levels[i]).count();
        rle_run(out, run, levels[i]);
        i += run;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_runs_encode_as_the_format_says() {
        let mut out = Vec::new();
        rle_run(&mut out, 200, 3);
        // 200 << 1 = 400 = 0b1_1001_0000 as ULEB128: 0x90 0x03, then the value.
        assert_eq!(out, [0x90, 0x03, 3]);
        out.clear();
        rle_levels(&mut out, &[0, 1, 1, 0]);
        assert_eq!(out, [2, 0, 4, 1, 2, 0]);
        let mut page = Vec::new();
        encode_levels(&mut page, |out| rep_levels_of_full_rows(out, 2, 3));
        assert_eq!(page, [8, 0, 0, 0, 2, 0, 4, 1, 2, 0, 4, 1]);
    }
}
