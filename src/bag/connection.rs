//! Connections: one publisher of one topic, with the message type, its definition and how its
//! messages are serialized. Both formats produce them (a ROS1 connection record, an MCAP channel
//! with its schema); the decoder reads them.

use super::record::Fields;

/// A connection: one publisher of one topic, with the message definition it recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Connection {
    pub id: u32,
    pub topic: String,
    pub msg_type: String,
    pub md5sum: String,
    pub definition: String,
    pub callerid: Option<String>,
    pub latching: bool,
    /// How its messages are serialized (always ROS1 in a ROS1 bag).
    pub encoding: Encoding,
}

impl Connection {
    /// Parses a connection record (header holds `conn` and `topic`, data holds the rest).
    pub fn from_record(header: &Fields<'_>, data: &[u8]) -> Result<Self, String> {
        let id = header.u32("conn")?;
        let inner = Fields::parse(data)?;
        let topic = inner
            .optional_string("topic")
            .or_else(|| header.optional_string("topic"))
            .ok_or("connection without a topic")?;
        Ok(Connection {
            id,
            topic,
            msg_type: inner.string("type")?,
            md5sum: inner.optional_string("md5sum").unwrap_or_default(),
            definition: inner.optional_string("message_definition").unwrap_or_default(),
            callerid: inner.optional_string("callerid"),
            latching: inner.get("latching").is_some_and(|v| v == b"1"),
            encoding: Encoding::Ros1,
        })
    }
}

/// How the messages of a channel are encoded, as far as decoding is concerned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// ROS1 serialization with a ROS1 definition (ROS1 bags, MCAP `ros1` profile).
    Ros1,
    /// CDR with a ROS 2 `.msg` definition (MCAP `ros2` profile).
    Ros2Cdr,
    /// CDR with a ROS 2 IDL definition (MCAP `ros2idl` schemas), as rosidl generates them.
    Ros2Idl,
    /// Anything else (protobuf, JSON, `ros2idl` schemas, ...): kept as raw bytes.
    Unsupported(String),
    /// The recording holds no definition of the type and none was found elsewhere (the reason
    /// says where it was looked for and what to do): kept as raw bytes.
    MissingDefinition(String),
}
