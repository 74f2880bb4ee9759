//! What an ingest reports: per topic and per bag, and the bag record it leaves in the store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::plan::{ConnCounters, Plan};
use crate::bag::{Bag, IndexState, ScanDamage};
use crate::error::Result;
use crate::lake::{bag_name, source_uri, Lake};
use crate::meta::{BagRecord, MetaStore, TopicRecord};

/// What happened to one topic.
#[derive(Debug, Clone, Serialize)]
pub struct TopicReport {
    pub topic: String,
    pub msg_type: String,
    pub tables: Vec<String>,
    pub messages_in_bag: u64,
    pub messages_ingested: u64,
    pub decode_errors: u64,
    /// Messages known to be lost to damage in the file (torn or unindexed bags).
    pub messages_lost: u64,
    /// Messages recovered from the chunk cut by the end of the file.
    pub recovered_from_cut_chunk: u64,
    pub first_error: Option<String>,
    /// Messages with non-UTF-8 strings (kept lossily plus raw bytes in `_raw_message`).
    pub lossy_utf8: u64,
}

/// What happened to one bag.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// The bag's key in the lake (its partition value).
    pub bag_file: String,
    /// Its readable name (the file name without extension).
    pub bag_name: String,
    pub path: PathBuf,
    pub index: IndexState,
    pub damage: ScanDamage,
    pub chunks: usize,
    pub bytes: u64,
    pub messages_ingested: u64,
    pub decode_errors: u64,
    pub seconds: f64,
    pub topics: Vec<TopicReport>,
    pub tables: Vec<String>,
}

pub(super) fn build_report(bag: &Bag, bag_file: &str, plan: &Plan, counters: &HashMap<u32, ConnCounters>, damage: ScanDamage, seconds: f64) -> IngestReport {
    let mut topics: BTreeMap<String, TopicReport> = BTreeMap::new();
    let losses = bag.topic_losses();
    for conn in &bag.connections {
        let t = topics.entry(conn.topic.clone()).or_insert_with(|| TopicReport {
            topic: conn.topic.clone(),
            msg_type: conn.msg_type.clone(),
            tables: Vec::new(),
            messages_in_bag: 0,
            messages_ingested: 0,
            decode_errors: 0,
            messages_lost: losses.get(&conn.topic).map(|l| l.lost).unwrap_or(0),
            recovered_from_cut_chunk: losses.get(&conn.topic).map(|l| l.recovered_from_cut_chunk).unwrap_or(0),
            first_error: plan.definition_errors.get(&conn.topic).map(|e| format!("definition not understood, messages kept raw: {e}")),
            lossy_utf8: 0,
        });
        t.messages_in_bag += bag.stats.get(&conn.id).map(|s| s.messages).unwrap_or(0);
        if let Some(&v) = plan.conn_variant.get(&conn.id) {
            let table = &plan.tables[plan.variants[v].table].name;
            if !t.tables.contains(table) {
                t.tables.push(table.clone());
            }
        }
        if let Some(c) = counters.get(&conn.id) {
            t.messages_ingested += c.ok;
            t.decode_errors += c.errors;
            t.lossy_utf8 += c.lossy;
            if t.first_error.is_none() {
                t.first_error = c.first_error.clone();
            }
        }
    }
    let topics: Vec<TopicReport> = topics.into_values().collect();
    IngestReport {
        bag_file: bag_file.to_string(),
        bag_name: bag_name(&bag.path),
        path: bag.path.clone(),
        index: bag.index.clone(),
        damage,
        chunks: bag.chunks.len(),
        bytes: bag.file_size(),
        messages_ingested: topics.iter().map(|t| t.messages_ingested).sum(),
        decode_errors: topics.iter().map(|t| t.decode_errors).sum(),
        seconds,
        tables: plan.tables.iter().map(|t| t.name.clone()).collect(),
        topics,
    }
}

/// The key of a bag's record and its bucket: a bag read from S3 is recorded by key and bucket
/// (as the reference pipeline's items), a local one by its absolute path.
fn record_key(path: &Path) -> (String, Option<String>) {
    let text = path.to_string_lossy();
    match text.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
        Some((bucket, key)) => (key.to_string(), Some(bucket.to_string())),
        None => (std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string(), None),
    }
}

/// Where a bag's record goes, and its record of an earlier ingest, if any.
pub(super) struct FoundRecord {
    pub(super) key: String,
    pub(super) record: Option<BagRecord>,
}

/// Where the bag at `path` is recorded in `store`, and its record when it has one. An object on
/// S3 is recorded under its key; when that key's record (in the store, or among `pending`, the
/// records still to be written) belongs to an object of another bucket (the same key in two
/// buckets), under `<bucket>/<key>`, so that neither replaces the other.
pub(super) fn find_record<'a>(store: &dyn MetaStore, path: &Path, pending: impl IntoIterator<Item = &'a BagRecord>) -> Result<FoundRecord> {
    let (key, bucket) = record_key(path);
    let record = match pending.into_iter().find(|r| r.bag_file_prefix == key) {
        Some(waiting) => Some(waiting.clone()),
        None => store.get_bag(&key)?,
    };
    match (bucket, record) {
        (Some(bucket), Some(other)) if other.bag_file_bucket.as_deref() != Some(bucket.as_str()) => {
            let key = format!("{bucket}/{key}");
            let record = store.get_bag(&key)?;
            Ok(FoundRecord { key, record })
        }
        (_, record) => Ok(FoundRecord { key, record }),
    }
}

/// The bag record of `bag`, under the key `prefix` (see [`find_record`]).
pub(super) fn bag_record(bag: &Bag, report: &IngestReport, lake: &Lake, prefix: String) -> Result<BagRecord> {
    let bucket = record_key(&bag.path).1;
    let mut topics = BTreeMap::new();
    for t in &report.topics {
        let conns: Vec<u32> = bag.connections.iter().filter(|c| c.topic == t.topic).map(|c| c.id).collect();
        let start = conns.iter().filter_map(|c| bag.stats.get(c)?.start_time).min();
        let end = conns.iter().filter_map(|c| bag.stats.get(c)?.end_time).max();
        let frequency_hz = match (start, end) {
            (Some(s), Some(e)) if e > s && t.messages_in_bag > 1 => Some((t.messages_in_bag - 1) as f64 / ((e - s) as f64 / 1e9)),
            _ => None,
        };
        topics.insert(
            t.topic.clone(),
            TopicRecord {
                msg_type: t.msg_type.clone(),
                message_count: t.messages_in_bag,
                frequency_hz,
                tables: t.tables.clone(),
                messages_ingested: t.messages_ingested,
                decode_errors: t.decode_errors,
            },
        );
    }
    let status = if !bag.is_indexed() {
        "recovered"
    } else if report.decode_errors > 0 || !report.damage.problems.is_empty() {
        "ingested_with_errors"
    } else {
        "ingested"
    };
    Ok(BagRecord {
        bag_file_prefix: prefix,
        bag_file: report.bag_file.clone(),
        bag_name: bag_name(&bag.path),
        source_uri: Some(source_uri(&bag.path)),
        bag_file_bucket: bucket,
        size_bytes: bag.file_size(),
        start_time_ns: bag.start_time(),
        end_time_ns: bag.end_time(),
        message_count: bag.message_count(),
        status: status.into(),
        ingest_seconds: report.seconds,
        source_version: bag.source_version.clone(),
        lake: Some(lake.display()),
        ingested_at: chrono::Utc::now().to_rfc3339(),
        topics,
    })
}
