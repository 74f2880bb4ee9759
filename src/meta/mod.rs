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

/// One person-in-lane scene (the reference's `Rosbag-Scene-Metadata` item plus our additions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneRecord {
    pub bag_file: String,
    /// `<bag_file>_PersonInLane_<start_time in seconds>`.
    pub scene_id: String,
    pub bag_file_prefix: String,
    pub bag_file_bucket: Option<String>,
    /// Epoch seconds of the first tick of the scene.
    pub start_time: f64,
    /// Epoch seconds of the first tick back at zero; `None` when the bag ends in the scene.
    pub end_time: Option<f64>,
    pub scene_length: Option<f64>,
    pub num_people_in_scene_start: u32,
    pub max_people_in_scene: u32,
    pub topics_analyzed: String,
    /// Lane rule that found the scene (`ego_footprint` or `reference`).
    pub rule: String,
    pub open_at_start: bool,
    pub open_at_end: bool,
    pub ego_speed_min: Option<f64>,
    pub ego_speed_max: Option<f64>,
}

/// One batch of bags run through sync and detect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub batch_id: String,
    /// `bag_file_prefix` of each bag in the batch.
    pub bags: Vec<String>,
    /// `running`, `done` or `failed`.
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub seconds: Option<f64>,
    pub scenes: Option<u64>,
    pub error: Option<String>,
}

/// Storage of pipeline metadata. Implementations must be safe to use from several processes.
pub trait MetaStore: Send + Sync {
    /// Inserts or replaces the record keyed by `bag_file_prefix`.
    fn put_bag(&self, record: &BagRecord) -> Result<()>;
    fn get_bag(&self, bag_file_prefix: &str) -> Result<Option<BagRecord>>;
    fn list_bags(&self) -> Result<Vec<BagRecord>>;
    /// Replaces every scene of `bag_file` with `scenes` (atomically).
    fn replace_scenes(&self, bag_file: &str, scenes: &[SceneRecord]) -> Result<()>;
    fn list_scenes(&self) -> Result<Vec<SceneRecord>>;
    /// Atomically claims up to `size` ingested bags that no batch has claimed yet, as a new
    /// running batch. With `allow_partial` false, nothing is claimed unless `size` bags wait.
    fn claim_batch(&self, size: usize, allow_partial: bool) -> Result<Option<BatchRecord>>;
    /// Records the outcome of a batch.
    fn finish_batch(&self, record: &BatchRecord) -> Result<()>;
    fn list_batches(&self) -> Result<Vec<BatchRecord>>;
}
