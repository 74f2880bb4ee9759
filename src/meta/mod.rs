//! The metadata store: one record per ingested bag (the reference's `Rosbag-BagFile-Metadata`
//! item, plus size, time range, status and ingest timings). [`MetaStore`] is the interface; the
//! embedded implementation keeps an SQLite file inside the lake; [`open_store`] builds the one the
//! settings name.

#[cfg(feature = "aws")]
pub mod dynamo;
mod error;
mod open;
pub mod pending;
pub mod sqlite;

#[cfg(feature = "aws")]
pub use open::connect_dynamo;
pub use open::{open_store, open_store_in_background, MetadataStoreConfig};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::{MetaError, Result};

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
    /// The bag's key in the lake, its partition value in every table: `<bag_name>-<12 hex
    /// digits of its source URI's hash>` (in lakes of earlier versions, the name alone).
    pub bag_file: String,
    /// The bag's file name without extension: readable, not unique. Empty in records of
    /// earlier versions (see [`BagRecord::name`]).
    #[serde(default)]
    pub bag_name: String,
    /// Where the bag was read from (`s3://bucket/key`, or its absolute path); absent in records
    /// of earlier versions.
    #[serde(default)]
    pub source_uri: Option<String>,
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
    /// What identified the source file when it was ingested (`size=…;mtime_ns=…` locally,
    /// `size=…;etag=…` on S3): an ingest skips the bag while the source still matches. Absent
    /// in records of earlier versions, whose bags are then ingested once more.
    #[serde(default)]
    pub source_version: Option<String>,
    /// The lake the bag was ingested into (its directory or URL): a store shared by several
    /// lakes never skips a bag for a lake that does not hold it.
    #[serde(default)]
    pub lake: Option<String>,
    pub topics: BTreeMap<String, TopicRecord>,
}

impl BagRecord {
    /// The bag's readable name (its key, in records of versions that keyed bags by name).
    pub fn name(&self) -> &str {
        if self.bag_name.is_empty() {
            &self.bag_file
        } else {
            &self.bag_name
        }
    }
}

/// One scene (the reference's `Rosbag-Scene-Metadata` item plus our additions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneRecord {
    pub bag_file: String,
    /// `<bag_file>_<scenario>_<start_time in seconds>` (`..._PersonInLane_...` as the reference).
    pub scene_id: String,
    /// The `detect.scenarios` rule that found it (records written before scenarios existed are
    /// person-in-lane scenes).
    #[serde(default = "person_in_lane")]
    pub scenario: String,
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

fn person_in_lane() -> String {
    "PersonInLane".to_string()
}

/// One batch of bags run through sync and detect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub batch_id: String,
    /// `bag_file_prefix` of each bag in the batch.
    pub bags: Vec<String>,
    /// `running`, `done`, `failed`, or `abandoned` (its process died; its bags were re-queued).
    pub status: String,
    /// Process that ran the batch: `<host>:<pid>:<process start ticks>`.
    #[serde(default)]
    pub owner: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub seconds: Option<f64>,
    pub scenes: Option<u64>,
    pub error: Option<String>,
}

impl BatchRecord {
    /// A new running batch of `bags`, owned by this process, with a time-ordered unique id.
    pub fn running(bags: Vec<String>) -> Self {
        let now = chrono::Utc::now();
        BatchRecord {
            batch_id: format!("{}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]),
            bags,
            status: "running".into(),
            started_at: now.to_rfc3339(),
            finished_at: None,
            seconds: None,
            scenes: None,
            error: None,
            owner: current_owner(),
        }
    }
}

/// Storage of pipeline metadata. Implementations must be safe to use from several processes.
pub trait MetaStore: Send + Sync {
    /// Waits until the store can be used, or says why it cannot. Ingest calls it before its
    /// commits (a store may still be opening: [`pending::PendingStore`]).
    fn ready(&self) -> Result<()> {
        Ok(())
    }
    /// Inserts or replaces the record keyed by `bag_file_prefix`.
    fn put_bag(&self, record: &BagRecord) -> Result<()>;
    fn get_bag(&self, bag_file_prefix: &str) -> Result<Option<BagRecord>>;
    fn list_bags(&self) -> Result<Vec<BagRecord>>;
    /// Replaces every scene of `bag_file` with `scenes` (atomically).
    fn replace_scenes(&self, bag_file: &str, scenes: &[SceneRecord]) -> Result<()>;
    fn list_scenes(&self) -> Result<Vec<SceneRecord>>;
    /// Atomically claims up to `size` ingested bags that no batch has claimed yet, as a new
    /// running batch owned by this process. With `allow_partial` false, nothing is claimed unless
    /// `size` bags wait. First, running batches whose owner is dead ([`owner_is_gone`] with
    /// `lease`) are marked `abandoned` and their bags released.
    fn claim_batch(&self, size: usize, allow_partial: bool, lease: std::time::Duration) -> Result<Option<BatchRecord>>;
    /// Releases the bags of every failed batch so that the next claim takes them again.
    fn release_failed(&self) -> Result<usize>;
    /// Records the outcome of a batch.
    fn finish_batch(&self, record: &BatchRecord) -> Result<()>;
    fn list_batches(&self) -> Result<Vec<BatchRecord>>;
}

/// This process as a batch owner: `<host>:<pid>:<start ticks>` (the start time tells a reused
/// pid from the original process).
pub fn current_owner() -> String {
    format!("{}:{}:{}", host_name(), std::process::id(), process_start_ticks(std::process::id()).unwrap_or(0))
}

/// Whether the process that owns a running batch is gone: on this host, checked in `/proc`;
/// elsewhere, when the batch started more than `lease` ago.
pub fn owner_is_gone(batch: &BatchRecord, lease: std::time::Duration) -> bool {
    let mut parts = batch.owner.rsplitn(3, ':');
    let (start, pid, host) = (parts.next(), parts.next(), parts.next());
    if let (Some(host), Some(Ok(pid)), Some(Ok(start))) = (host, pid.map(str::parse::<u32>), start.map(str::parse::<u64>)) {
        if host == host_name() && start != 0 {
            return process_start_ticks(pid) != Some(start);
        }
    }
    let started = chrono::DateTime::parse_from_rfc3339(&batch.started_at).map(|t| t.with_timezone(&chrono::Utc));
    match started {
        Ok(t) => chrono::Utc::now().signed_duration_since(t).to_std().is_ok_and(|age| age > lease),
        Err(_) => true,
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}
