//! `scenes info`: a summary of a bag like `rosbag info`: from the index when the bag has one
//! (fast on multi-GB bags), from a scan of its chunks otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::bag::{Bag, IndexState, ScanDamage};
use crate::error::Result;

#[derive(Debug, Serialize)]
pub struct TopicInfo {
    pub topic: String,
    pub msg_type: String,
    pub md5sum: String,
    pub messages: u64,
    pub connections: usize,
    pub frequency_hz: Option<f64>,
    /// Messages known to be lost to damage (0 on an undamaged bag).
    pub lost: u64,
    /// Messages recovered from the chunk cut by the end of the file.
    pub recovered_from_cut_chunk: u64,
}

#[derive(Debug, Serialize)]
pub struct BagInfo {
    pub path: String,
    pub version: &'static str,
    pub size_bytes: u64,
    pub index: IndexState,
    pub damage: ScanDamage,
    pub start_time_ns: Option<u64>,
    pub end_time_ns: Option<u64>,
    pub duration_s: f64,
    pub messages: u64,
    pub chunks: usize,
    pub connections: usize,
    /// Chunk count per compression.
    pub compression: BTreeMap<String, usize>,
    pub topics: Vec<TopicInfo>,
}

/// Reads the summary of the bag at `path`.
pub fn bag_info(path: &Path) -> Result<BagInfo> {
    let bag = Bag::open(path)?;
    Ok(summarize(&bag))
}

/// Summarizes an opened bag.
pub fn summarize(bag: &Bag) -> BagInfo {
    let mut topics: BTreeMap<&str, TopicInfo> = BTreeMap::new();
    let mut ranges: BTreeMap<&str, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for conn in &bag.connections {
        let stats = bag.stats.get(&conn.id).cloned().unwrap_or_default();
        let t = topics.entry(&conn.topic).or_insert_with(|| TopicInfo {
            topic: conn.topic.clone(),
            msg_type: conn.msg_type.clone(),
            md5sum: conn.md5sum.clone(),
            messages: 0,
            connections: 0,
            frequency_hz: None,
            lost: 0,
            recovered_from_cut_chunk: 0,
        });
        t.messages += stats.messages;
        t.connections += 1;
        let r = ranges.entry(&conn.topic).or_default();
        r.0 = [r.0, stats.start_time].into_iter().flatten().min();
        r.1 = [r.1, stats.end_time].into_iter().flatten().max();
    }
    let losses = bag.topic_losses();
    for (topic, t) in topics.iter_mut() {
        if let Some(loss) = losses.get(*topic) {
            t.lost = loss.lost;
            t.recovered_from_cut_chunk = loss.recovered_from_cut_chunk;
        }
        if let Some((Some(s), Some(e))) = ranges.get(topic) {
            if e > s && t.messages > 1 {
                t.frequency_hz = Some((t.messages - 1) as f64 / ((e - s) as f64 / 1e9));
            }
        }
    }
    let mut compression = BTreeMap::new();
    for c in &bag.chunks {
        *compression.entry(c.compression.name().to_string()).or_insert(0) += 1;
    }
    let start = bag.start_time();
    let end = bag.end_time();
    BagInfo {
        path: bag.path.display().to_string(),
        version: match bag.format {
            crate::bag::BagFormat::Ros1 => "ROS1 bag 2.0",
            crate::bag::BagFormat::Mcap => "MCAP",
            crate::bag::BagFormat::Rosbag2 => "rosbag2 recording",
        },
        size_bytes: bag.file_size(),
        index: bag.index.clone(),
        damage: bag.damage.clone(),
        start_time_ns: start,
        end_time_ns: end,
        duration_s: match (start, end) {
            (Some(s), Some(e)) => (e.saturating_sub(s)) as f64 / 1e9,
            _ => 0.0,
        },
        messages: bag.message_count(),
        chunks: bag.chunks.len(),
        connections: bag.connections.len(),
        compression,
        topics: topics.into_values().collect(),
    }
}

/// Human-readable rendering, in the spirit of `rosbag info`.
pub fn render(info: &BagInfo) -> String {
    let mut s = String::new();
    let time = |ns: Option<u64>| match ns {
        Some(ns) => format!(
            "{} ({}.{:09})",
            chrono::DateTime::from_timestamp_nanos(ns as i64).format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            ns / 1_000_000_000,
            ns % 1_000_000_000
        ),
        None => "-".into(),
    };
    let _ = writeln!(s, "path:        {}", info.path);
    let _ = writeln!(s, "version:     {}", info.version);
    let _ = writeln!(s, "size:        {}", human_bytes(info.size_bytes));
    let _ = writeln!(s, "duration:    {:.3}s", info.duration_s);
    let _ = writeln!(s, "start:       {}", time(info.start_time_ns));
    let _ = writeln!(s, "end:         {}", time(info.end_time_ns));
    let _ = writeln!(s, "messages:    {}", info.messages);
    let comp: Vec<String> = info.compression.iter().map(|(k, v)| format!("{k} [{v}/{}]", info.chunks)).collect();
    let _ = writeln!(s, "compression: {}", if comp.is_empty() { "-".into() } else { comp.join(", ") });
    let _ = writeln!(s, "chunks:      {}", info.chunks);
    let _ = writeln!(s, "connections: {}", info.connections);
    match &info.index {
        IndexState::Indexed => {
            let _ = writeln!(s, "index:       ok");
        }
        IndexState::Scanned(reason) => {
            let _ = writeln!(s, "index:       unusable ({reason}); contents found by scanning");
            for p in &info.damage.problems {
                let _ = writeln!(s, "  damage:    {p}");
            }
            let _ = write!(s, "{}", render_recovery(info));
        }
    }
    let _ = writeln!(s, "types:");
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    for t in &info.topics {
        types.insert(&t.msg_type, &t.md5sum);
    }
    for (ty, md5) in types {
        let _ = writeln!(s, "  {ty:<40} [{md5}]");
    }
    let _ = writeln!(s, "topics:");
    for t in &info.topics {
        let freq = t.frequency_hz.map(|f| format!("{f:.2} Hz")).unwrap_or_else(|| "-".into());
        let conns = if t.connections > 1 { format!(" ({} connections)", t.connections) } else { String::new() };
        let _ = writeln!(s, "  {:<40} {:>9} msgs {:>11} : {}{}", t.topic, t.messages, freq, t.msg_type, conns);
    }
    s
}

/// Per topic, what a scan recovered and what it lost; the same lines `scenes ingest` prints.
pub fn render_recovery(info: &BagInfo) -> String {
    let mut s = String::new();
    if let Some(cut) = &info.damage.cut_chunk {
        let _ = writeln!(
            s,
            "  cut chunk: at byte {}, {} of {} bytes present; messages in the missing part are unknown",
            cut.pos, cut.present_bytes, cut.declared_bytes
        );
    }
    if info.damage.messages_outside_chunks > 0 {
        let _ = writeln!(s, "  {} messages recovered from records outside any chunk", info.damage.messages_outside_chunks);
    }
    let _ = writeln!(s, "  recovery per topic:");
    for t in &info.topics {
        let _ = writeln!(
            s,
            "    {:<38} recovered {:>9}  lost {:>6}{}",
            t.topic,
            t.messages,
            t.lost,
            if t.recovered_from_cut_chunk > 0 {
                format!("  ({} of them from the cut chunk)", t.recovered_from_cut_chunk)
            } else {
                String::new()
            }
        );
    }
    s
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
