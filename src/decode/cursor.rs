//! A bounds-checked reader over one serialized message: ROS1 serialization (little-endian, packed)
//! or CDR as ROS 2 writes it (4-byte encapsulation header, either byte order, values aligned to
//! their size from the end of that header).

/// Why a message's bytes did not match its definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended before the definition was satisfied.
    Truncated,
    /// Bytes were left over after the definition was satisfied.
    TrailingBytes(usize),
    /// A value too large for the column's 32-bit offsets.
    TooLarge,
    /// More elements of zero-byte types (empty messages) than any real message holds.
    TooManyEmptyElements,
    /// A CDR payload whose encapsulation header names a representation we do not decode.
    UnsupportedEncapsulation(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "message is shorter than its definition requires"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes left over after decoding the definition"),
            DecodeError::TooLarge => write!(f, "a value exceeds 2 GiB in one batch"),
            DecodeError::UnsupportedEncapsulation(kind) => write!(
                f,
                "CDR encapsulation kind {kind:#04x} is not decoded (plain CDR and XCDR2 are)"
            ),
            DecodeError::TooManyEmptyElements => write!(
                f,
                "more than {MAX_EMPTY_ELEMENTS} elements of empty message types in one message"
            ),
        }
    }
}

/// CDR state: where alignment is counted from, byte order, largest alignment.
#[derive(Debug, Clone, Copy)]
struct Cdr {
    origin: usize,
    big_endian: bool,
    max_align: usize,
}

/// Most elements of zero-byte types (arrays of empty messages) one message may hold. Their
/// count cannot be checked against the bytes left, so without a cap a corrupt length (4 billion
/// empty elements) would spin for minutes.
pub const MAX_EMPTY_ELEMENTS: usize = 1 << 20;

/// Reads little-endian values from a byte slice, never past its end.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Zero-byte elements decoded so far (bounded by [`MAX_EMPTY_ELEMENTS`]).
    empty_elements: usize,
    /// Set for CDR payloads.
    cdr: Option<Cdr>,
    /// Set when a string field was not valid UTF-8 (stored lossily; the raw message is kept).
    pub invalid_utf8: bool,
    /// The buffer `buf` lies in, when it can be shared: large byte arrays then point into it
    /// instead of being copied.
    shared: Option<&'a arrow::buffer::Buffer>,
    /// Set when a decoded value points into `shared`.
    pub shared_used: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor {
            buf,
            pos: 0,
            empty_elements: 0,
            cdr: None,
            invalid_utf8: false,
            shared: None,
            shared_used: false,
        }
    }

    /// Lets byte arrays refer to `shared`, the buffer this cursor's bytes lie in.
    pub fn sharing(mut self, shared: Option<&'a arrow::buffer::Buffer>) -> Self {
        self.shared = shared;
        self
    }

    /// The buffer set by [`Cursor::sharing`].
    pub fn shared(&self) -> Option<&'a arrow::buffer::Buffer> {
        self.shared
    }

    /// A cursor over a CDR payload: reads the encapsulation header (plain CDR or XCDR2, big- or
    /// little-endian) and positions after it.
    pub fn cdr(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let header = buf.get(..4).ok_or(DecodeError::Truncated)?;
        let (big_endian, max_align) = match header[1] {
            0x00 => (true, 8),
            0x01 => (false, 8),
            // XCDR2 plain: 8-byte values align to 4.
            0x06 => (true, 4),
            0x07 => (false, 4),
            other => return Err(DecodeError::UnsupportedEncapsulation(other)),
        };
        Ok(Cursor {
            buf,
            pos: 4,
            empty_elements: 0,
            cdr: Some(Cdr {
                origin: 4,
                big_endian,
                max_align,
            }),
            invalid_utf8: false,
            shared: None,
            shared_used: false,
        })
    }

    pub fn is_cdr(&self) -> bool {
        self.cdr.is_some()
    }

    pub fn big_endian(&self) -> bool {
        self.cdr.is_some_and(|c| c.big_endian)
    }

    /// Skips CDR padding so that a value of `size` bytes starts aligned. No-op for ROS1.
    pub fn align(&mut self, size: usize) -> Result<(), DecodeError> {
        if let Some(cdr) = self.cdr {
            let align = size.min(cdr.max_align).max(1);
            let misalign = (self.pos - cdr.origin) % align;
            if misalign != 0 {
                self.take(align - misalign)?;
            }
        }
        Ok(())
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Accounts for `count` elements of a type that may take no bytes.
    pub fn charge_empty_elements(&mut self, count: usize) -> Result<(), DecodeError> {
        self.empty_elements = self.empty_elements.saturating_add(count);
        if self.empty_elements > MAX_EMPTY_ELEMENTS {
            return Err(DecodeError::TooManyEmptyElements);
        }
        Ok(())
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A u32 (lengths, counts, time parts), aligned and in the payload's byte order.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.align(4)?;
        let b = self.take(4)?;
        let bytes = [b[0], b[1], b[2], b[3]];
        Ok(if self.big_endian() { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ros1_reads_are_little_endian_packed_and_bounds_checked() {
        let bytes = [7u8, 1, 0, 0, 0, 9];
        let mut cur = Cursor::new(&bytes);
        assert_eq!(cur.u8(), Ok(7));
        cur.align(4).unwrap(); // no padding in ROS1
        assert_eq!(cur.u32(), Ok(1));
        assert_eq!(cur.remaining(), 1);
        assert_eq!(cur.take(2), Err(DecodeError::Truncated));
        assert_eq!(cur.remaining(), 1, "a failed take consumes nothing");
        assert_eq!(cur.take(usize::MAX), Err(DecodeError::Truncated), "no overflow on huge lengths");
    }

    #[test]
    fn cdr_aligns_from_the_end_of_the_header_in_either_byte_order() {
        // Little-endian plain CDR: a u8, three bytes of padding, then a u32.
        let le = [0u8, 0x01, 0, 0, 5, 0xAA, 0xAA, 0xAA, 2, 0, 0, 0];
        let mut cur = Cursor::cdr(&le).unwrap();
        assert!(cur.is_cdr() && !cur.big_endian());
        assert_eq!((cur.u8(), cur.u32()), (Ok(5), Ok(2)));
        let be = [0u8, 0x00, 0, 0, 0, 0, 0, 3];
        let mut cur = Cursor::cdr(&be).unwrap();
        assert!(cur.big_endian());
        assert_eq!(cur.u32(), Ok(3));
    }

    #[test]
    fn unknown_encapsulations_and_short_headers_are_refused() {
        assert_eq!(Cursor::cdr(&[0, 0x0A, 0, 0]).err(), Some(DecodeError::UnsupportedEncapsulation(0x0A)));
        assert_eq!(Cursor::cdr(&[0, 1]).err(), Some(DecodeError::Truncated));
    }

    #[test]
    fn empty_elements_are_capped() {
        let mut cur = Cursor::new(&[]);
        cur.charge_empty_elements(MAX_EMPTY_ELEMENTS).unwrap();
        assert_eq!(cur.charge_empty_elements(1), Err(DecodeError::TooManyEmptyElements));
        assert!(DecodeError::TooManyEmptyElements.to_string().contains(&MAX_EMPTY_ELEMENTS.to_string()));
    }
}
