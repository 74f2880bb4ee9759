//! Entry points for the fuzz targets in `fuzz/` and for their regression tests. Each takes
//! arbitrary bytes and must return without panicking, hanging or allocating without bound,
//! whatever the bytes are; errors are expected and ignored.

use std::collections::HashMap;

use crate::bag::{Bag, ChunkItem};
use crate::decode::{MessageColumns, Registry};

/// Reads `data` as a bag the way ingest does: index or scan, every chunk decompressed, every
/// message decoded with its connection's definition, columns finished into Arrow arrays.
pub fn read_bag(data: &[u8]) {
    let Ok(bag) = Bag::from_bytes("fuzz-input.bag", data.to_vec()) else {
        return;
    };
    let _summary = crate::info::summarize(&bag);
    let mut plans: HashMap<u32, MessageColumns> = HashMap::new();
    for conn in &bag.connections {
        if let Ok(plan) = MessageColumns::for_connection(conn) {
            plans.insert(conn.id, plan);
        }
    }
    for chunk in bag.read_chunks(&bag.chunks).flatten() {
        for item in chunk.records() {
            if let ChunkItem::Message { conn, data, .. } = item {
                if let Some(plan) = plans.get_mut(&conn) {
                    let _ = plan.decode(data);
                }
            }
        }
    }
    for plan in plans.values_mut() {
        let _ = plan.finish();
    }
}

/// Splits `data` at its first NUL byte into a message definition (text) and message bytes, then
/// parses the definition, compiles its decoder and decodes the bytes (whole, and again as the
/// second row of the same columns) before finishing the columns.
pub fn decode_with_definition(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let definition = String::from_utf8_lossy(&data[..split]);
    let message = data.get(split + 1..).unwrap_or(&[]);
    let Ok(registry) = Registry::parse("fuzz_msgs/Input", &definition) else {
        return;
    };
    let _ = registry.md5sum("fuzz_msgs/Input");
    let Ok(mut columns) = MessageColumns::compile(&registry) else {
        return;
    };
    let _ = columns.decode(message);
    let _ = columns.decode(message);
    let _ = columns.finish();
}
