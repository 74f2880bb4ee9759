//! What opening a bag found: how its chunk list was obtained ([`IndexState`]), message counts and
//! time ranges per connection, and the damage a salvage scan saw.

use std::collections::BTreeMap;

/// How the bag's chunk list was obtained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum IndexState {
    /// The index at `index_pos` was complete and consistent.
    Indexed,
    /// No usable index; chunks were found by a linear scan. The reason says why.
    Scanned(String),
}

/// Per-connection message counts and time range.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnectionStats {
    pub messages: u64,
    pub start_time: Option<u64>,
    pub end_time: Option<u64>,
}

impl ConnectionStats {
    pub(super) fn add(&mut self, count: u64, start: Option<u64>, end: Option<u64>) {
        self.messages += count;
        self.start_time = min_opt(self.start_time, start);
        self.end_time = max_opt(self.end_time, end);
    }
}

/// What a linear scan found damaged, and what it could and could not recover.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScanDamage {
    /// Byte offset where the scan stopped, when it stopped before the end of the file.
    pub stopped_at: Option<u64>,
    pub problems: Vec<String>,
    /// Messages known to be lost, per connection id: listed by a chunk's index records (or seen
    /// as a record header cut by the end of the file) but not readable.
    pub lost_messages: BTreeMap<u32, u64>,
    /// The chunk cut by the end of the file, if any. Its index records were never written, so
    /// how many messages its missing bytes held is unknown.
    pub cut_chunk: Option<CutChunk>,
    /// Messages found in records outside any chunk: a chunk the recorder left open when it stopped
    /// (its header still says size 0), recovered record by record.
    pub messages_outside_chunks: u64,
}

/// Damage seen by one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TopicLoss {
    /// Messages known to be lost.
    pub lost: u64,
    /// Messages recovered from the chunk cut by the end of the file (more may have been in its
    /// missing bytes).
    pub recovered_from_cut_chunk: u64,
}

/// How much of the chunk cut by the end of the file is left.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CutChunk {
    /// File offset of the chunk record.
    pub pos: u64,
    /// Bytes of chunk data the chunk header declares, and how many of them the file holds.
    pub declared_bytes: u64,
    pub present_bytes: u64,
    /// Complete messages recovered from what is left of it, per connection id.
    pub recovered: BTreeMap<u32, u64>,
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
