//! A bounds-checked reader over one serialized message.

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
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "message is shorter than its definition requires"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes left over after decoding the definition"),
            DecodeError::TooLarge => write!(f, "a value exceeds 2 GiB in one batch"),
            DecodeError::TooManyEmptyElements => write!(
                f,
                "more than {MAX_EMPTY_ELEMENTS} elements of empty message types in one message"
            ),
        }
    }
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
    /// Set when a string field was not valid UTF-8 (stored lossily; the raw message is kept).
    pub invalid_utf8: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor {
            buf,
            pos: 0,
            empty_elements: 0,
            invalid_utf8: false,
        }
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

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
