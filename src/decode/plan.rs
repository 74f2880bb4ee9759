//! Compiling a parsed definition into a decode plan: the tree of [`Column`] builders for one
//! connection, and decoding whole messages into it with all-or-nothing row semantics.

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Fields};

use super::column::{Bytes, Column, EMPTY_MESSAGE_MEMBER};
use super::cursor::{Cursor, DecodeError};
use super::views::ByteViews;
use super::definition::{Arity, FieldType, MessageDef, Primitive, Registry};
use super::definition::{DefinitionError, Result};

/// Builders for every field of one message type. One instance per (connection, batch).
#[derive(Debug, Clone)]
pub struct MessageColumns {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    rows: usize,
    /// Messages are CDR (ROS 2) rather than ROS1-serialized.
    cdr: bool,
    /// Some value decoded since [`MessageColumns::take_shared_use`] points into a shared buffer.
    shared_used: bool,
}

/// The result of decoding one message.
pub enum Decoded {
    Ok,
    /// Decoded, but a string field was not valid UTF-8 (kept lossily; keep the raw bytes too).
    LossyUtf8,
}

impl MessageColumns {
    /// Compiles the root type of `registry` into builders.
    pub fn compile(registry: &Registry) -> Result<Self> {
        let root = registry.root();
        let columns = root
            .fields
            .iter()
            .map(|f| top_level_column(registry, root, f))
            .collect::<Result<Vec<_>>>()?;
        Ok(MessageColumns {
            names: root.fields.iter().map(|f| f.name.clone()).collect(),
            columns,
            rows: 0,
            cdr: false,
            shared_used: false,
        })
    }

    /// Compiles the root type of `registry` (a ROS 2 definition) for CDR-encoded messages.
    pub fn compile_cdr(registry: &Registry) -> Result<Self> {
        let mut columns = Self::compile(registry)?;
        columns.cdr = true;
        Ok(columns)
    }

    /// Compiles the decoder for one connection's messages, by its encoding: ROS1 definitions and
    /// serialization, or ROS 2 definitions and CDR. Other encodings are an error (kept raw).
    pub fn for_connection(conn: &crate::bag::Connection) -> Result<Self> {
        use crate::bag::Encoding;
        match &conn.encoding {
            Encoding::Ros1 => Self::compile(&Registry::parse(&conn.msg_type, &conn.definition)?),
            Encoding::Ros2Cdr => Self::compile_cdr(&Registry::parse_ros2(&conn.msg_type, &conn.definition)?),
            Encoding::Ros2Idl => {
                let text = super::idl::idl_to_msg(&conn.msg_type, &conn.definition)
                    .map_err(|reason| DefinitionError::BadLine { msg_type: conn.msg_type.clone(), block: "its IDL".into(), reason })?;
                Self::compile_cdr(&Registry::parse_ros2(&conn.msg_type, &text)?)
            }
            Encoding::Unsupported(what) => Err(DefinitionError::UnsupportedEncoding { msg_type: conn.msg_type.clone(), what: what.clone() }),
            Encoding::MissingDefinition(reason) => Err(DefinitionError::MissingDefinition { reason: reason.clone() }),
        }
    }

    /// Builders for a message with no fields (used when a definition cannot be understood).
    pub fn empty() -> Self {
        MessageColumns {
            names: Vec::new(),
            columns: Vec::new(),
            rows: 0,
            cdr: false,
            shared_used: false,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn heap_bytes(&self) -> usize {
        self.columns.iter().map(Column::heap_bytes).sum()
    }

    /// Reserves room for `rows` more messages, at most `max_bytes` of it (see [`Column::reserve`]).
    pub fn reserve(&mut self, rows: usize, max_bytes: usize) {
        let row_bytes = self.columns.iter().fold(0usize, |sum, c| sum.saturating_add(c.fixed_value_bytes()));
        let rows = rows.min(max_bytes / row_bytes.max(1));
        self.columns.iter_mut().for_each(|c| c.reserve(rows));
    }

    /// Arrow fields of the message's top-level columns.
    pub fn fields(&self) -> Fields {
        self.names
            .iter()
            .zip(&self.columns)
            .map(|(n, c)| Field::new(n, c.data_type(), true))
            .collect()
    }

    /// Decodes one message. On any mismatch nothing is appended (the row is rolled back).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        self.decode_in(bytes, None)
    }

    /// [`MessageColumns::decode`] for a message that lies in `shared`: large byte arrays then
    /// refer to it instead of being copied (the arrays keep it alive).
    pub fn decode_in(&mut self, bytes: &[u8], shared: Option<&arrow::buffer::Buffer>) -> Result<Decoded, DecodeError> {
        let cur = if self.cdr { Cursor::cdr(bytes)? } else { Cursor::new(bytes) };
        let mut cur = cur.sharing(shared);
        let mut result = Ok(());
        if self.cdr && self.columns.is_empty() {
            // An empty ROS 2 message still has its placeholder byte.
            result = cur.u8().map(|_| ());
        }
        for col in self.columns.iter_mut() {
            if result.is_err() {
                break;
            }
            result = col.decode(&mut cur);
        }
        // CDR writers may pad the payload to a multiple of 4 bytes.
        let allowed_padding = if self.cdr { 3 } else { 0 };
        if result.is_ok() && cur.remaining() > allowed_padding {
            result = Err(DecodeError::TrailingBytes(cur.remaining()));
        }
        match result {
            Ok(()) => {
                self.rows += 1;
                self.shared_used |= cur.shared_used;
                Ok(if cur.invalid_utf8 { Decoded::LossyUtf8 } else { Decoded::Ok })
            }
            Err(e) => {
                for col in self.columns.iter_mut() {
                    col.truncate(self.rows);
                }
                Err(e)
            }
        }
    }

    /// Whether a value decoded since the last call points into a buffer given to
    /// [`MessageColumns::decode_in`] (which must then stay readable until the rows are written).
    pub fn take_shared_use(&mut self) -> bool {
        std::mem::take(&mut self.shared_used)
    }

    /// Moves the decoded rows out as arrays (one per top-level field).
    pub fn finish(&mut self) -> Result<Vec<ArrayRef>, arrow::error::ArrowError> {
        self.rows = 0;
        self.columns.iter_mut().map(Column::finish).collect()
    }
}

/// The column of one field of the root message: as [`field_column`], except that a variable
/// byte array (an image, a point cloud) may share the bag's memory.
fn top_level_column(registry: &Registry, owner: &MessageDef, field: &super::definition::Field) -> Result<Column> {
    match (&field.ty, field.arity) {
        (FieldType::Primitive(Primitive::UInt8), Arity::Variable) => Ok(Column::ByteArray(ByteViews::default())),
        _ => field_column(registry, owner, field),
    }
}

fn field_column(registry: &Registry, owner: &MessageDef, field: &super::definition::Field) -> Result<Column> {
    let element = || element_column(registry, owner, &field.ty);
    Ok(match (&field.ty, field.arity) {
        (FieldType::Primitive(Primitive::UInt8), Arity::Variable) => Column::Binary {
            fixed: None,
            values: Bytes::default(),
        },
        (FieldType::Primitive(Primitive::UInt8), Arity::Fixed(n)) => Column::Binary {
            fixed: Some(n),
            values: Bytes::default(),
        },
        (_, Arity::Single) => element()?,
        (_, Arity::Variable) => Column::List {
            offsets: vec![0],
            child: Box::new(element()?),
        },
        (_, Arity::Fixed(size)) => Column::FixedList {
            size,
            child: Box::new(element()?),
            rows: 0,
        },
    })
}

fn element_column(registry: &Registry, owner: &MessageDef, ty: &FieldType) -> Result<Column> {
    Ok(match ty {
        FieldType::Primitive(p) => primitive_column(*p),
        FieldType::Message(name) => {
            let msg = registry
                .get(name)
                .ok_or_else(|| DefinitionError::UndefinedType { msg_type: owner.full_name.clone(), name: name.clone() })?;
            if msg.fields.is_empty() {
                // Parquet cannot store a struct without fields (see Column::EmptyMessage).
                return Ok(Column::Struct {
                    names: vec![EMPTY_MESSAGE_MEMBER.to_string()],
                    children: vec![Column::EmptyMessage(Vec::new())],
                    rows: 0,
                });
            }
            let children = msg
                .fields
                .iter()
                .map(|f| field_column(registry, msg, f))
                .collect::<Result<Vec<_>>>()?;
            Column::Struct {
                names: msg.fields.iter().map(|f| f.name.clone()).collect(),
                children,
                rows: 0,
            }
        }
    })
}

fn primitive_column(p: Primitive) -> Column {
    match p {
        Primitive::Bool => Column::Bool(Vec::new()),
        Primitive::Int8 => Column::Int8(Vec::new()),
        Primitive::UInt8 => Column::UInt8(Vec::new()),
        Primitive::Int16 => Column::Int16(Vec::new()),
        Primitive::UInt16 => Column::UInt16(Vec::new()),
        Primitive::Int32 => Column::Int32(Vec::new()),
        Primitive::UInt32 => Column::UInt32(Vec::new()),
        Primitive::Int64 => Column::Int64(Vec::new()),
        Primitive::UInt64 => Column::UInt64(Vec::new()),
        Primitive::Float32 => Column::Float32(Vec::new()),
        Primitive::Float64 => Column::Float64(Vec::new()),
        Primitive::String => Column::Utf8(Bytes::default()),
        Primitive::Time => Column::Time(Vec::new()),
        Primitive::Duration => Column::Duration(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, UInt32Type};

    fn header_bytes(seq: u32, sec: u32, nsec: u32, frame: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&sec.to_le_bytes());
        b.extend_from_slice(&nsec.to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(frame.as_bytes());
        b
    }

    #[test]
    fn reserving_for_huge_nested_fixed_arrays_stays_bounded() {
        // 2^31 x 2^31 float64 per message: the byte count overflows usize unless it saturates.
        let def = "Inner[2147483647] outer\n====\nMSG: t/Inner\nfloat64[2147483647] values\n";
        let reg = Registry::parse("t/Huge", def).unwrap();
        let mut cols = MessageColumns::compile(&reg).unwrap();
        cols.reserve(1_000_000, 8 << 20);
        assert!(cols.heap_bytes() == 0 && cols.rows() == 0);
    }

    const DEF: &str = "Header header\nfloat64[2] xy\nuint8[] blob\n====\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n";

    #[test]
    fn decodes_and_rolls_back_bad_rows() {
        let reg = Registry::parse("t/M", DEF).unwrap();
        let mut cols = MessageColumns::compile(&reg).unwrap();
        let mut good = header_bytes(7, 10, 5, "map");
        good.extend_from_slice(&1.5f64.to_le_bytes());
        good.extend_from_slice(&(-2.0f64).to_le_bytes());
        good.extend_from_slice(&3u32.to_le_bytes());
        good.extend_from_slice(&[9, 8, 7]);
        assert!(cols.decode(&good).is_ok());
        // Cut inside the blob: must not leave a partial row behind.
        assert_eq!(cols.decode(&good[..good.len() - 1]).err(), Some(DecodeError::Truncated));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(cols.decode(&long).err(), Some(DecodeError::TrailingBytes(1)));
        assert!(cols.decode(&good).is_ok());
        assert_eq!(cols.rows(), 2);
        let arrays = cols.finish().unwrap();
        assert!(arrays.iter().all(|a| a.len() == 2));
        let header = arrays[0].as_struct();
        assert_eq!(header.column(0).as_primitive::<UInt32Type>().value(1), 7);
        let xy = arrays[1].as_fixed_size_list();
        assert_eq!(xy.values().as_primitive::<Float64Type>().values().len(), 4);
        assert_eq!(arrays[2].as_binary_view().value(0), &[9, 8, 7]);
    }

    #[test]
    fn top_level_byte_arrays_point_into_a_shared_message_and_nested_ones_are_copied() {
        let def = "uint8[] data
Inner inner
====
MSG: t/Inner
uint8[] data
";
        let reg = Registry::parse("t/Outer", def).unwrap();
        let mut cols = MessageColumns::compile(&reg).unwrap();
        let payload: Vec<u8> = (0..40).collect();
        let mut message = Vec::new();
        for _ in 0..2 {
            message.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            message.extend_from_slice(&payload);
        }
        let shared = arrow::buffer::Buffer::from_vec(message);
        assert!(cols.decode_in(shared.as_slice(), Some(&shared)).is_ok());
        assert!(cols.take_shared_use(), "the top-level array should point into the message");
        assert!(!cols.take_shared_use(), "the flag is cleared once taken");
        assert!(cols.decode(shared.as_slice()).is_ok());
        assert!(!cols.take_shared_use(), "without a shared buffer the value is copied");
        let arrays = cols.finish().unwrap();
        let top = arrays[0].as_binary_view();
        assert_eq!(top.value(0), payload.as_slice());
        assert_eq!(top.value(1), payload.as_slice());
        assert!(top.data_buffers().iter().any(|b| b.as_ptr() == shared.as_ptr()));
        let nested = arrays[1].as_struct().column(0).as_binary::<i32>();
        assert_eq!(nested.value(0), payload.as_slice());
    }

    #[test]
    fn billions_of_empty_elements_are_refused_quickly() {
        let registry = Registry::parse("pkg/Outer", "pkg/Empty[] items\n================\nMSG: pkg/Empty\n").unwrap();
        let mut cols = MessageColumns::compile(&registry).unwrap();
        assert_eq!(cols.decode(&u32::MAX.to_le_bytes()).err(), Some(DecodeError::TooManyEmptyElements));
        assert!(cols.decode(&3u32.to_le_bytes()).is_ok(), "a few empty elements are fine");
    }

    /// `uint8 a, int64[] xs, float64 d, string s, builtin_interfaces/Time t` as CDR in either
    /// byte order: padding before aligned values, none for an empty sequence's elements.
    fn cdr_sample(big_endian: bool, xs: &[i64]) -> Vec<u8> {
        let mut b = vec![0, if big_endian { 0 } else { 1 }, 0, 0];
        let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        b.push(7); // a
        b.extend([0; 3]); // pad to 4
        b.extend(u32b(xs.len() as u32));
        if !xs.is_empty() {
            while (b.len() - 4) % 8 != 0 {
                b.push(0);
            }
            for x in xs {
                b.extend(if big_endian { x.to_be_bytes() } else { x.to_le_bytes() });
            }
        }
        while (b.len() - 4) % 8 != 0 {
            b.push(0);
        }
        b.extend(if big_endian { 2.5f64.to_be_bytes() } else { 2.5f64.to_le_bytes() });
        b.extend(u32b(3));
        b.extend(b"hi\0");
        while (b.len() - 4) % 4 != 0 {
            b.push(0);
        }
        b.extend(u32b(1_700_000_000)); // sec
        b.extend(u32b(5)); // nanosec
        b
    }

    #[test]
    fn cdr_alignment_byte_order_and_time() {
        let registry = Registry::parse_ros2(
            "pkg/msg/T",
            "uint8 a 5\nint64[<=4] xs\nfloat64 d\nstring<=8 s \"x=y\"\nbuiltin_interfaces/Time t\nint32 LIMIT=3\n",
        )
        .unwrap();
        let mut cols = MessageColumns::compile_cdr(&registry).unwrap();
        for big_endian in [false, true] {
            for xs in [&[][..], &[-3, 9][..]] {
                let bytes = cdr_sample(big_endian, xs);
                assert!(cols.decode(&bytes).is_ok(), "big_endian={big_endian} xs={xs:?}");
            }
        }
        let arrays = cols.finish().unwrap();
        let d = arrays[2].as_primitive::<Float64Type>();
        assert!(d.values().iter().all(|&v| v == 2.5));
        let s = arrays[3].as_string::<i32>();
        assert!(s.iter().all(|v| v == Some("hi")));
        let t = arrays[4].as_primitive::<arrow::datatypes::TimestampNanosecondType>();
        assert!(t.values().iter().all(|&v| v == 1_700_000_000_000_000_005));
        let xs = arrays[1].as_list::<i32>();
        assert_eq!(xs.value_length(1), 2);
        assert_eq!(xs.value(1).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(), vec![-3, 9]);
    }

    #[test]
    fn arrays_of_fixed_layout_structs_decode_field_by_field_and_roll_back_whole() {
        use arrow::datatypes::{Float32Type, Int64Type, UInt8Type};
        // A variable array of points: every field a fixed-width number, read in one pass.
        let def = "Point[] points\nuint8 tail\n====\nMSG: t/Point\nfloat32 x\nuint8 k\nint64 t\n";
        let mut cols = MessageColumns::compile(&Registry::parse("t/Path", def).unwrap()).unwrap();
        let mut msg = 3u32.to_le_bytes().to_vec();
        for i in 0..3u8 {
            msg.extend_from_slice(&(i as f32 + 0.5).to_le_bytes());
            msg.push(10 + i);
            msg.extend_from_slice(&(-(i as i64) * 1_000).to_le_bytes());
        }
        msg.push(7);
        assert!(cols.decode(&msg).is_ok());
        // Cut inside the second point: nothing of it may stay behind.
        assert_eq!(cols.decode(&msg[..4 + 13 + 5]).err(), Some(DecodeError::Truncated));
        assert!(cols.decode(&msg).is_ok());
        let arrays = cols.finish().unwrap();
        let points = arrays[0].as_list::<i32>();
        assert_eq!(points.value_offsets(), &[0, 3, 6]);
        let fields = points.values().as_struct();
        assert_eq!(fields.column(0).as_primitive::<Float32Type>().values().to_vec(), vec![0.5, 1.5, 2.5, 0.5, 1.5, 2.5]);
        assert_eq!(fields.column(1).as_primitive::<UInt8Type>().values().to_vec(), vec![10, 11, 12, 10, 11, 12]);
        assert_eq!(fields.column(2).as_primitive::<Int64Type>().values().to_vec(), vec![0, -1_000, -2_000, 0, -1_000, -2_000]);
        assert_eq!(arrays[1].as_primitive::<UInt8Type>().values().to_vec(), vec![7, 7]);
    }
}
