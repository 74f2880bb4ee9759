//! `scenes split`: cuts a bag into valid smaller bags by size and/or duration, the way the
//! replaced pipeline's users did by hand before upload. Messages keep their record order and
//! bytes; each output has its own connections, chunks and index, so every ROS1 reader opens it.

use std::path::{Path, PathBuf};

use crate::bag::writer::{BagWriter, ConnectionSpec};
use crate::bag::{Bag, BagError, ChunkItem, Compression};

use crate::error::{Error, Result};

/// Where to cut.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Largest payload bytes per output (message data; records and index add a little).
    pub max_bytes: Option<u64>,
    /// Longest span of record times per output.
    pub max_duration_ns: Option<u64>,
    /// Chunk compression of the outputs (default: the input's).
    pub compression: Option<Compression>,
    pub out_dir: Option<PathBuf>,
}

/// One written part.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitPart {
    pub path: PathBuf,
    pub messages: u64,
    pub payload_bytes: u64,
}

/// Parses sizes such as `10GiB`, `500MB`, `2048` (bytes).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| Error::invalid(format!("'{text}'"), "is not a size (examples: 10GiB, 500MB, 4096)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        other => return Err(Error::invalid(format!("'{text}'"), format!("unknown size unit '{other}' (use B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)"))),
    };
    Ok((value * factor) as u64)
}

struct Output {
    writer: BagWriter,
    path: PathBuf,
    /// input connection id → output connection id
    conns: std::collections::HashMap<u32, u32>,
    first_time: u64,
    last_time: u64,
    messages: u64,
    payload: u64,
}

/// Splits `input` into parts; returns them in order.
pub fn split_bag(input: &Path, opts: &SplitOptions) -> Result<Vec<SplitPart>> {
    if opts.max_bytes.is_none() && opts.max_duration_ns.is_none() {
        return Err(Error::invalid("split", "give --max-size and/or --max-duration"));
    }
    let bag = Bag::open(input)?;
    if bag.format != crate::bag::BagFormat::Ros1 {
        return Err(Error::Bags {
            path: input.to_path_buf(),
            reason: "scenes split writes ROS1 bags and reads only ROS1 bags; split MCAP files with `mcap` tools",
        });
    }
    let compression = opts
        .compression
        .or_else(|| bag.chunks.first().map(|c| c.compression))
        .unwrap_or(Compression::Lz4);
    let stem = crate::lake::bag_name(input);
    let dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| input.parent().map(Path::to_path_buf).unwrap_or_default());
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let specs: std::collections::HashMap<u32, ConnectionSpec> = bag
        .connections
        .iter()
        .map(|c| (c.id, ConnectionSpec::from(c)))
        .collect();
    let mut parts = Vec::new();
    let mut current: Option<Output> = None;
    for chunk in bag.read_chunks(&bag.chunks) {
        let mut chunk = chunk?;
        if let Some(p) = chunk.take_problem() {
            let reason = format!("{p}; split needs a readable bag");
            return Err(BagError::Corrupt { path: input.to_path_buf(), offset: chunk.info().pos, reason }.into());
        }
        for item in chunk.records() {
            let ChunkItem::Message { conn, time, data } = item else {
                continue;
            };
            if !specs.contains_key(&conn) {
                continue;
            }
            // Never cut between messages of the same time: readers order those by connection.
            let full = current.as_ref().is_some_and(|o| {
                o.messages > 0
                    && time > o.last_time
                    && (opts.max_bytes.is_some_and(|m| o.payload + data.len() as u64 > m)
                        || opts.max_duration_ns.is_some_and(|d| time.saturating_sub(o.first_time) >= d))
            });
            if full {
                if let Some(o) = current.take() {
                    parts.push(finish(o)?);
                }
            }
            if current.is_none() {
                current = Some(open_output(&dir, &stem, parts.len(), compression, &bag, &specs, time)?);
            }
            if let Some(o) = current.as_mut() {
                let Some(&id) = o.conns.get(&conn) else {
                    continue;
                };
                o.writer.write(id, time, data)?;
                o.messages += 1;
                o.payload += data.len() as u64;
                o.last_time = o.last_time.max(time);
            }
        }
    }
    if let Some(o) = current.take() {
        parts.push(finish(o)?);
    }
    Ok(parts)
}

/// Starts output number `index` with every connection of the input, in the input's id order,
/// so that readers which order equal times by connection id order them as in the input.
fn open_output(
    dir: &Path,
    stem: &str,
    index: usize,
    compression: Compression,
    bag: &Bag,
    specs: &std::collections::HashMap<u32, ConnectionSpec>,
    first_time: u64,
) -> Result<Output> {
    let path = dir.join(format!("{stem}_{index:04}.bag"));
    let mut writer = BagWriter::create(&path, compression)?;
    let mut conns = std::collections::HashMap::new();
    for c in &bag.connections {
        if let Some(spec) = specs.get(&c.id) {
            conns.insert(c.id, writer.add_connection(spec.clone()));
        }
    }
    Ok(Output {
        writer,
        path,
        conns,
        first_time,
        last_time: first_time,
        messages: 0,
        payload: 0,
    })
}

fn finish(o: Output) -> Result<SplitPart> {
    o.writer.finish()?;
    Ok(SplitPart {
        path: o.path,
        messages: o.messages,
        payload_bytes: o.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("10GiB").unwrap(), 10 * 1024 * 1024 * 1024);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().to_string().contains("parsecs"));
    }
}
