//! Low-level framing of ROS1 bag records: `header_len | header | data_len | data`, where the
//! header is a list of `field_len | name=value` entries. Everything here works on byte slices and
//! returns `None` or an error string instead of panicking, whatever the input.

/// Record kinds (`op` header field) of the ROS bag 2.0 format.
pub mod op {
    pub const MESSAGE_DATA: u8 = 0x02;
    pub const BAG_HEADER: u8 = 0x03;
    pub const INDEX_DATA: u8 = 0x04;
    pub const CHUNK: u8 = 0x05;
    pub const CHUNK_INFO: u8 = 0x06;
    pub const CONNECTION: u8 = 0x07;
}

/// Parsed `name=value` fields of a record header (borrowed from the bag bytes).
#[derive(Debug, Default, Clone)]
pub struct Fields<'a> {
    entries: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Fields<'a> {
    /// Parses a header block. Fails on a field whose length runs past the block or that has no `=`.
    pub fn parse(mut bytes: &'a [u8]) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(6);
        while !bytes.is_empty() {
            let len = read_u32(bytes, 0).ok_or("header field length is cut off")? as usize;
            let body = bytes
                .get(4..4 + len)
                .ok_or_else(|| format!("header field of {len} bytes runs past its header"))?;
            let eq = body
                .iter()
                .position(|&b| b == b'=')
                .ok_or("header field without '='")?;
            entries.push((&body[..eq], &body[eq + 1..]));
            bytes = &bytes[4 + len..];
        }
        Ok(Fields { entries })
    }

    /// The raw value of a field, if present.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }

    pub fn op(&self) -> Option<u8> {
        self.get("op").and_then(|v| v.first().copied())
    }

    pub fn u32(&self, name: &str) -> Result<u32, String> {
        let v = self.require(name)?;
        if v.len() != 4 {
            return Err(format!("field '{name}' has {} bytes, expected 4", v.len()));
        }
        Ok(u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    }

    pub fn u64(&self, name: &str) -> Result<u64, String> {
        let v = self.require(name)?;
        let arr: [u8; 8] = v
            .try_into()
            .map_err(|_| format!("field '{name}' has {} bytes, expected 8", v.len()))?;
        Ok(u64::from_le_bytes(arr))
    }

    /// A ROS `time` field (u32 seconds, u32 nanoseconds) as nanoseconds since the epoch.
    pub fn time(&self, name: &str) -> Result<u64, String> {
        let v = self.require(name)?;
        if v.len() != 8 {
            return Err(format!("field '{name}' has {} bytes, expected 8", v.len()));
        }
        Ok(time_from_bytes(v))
    }

    pub fn string(&self, name: &str) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.require(name)?).into_owned())
    }

    pub fn optional_string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn require(&self, name: &str) -> Result<&'a [u8], String> {
        self.get(name)
            .ok_or_else(|| format!("header field '{name}' is missing"))
    }
}

/// One framed record inside a byte buffer.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub header: Fields<'a>,
    pub data: &'a [u8],
    /// Offset of the byte after this record within the buffer it was read from.
    pub end: usize,
}

/// Outcome of trying to read a record at some offset.
#[derive(Debug)]
pub enum ReadOutcome<'a> {
    /// A complete, well-formed record.
    Record(Record<'a>),
    /// The buffer ends exactly here.
    End,
    /// The buffer ends in the middle of a record (torn file). `header` is present when at least
    /// the whole header could be read, `data_available` is what exists of its data.
    Truncated {
        header: Option<Fields<'a>>,
        data_start: usize,
        declared_data_len: usize,
    },
    /// The bytes are not a record.
    Invalid(String),
}

/// Reads one record starting at `pos` of `buf`.
pub fn read_record(buf: &[u8], pos: usize) -> ReadOutcome<'_> {
    if pos == buf.len() {
        return ReadOutcome::End;
    }
    let Some(header_len) = read_u32(buf, pos) else {
        return ReadOutcome::Truncated {
            header: None,
            data_start: buf.len(),
            declared_data_len: 0,
        };
    };
    let header_len = header_len as usize;
    let header_start = pos + 4;
    let Some(header_end) = header_start.checked_add(header_len) else {
        return ReadOutcome::Invalid(format!("header length {header_len} overflows"));
    };
    if header_end > buf.len() {
        return ReadOutcome::Truncated {
            header: None,
            data_start: buf.len(),
            declared_data_len: 0,
        };
    }
    let header = match Fields::parse(&buf[header_start..header_end]) {
        Ok(h) => h,
        Err(e) => return ReadOutcome::Invalid(e),
    };
    if header.op().is_none() {
        return ReadOutcome::Invalid("record header has no 'op' field".into());
    }
    let Some(data_len) = read_u32(buf, header_end) else {
        return ReadOutcome::Truncated {
            header: Some(header),
            data_start: buf.len(),
            declared_data_len: 0,
        };
    };
    let data_len = data_len as usize;
    let data_start = header_end + 4;
    let data_end = data_start.saturating_add(data_len);
    if data_end > buf.len() {
        return ReadOutcome::Truncated {
            header: Some(header),
            data_start,
            declared_data_len: data_len,
        };
    }
    ReadOutcome::Record(Record {
        header,
        data: &buf[data_start..data_end],
        end: data_end,
    })
}

/// A message data record read by [`read_message_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRecord<'a> {
    pub conn: u32,
    /// Record time, nanoseconds since the epoch.
    pub time: u64,
    pub data: &'a [u8],
    /// Offset of the byte after the record.
    pub end: usize,
}

/// Reads the message data record at `pos` when its header is exactly the fields `op`, `conn` and
/// `time` (in any order; the layout every bag writer uses), without the general header parser:
/// most records of a chunk are these, and parsing their headers field by field into a list is
/// a large share of ingesting a small-message drive. `None` for anything else (another layout,
/// another record kind, a cut record): [`read_record`] then reads it and reports problems.
#[inline]
pub fn read_message_record(buf: &[u8], pos: usize) -> Option<MessageRecord<'_>> {
    // 4 + "op=" + 1, 4 + "conn=" + 4, 4 + "time=" + 8.
    const HEADER_LEN: usize = 8 + 13 + 17;
    if read_u32(buf, pos)? as usize != HEADER_LEN {
        return None;
    }
    let header_end = pos.checked_add(4 + HEADER_LEN)?;
    let header = buf.get(pos + 4..header_end)?;
    let (mut op, mut conn, mut time) = (false, None, None);
    let mut at = 0;
    for _ in 0..3 {
        let len = read_u32(header, at)? as usize;
        let field = header.get(at + 4..(at + 4).checked_add(len)?)?;
        match field {
            [b'o', b'p', b'=', op::MESSAGE_DATA] => op = true,
            [b'c', b'o', b'n', b'n', b'=', a, b, c, d] => conn = Some(u32::from_le_bytes([*a, *b, *c, *d])),
            [b't', b'i', b'm', b'e', b'=', stamp @ ..] if stamp.len() == 8 => time = Some(time_from_bytes(stamp)),
            _ => return None,
        }
        at += 4 + len;
    }
    let (true, Some(conn), Some(time)) = (op, conn, time) else { return None };
    let data_len = read_u32(buf, header_end)? as usize;
    let data_start = header_end + 4;
    let end = data_start.checked_add(data_len)?;
    Some(MessageRecord { conn, time, data: buf.get(data_start..end)?, end })
}

/// Little-endian u32 at `pos`, or `None` when fewer than 4 bytes remain.
pub fn read_u32(buf: &[u8], pos: usize) -> Option<u32> {
    let b = buf.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Converts 8 bytes of ROS `time` (u32 sec, u32 nsec) to nanoseconds.
pub fn time_from_bytes(v: &[u8]) -> u64 {
    let sec = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as u64;
    let nsec = u32::from_le_bytes([v[4], v[5], v[6], v[7]]) as u64;
    sec * 1_000_000_000 + nsec
}

/// Encodes nanoseconds as ROS `time` bytes.
pub fn time_to_bytes(ns: u64) -> [u8; 8] {
    let sec = (ns / 1_000_000_000) as u32;
    let nsec = (ns % 1_000_000_000) as u32;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&sec.to_le_bytes());
    out[4..].copy_from_slice(&nsec.to_le_bytes());
    out
}

/// Appends one `name=value` header field to `out`.
pub fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    let len = (name.len() + 1 + value.len()) as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}

/// Appends a full record (header fields already encoded) to `out`.
pub fn push_record(out: &mut Vec<u8>, header: &[u8], data: &[u8]) {
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_record_and_its_fields() {
        let mut header = Vec::new();
        push_field(&mut header, "op", &[op::MESSAGE_DATA]);
        push_field(&mut header, "conn", &7u32.to_le_bytes());
        push_field(&mut header, "time", &time_to_bytes(1_500_000_000_123_456_789));
        let mut buf = Vec::new();
        push_record(&mut buf, &header, b"payload");
        let ReadOutcome::Record(rec) = read_record(&buf, 0) else {
            panic!("expected a record")
        };
        assert_eq!(rec.header.op(), Some(op::MESSAGE_DATA));
        assert_eq!(rec.header.u32("conn").unwrap(), 7);
        assert_eq!(rec.header.time("time").unwrap(), 1_500_000_000_123_456_789);
        assert_eq!(rec.data, b"payload");
        assert_eq!(rec.end, buf.len());
        assert!(matches!(read_record(&buf, buf.len()), ReadOutcome::End));
    }

    #[test]
    fn headers_with_many_fields_keep_them_all_and_the_first_of_a_name_wins() {
        let mut header = Vec::new();
        for i in 0..12u32 {
            push_field(&mut header, &format!("f{i}"), &i.to_le_bytes());
        }
        push_field(&mut header, "f3", &99u32.to_le_bytes());
        let fields = Fields::parse(&header).unwrap();
        for i in 0..12u32 {
            assert_eq!(fields.u32(&format!("f{i}")).unwrap(), i);
        }
        assert!(fields.get("f12").is_none());
    }

    /// A message data record with its header fields in `order` (names of op, conn, time) and
    /// any `extra` fields after them.
    fn message_record(order: [&str; 3], extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut header = Vec::new();
        for name in order {
            match name {
                "op" => push_field(&mut header, "op", &[op::MESSAGE_DATA]),
                "conn" => push_field(&mut header, "conn", &7u32.to_le_bytes()),
                _ => push_field(&mut header, "time", &time_to_bytes(1_500_000_000_123_456_789)),
            }
        }
        for (name, value) in extra {
            push_field(&mut header, name, value);
        }
        let mut out = vec![0xEE]; // a record that does not start at 0
        push_record(&mut out, &header, b"payload");
        out
    }

    #[test]
    fn message_records_read_fast_in_any_field_order_and_like_the_general_reader() {
        let orders = [["op", "conn", "time"], ["conn", "op", "time"], ["time", "conn", "op"], ["conn", "time", "op"]];
        for order in orders {
            let buf = message_record(order, &[]);
            let fast = read_message_record(&buf, 1).expect("fast path");
            assert_eq!(fast, MessageRecord { conn: 7, time: 1_500_000_000_123_456_789, data: b"payload", end: buf.len() });
            let ReadOutcome::Record(general) = read_record(&buf, 1) else { panic!("general reader") };
            assert_eq!((general.header.u32("conn").unwrap(), general.header.time("time").unwrap()), (fast.conn, fast.time));
            assert_eq!((general.data, general.end), (fast.data, fast.end));
            // Cut anywhere: not read fast (the general reader reports it).
            for cut in 1..buf.len() {
                assert_eq!(read_message_record(&buf[..cut], 1), None, "cut at {cut}");
            }
        }
        // Other layouts are left to the general reader.
        assert_eq!(read_message_record(&message_record(["op", "conn", "time"], &[("x", b"1")]), 1), None);
        let mut connection = Vec::new();
        push_field(&mut connection, "op", &[op::CONNECTION]);
        push_field(&mut connection, "conn", &7u32.to_le_bytes());
        push_field(&mut connection, "topic", b"/abcdef");
        let mut buf = Vec::new();
        push_record(&mut buf, &connection, b"");
        assert_eq!(connection.len(), 38, "same header length as a message record");
        assert_eq!(read_message_record(&buf, 0), None);
    }

    #[test]
    fn every_truncation_is_reported_not_panicking() {
        let mut header = Vec::new();
        push_field(&mut header, "op", &[op::CHUNK]);
        let mut buf = Vec::new();
        push_record(&mut buf, &header, &[1, 2, 3, 4, 5]);
        for cut in 1..buf.len() {
            let outcome = read_record(&buf[..cut], 0);
            assert!(
                matches!(outcome, ReadOutcome::Truncated { .. }),
                "cut at {cut}: {outcome:?}"
            );
        }
    }

    #[test]
    fn field_length_past_header_is_invalid() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&8u32.to_le_bytes());
        buf.extend_from_slice(&100u32.to_le_bytes());
        buf.extend_from_slice(b"op=\x02");
        buf.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(read_record(&buf, 0), ReadOutcome::Invalid(_)));
    }
}
