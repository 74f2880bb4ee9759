//! Pages in which every row holds the same values: covariance matrices that a driver fills with
//! one constant matrix, fields that are always zero. They are stored dictionary-encoded: the
//! row's distinct values once in the chunk's dictionary page, and per page only the dictionary
//! indices, a pattern of a few bits that repeats with the row. Writing them costs one
//! comparison of the page with itself shifted by a row, instead of compressing every value
//! (which zstd otherwise does for every constant covariance matrix of an IMU topic).
//!
//! The indices are one run of the RLE / bit-packing hybrid (Parquet format, `Encodings.md`),
//! after the one-byte bit width that starts a dictionary-encoded data page: an RLE run when the
//! row has a single distinct value, else one bit-packed run whose bytes repeat every
//! `lcm(values per row, 8)` values, so they are copied from one period.

use super::levels::{pack_bits, put_varint};

/// Rows of more values than this are not dictionary-encoded (the dictionary is searched
/// linearly once per chunk).
const MAX_ROW_VALUES: usize = 256;

/// True when `values` (whole rows of `row_bytes` each) repeat their first row throughout.
pub(super) fn repeats_first_row(values: &[u8], row_bytes: usize) -> bool {
    row_bytes > 0 && values.len() >= row_bytes && values[row_bytes..] == values[..values.len() - row_bytes]
}

/// The dictionary of a chunk whose pages repeat one row.
pub(super) struct RowDictionary {
    /// The repeated row as stored: its values, little-endian.
    row: Vec<u8>,
    /// The row's distinct values (by their bytes), PLAIN: the dictionary page.
    entries: Vec<u8>,
    entry_count: usize,
    bit_width: u8,
    /// The bit-packed indices of `lcm(values per row, 8)` values: whole bytes, whole rows.
    period: Vec<u8>,
}

impl RowDictionary {
    /// The dictionary of `row` (values of `width` bytes), or `None` for rows too long to be
    /// worth it.
    pub(super) fn new(row: &[u8], width: usize) -> Option<RowDictionary> {
        let values: Vec<&[u8]> = row.chunks_exact(width).collect();
        if values.is_empty() || values.len() > MAX_ROW_VALUES || row.len() % width != 0 {
            return None;
        }
        let mut distinct: Vec<&[u8]> = Vec::new();
        let indices: Vec<u64> = values
            .iter()
            .map(|value| match distinct.iter().position(|d| d == value) {
                Some(index) => index as u64,
                None => {
                    distinct.push(value);
                    (distinct.len() - 1) as u64
                }
            })
            .collect();
        // One bit even for a single entry: some readers take a width of 0 as corrupt.
        let bit_width = (u64::BITS - (distinct.len() as u64 - 1).leading_zeros()).max(1) as u8;
        let period_values = lcm(values.len(), 8);
        let mut period = Vec::with_capacity(period_values * usize::from(bit_width) / 8);
        let period_indices: Vec<u64> = indices.iter().cycle().take(period_values).copied().collect();
        pack_bits(&period_indices, usize::from(bit_width), &mut period);
        Some(RowDictionary {
            row: row.to_vec(),
            entries: distinct.concat(),
            entry_count: distinct.len(),
            bit_width,
            period,
        })
    }

    /// True when every row of `values` is this dictionary's row.
    pub(super) fn matches(&self, values: &[u8]) -> bool {
        values.starts_with(&self.row) && repeats_first_row(values, self.row.len())
    }

    /// The dictionary page's values (PLAIN) and their number.
    pub(super) fn page(&self) -> (&[u8], usize) {
        (&self.entries, self.entry_count)
    }

    /// The repeated row, for the page statistics: its minimum and maximum are the page's.
    pub(super) fn row(&self) -> &[u8] {
        &self.row
    }

    /// Appends the values part of a dictionary-encoded data page of `count` values (whole rows):
    /// the bit width, then the indices.
    pub(super) fn encode_indices(&self, count: usize, out: &mut Vec<u8>) {
        out.push(self.bit_width);
        if self.entry_count == 1 {
            put_varint(out, (count as u64) << 1);
            // The index 0, in the bytes its bit width takes.
            out.resize(out.len() + usize::from(self.bit_width).div_ceil(8), 0);
            return;
        }
        let groups = count.div_ceil(8);
        put_varint(out, ((groups as u64) << 1) | 1);
        let mut remaining = groups * usize::from(self.bit_width);
        while remaining > 0 {
            let take = remaining.min(self.period.len());
            out.extend_from_slice(&self.period[..take]);
            remaining -= take;
        }
    }
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Decodes one run of the hybrid encoding as the format describes it, bit by bit.
    fn decode_indices(page: &[u8], count: usize) -> Vec<u64> {
        let bit_width = usize::from(page[0]);
        let (mut header, mut at, mut shift) = (0u64, 1, 0);
        loop {
            let b = page[at];
            at += 1;
            header |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        if header & 1 == 0 {
            assert_eq!(header >> 1, count as u64, "an RLE run of every value");
            assert!(page[at..].iter().all(|&b| b == 0));
            return vec![0; count];
        }
        let groups = (header >> 1) as usize;
        assert_eq!(groups, count.div_ceil(8));
        assert_eq!(page.len() - at, groups * bit_width, "the run is as long as its header says");
        (0..count)
            .map(|i| (0..bit_width).fold(0, |n, k| n | (u64::from((page[at + (i * bit_width + k) / 8] >> ((i * bit_width + k) % 8)) & 1) << k)))
            .collect()
    }

    #[test]
    fn a_repeated_row_is_found_and_encoded_as_its_dictionary_indices() {
        // A covariance row with three distinct values (and both zeros, which are distinct
        // bytes), repeated over 1,001 rows: not a multiple of 8 values.
        let row = bytes(&[0.01, 0.0, -0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.02]);
        let page: Vec<u8> = row.iter().copied().cycle().take(row.len() * 1_001).collect();
        assert!(repeats_first_row(&page, row.len()));
        let dictionary = RowDictionary::new(&row, 8).unwrap();
        assert!(dictionary.matches(&page));
        let (entries, count) = dictionary.page();
        assert_eq!((entries, count), (&bytes(&[0.01, 0.0, -0.0, 0.02])[..], 4));

        let mut out = vec![0xAB];
        dictionary.encode_indices(9 * 1_001, &mut out);
        assert_eq!(out[0], 0xAB);
        let indices = decode_indices(&out[1..], 9 * 1_001);
        let expected: Vec<u64> = [0, 1, 2, 1, 0, 1, 1, 1, 3].into_iter().cycle().take(9 * 1_001).collect();
        assert_eq!(indices, expected);
    }

    #[test]
    fn a_constant_column_is_one_run_and_anything_else_is_not_taken_for_repeated() {
        let value = bytes(&[3.5]);
        let page: Vec<u8> = value.iter().copied().cycle().take(8 * 77).collect();
        let dictionary = RowDictionary::new(&value, 8).unwrap();
        let mut out = Vec::new();
        dictionary.encode_indices(77, &mut out);
        assert_eq!(decode_indices(&out, 77), vec![0; 77]);
        assert!(dictionary.matches(&page));

        // One value changed, in the last row or the first: not repeated, and not this
        // dictionary's page.
        let row = bytes(&[1.0, 2.0]);
        let mut page: Vec<u8> = row.iter().copied().cycle().take(16 * 50).collect();
        let last = page.len() - 1;
        page[last] ^= 1;
        assert!(!repeats_first_row(&page, 16));
        let other = bytes(&[1.0, 2.5]).repeat(50);
        assert!(repeats_first_row(&other, 16));
        assert!(!RowDictionary::new(&row, 8).unwrap().matches(&other));
        // Rows too long for a linear search are left to the plain path.
        assert!(RowDictionary::new(&bytes(&[0.0; 300]), 8).is_none());
    }
}
