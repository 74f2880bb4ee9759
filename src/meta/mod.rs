//! The metadata store: one record per ingested bag (the reference's `Rosbag-BagFile-Metadata`
//! item, plus size, time range, status and ingest timings). [`MetaStore`] is the interface; the
//! embedded implementation keeps an SQLite file inside the lake.

pub mod sqlite;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What is known about one topic of a bag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// ROS message type (`sensor_msgs/Imu`).
    pub msg_type: String,
    /// Messages in the bag on this topic.
    pub message_count: u64,
    /// Mean rate in Hz over the topic's time span; `None` with fewer than two messages.
    pub frequency_hz: Option<f64>,
    /// Lake table(s) the topic was written to (empty when not extracted).
    pub tables: Vec<String>,
    /// Messages written to the lake.
    pub messages_ingested: u64,
    /// Messages whose bytes did not match their definition (not written).
    pub decode_errors: u64,
}

/// One ingested bag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BagRecord {
    /// Key: the object key (S3) or absolute path (local) of the bag.
    pub bag_file_prefix: String,
    /// Bag file name without `.bag`: the partition value in every table.
    pub bag_file: String,
    /// Bucket for bags on S3; `None` for local files.
    pub bag_file_bucket: Option<String>,
    pub size_bytes: u64,
    pub start_time_ns: Option<u64>,
    pub end_time_ns: Option<u64>,
    pub message_count: u64,
    /// `ingested`, `ingested_with_errors` or `recovered` (unindexed/torn bag salvaged by a scan).
    pub status: String,
    pub ingest_seconds: f64,
    /// RFC 3339 time of the ingest.
    pub ingested_at: String,
    pub topics: BTreeMap<String, TopicRecord>,
}

/// Storage of pipeline metadata. Implementations must be safe to use from several processes.
pub trait MetaStore: Send + Sync {
    /// Inserts or replaces the record keyed by `bag_file_prefix`.
    fn put_bag(&self, record: &BagRecord) -> Result<()>;
    fn get_bag(&self, bag_file_prefix: &str) -> Result<Option<BagRecord>>;
    fn list_bags(&self) -> Result<Vec<BagRecord>>;
}
