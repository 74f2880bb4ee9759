//! Writing a clip's messages, bytes unchanged, as a ROS1 bag (our writer: chunks, index,
//! connection records with their definitions) or as an MCAP file (the `mcap` crate: a schema and
//! a channel per connection, chunked and indexed).

use std::collections::{BTreeMap, HashMap};
use std::io::BufWriter;
use std::path::Path;

use super::cut::Cut;
use crate::bag::writer::{BagWriter, ConnectionSpec};
use crate::bag::{Compression, Encoding};
use crate::error::{Error, Result};

/// The clip as a ROS1 bag at `path`.
pub fn write_bag(path: &Path, cut: &Cut, compression: Compression) -> Result<()> {
    if let Some(c) = cut.connections.iter().find(|c| c.encoding != Encoding::Ros1) {
        return Err(Error::invalid(
            format!("topic {} ({})", c.topic, c.msg_type),
            "holds ROS 2 (CDR) messages, which a ROS1 bag cannot carry: use --format mcap",
        ));
    }
    let mut writer = BagWriter::create(path, compression)?;
    let ids: HashMap<u32, u32> = cut.connections.iter().map(|c| (c.id, writer.add_connection(ConnectionSpec::from(c)))).collect();
    for (conn, time, data) in &cut.messages {
        if let Some(id) = ids.get(conn) {
            writer.write(*id, *time, data)?;
        }
    }
    writer.finish()?;
    Ok(())
}

/// The clip as an MCAP file at `path` (profile `ros1` or `ros2` after the messages).
pub fn write_mcap(path: &Path, cut: &Cut) -> Result<()> {
    let failed = |e: mcap::McapError| Error::invalid(path.display().to_string(), format!("cannot write the MCAP clip: {e}"));
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let ros2 = cut.connections.iter().any(|c| matches!(c.encoding, Encoding::Ros2Cdr | Encoding::Ros2Idl));
    let options = mcap::WriteOptions::new().profile(if ros2 { "ros2" } else { "ros1" });
    let mut writer = options.create(BufWriter::new(file)).map_err(failed)?;
    let mut schemas: HashMap<(String, String), u16> = HashMap::new();
    let mut channels: HashMap<u32, u16> = HashMap::new();
    for c in &cut.connections {
        let (schema_encoding, message_encoding) = encodings(&c.encoding);
        let schema_id = match schema_encoding {
            Some(encoding) if !c.definition.is_empty() => match schemas.get(&(c.msg_type.clone(), c.definition.clone())) {
                Some(id) => *id,
                None => {
                    let id = writer.add_schema(&c.msg_type, encoding, c.definition.as_bytes()).map_err(failed)?;
                    schemas.insert((c.msg_type.clone(), c.definition.clone()), id);
                    id
                }
            },
            _ => 0,
        };
        let mut metadata = BTreeMap::new();
        if c.latching {
            metadata.insert("latching".to_string(), "1".to_string());
        }
        if let Some(callerid) = &c.callerid {
            metadata.insert("callerid".to_string(), callerid.clone());
        }
        channels.insert(c.id, writer.add_channel(schema_id, &c.topic, &message_encoding, &metadata).map_err(failed)?);
    }
    let mut sequence = 0u32;
    for (conn, time, data) in &cut.messages {
        let Some(channel_id) = channels.get(conn) else { continue };
        sequence = sequence.wrapping_add(1);
        let header = mcap::records::MessageHeader { channel_id: *channel_id, sequence, log_time: *time, publish_time: *time };
        writer.write_to_known_channel(&header, data).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    Ok(())
}

/// (schema encoding, message encoding) of a connection's messages in MCAP.
fn encodings(encoding: &Encoding) -> (Option<&'static str>, String) {
    match encoding {
        Encoding::Ros1 => (Some("ros1msg"), "ros1".into()),
        Encoding::Ros2Cdr => (Some("ros2msg"), "cdr".into()),
        Encoding::Ros2Idl => (Some("ros2idl"), "cdr".into()),
        Encoding::MissingDefinition(_) => (None, "cdr".into()),
        Encoding::Unsupported(other) => (None, other.clone()),
    }
}
