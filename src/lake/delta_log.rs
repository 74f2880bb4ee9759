//! A lean, read-only reader of a Delta table's current snapshot: its active files (path, size,
//! `bag_file`, row count) and its metadata's configuration, from the last checkpoint and the
//! commits after it.
//!
//! Readers (`scenes query`, and sync and detect reading one bag's partition) need no more than
//! that, and `deltalake` gives it at a price that grows with the table: it parses every file's
//! statistics into columns for data skipping and runs a general log replay. Here the checkpoint
//! is read for four columns of `add` and the metadata, and each commit after it line by line.
//! Snapshots are kept per process and brought up to date from the commits made since.
//!
//! Only what our tables use is understood: a table that needs a newer reader (deletion vectors,
//! column mapping) or has a multi-part or V2 checkpoint is reported as [`Unsupported`], and the
//! caller falls back to `deltalake`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{Array, AsArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::Deserialize;

use super::location::TableLocation;
use super::PARTITION_COLUMN;
use crate::lake::error::LakeError;

/// An active data file of a table.
#[derive(Debug, Clone)]
pub struct ActiveFile {
    /// Path relative to the table location, with `/` separators.
    pub relative_path: String,
    pub size: u64,
    /// Its `bag_file` partition value.
    pub bag_file: Option<String>,
    /// Its row count, from the commit's statistics (`numRecords`), when recorded.
    pub rows: Option<u64>,
}

/// Why the lean reader cannot read a table; the caller reads it with `deltalake` instead.
#[derive(Debug)]
pub struct Unsupported(pub String);

/// The current state of a table as far as readers need it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Version of the last commit applied.
    pub version: i64,
    /// Active files by their path relative to the table.
    pub files: HashMap<String, ActiveFile>,
    /// The table metadata's `configuration`.
    pub configuration: HashMap<String, String>,
    /// The table metadata's `schemaString` (the Delta schema as JSON).
    pub schema_string: Option<String>,
    /// Paths as the log holds them (URL-encoded), for the files whose path differs from their
    /// `relative_path`: a remove action must name a file exactly as its add did.
    pub logged_paths: HashMap<String, String>,
    /// Whether the snapshot was read with what a checkpoint needs ([`read_snapshot_for_checkpoint`]):
    /// the fields below are filled only then (readers need none of it).
    pub for_checkpoint: bool,
    /// What a checkpoint needs of each active file beyond [`ActiveFile`], by relative path.
    pub details: HashMap<String, FileDetails>,
    /// The table's metaData and protocol actions as JSON.
    pub metadata_json: Option<serde_json::Value>,
    pub protocol_json: Option<serde_json::Value>,
}

/// An active file's modification time and statistics as its add action has them.
#[derive(Debug, Clone, Default)]
pub struct FileDetails {
    pub modification_time: i64,
    pub stats: Option<String>,
}

impl Snapshot {
    /// The path of the active file `relative_path` as the log holds it.
    pub fn logged_path<'a>(&'a self, relative_path: &'a str) -> &'a str {
        self.logged_paths.get(relative_path).map_or(relative_path, String::as_str)
    }
}

/// What the commits after a snapshot changed: the partitions whose files they added or removed,
/// and whether they changed the table's metadata or protocol.
#[derive(Debug, Default)]
pub struct Changes {
    pub partitions: std::collections::HashSet<String>,
    pub metadata: bool,
    pub protocol: bool,
}

/// The table at `location` now, and what the commits after `base` changed; `None` when
/// `base`'s own last commit is gone (the table was made anew or its log cleaned up).
pub async fn changes_since(location: &TableLocation, base: &Snapshot) -> std::result::Result<Option<(Arc<Snapshot>, Changes)>, ReadError> {
    let Some(commits) = commits_since(location, base).await? else {
        return Ok(None);
    };
    let mut next = base.clone();
    let mut changes = Changes::default();
    apply_commits_noting(location, &mut next, &commits, Some(&mut changes)).await?;
    let next = Arc::new(next);
    if let Ok(mut all) = snapshots().lock() {
        all.insert(location.url().to_string(), next.clone());
    }
    Ok(Some((next, changes)))
}

/// Outcome of reading a snapshot: `Ok(None)` when there is no table.
pub type Read = std::result::Result<Option<Arc<Snapshot>>, ReadError>;

/// A snapshot could not be read: the log is beyond this reader, or reading failed.
#[derive(Debug)]
pub enum ReadError {
    Unsupported(Unsupported),
    Lake(LakeError),
}

impl From<LakeError> for ReadError {
    fn from(e: LakeError) -> Self {
        ReadError::Lake(e)
    }
}

fn unsupported(location: &TableLocation, why: impl std::fmt::Display) -> ReadError {
    ReadError::Unsupported(Unsupported(format!("{}: {why}", location.display())))
}

fn corrupt(location: &TableLocation, file: &str, why: impl std::fmt::Display) -> ReadError {
    ReadError::Lake(LakeError::Delta { reason: format!("{}/_delta_log/{file}: {why}", location.display()) })
}

/// Snapshots read in this process, by table URL.
fn snapshots() -> &'static Mutex<HashMap<String, Arc<Snapshot>>> {
    static SNAPSHOTS: OnceLock<Mutex<HashMap<String, Arc<Snapshot>>>> = OnceLock::new();
    SNAPSHOTS.get_or_init(Default::default)
}

/// The current snapshot of the table at `location`: the one this process read before, with
/// the commits made since applied, or its last checkpoint and the commits after it.
pub async fn read_snapshot(location: &TableLocation) -> Read {
    read(location, false).await
}

/// [`read_snapshot`] with everything a checkpoint of it needs (every file's add action, the
/// table's metadata and protocol as JSON).
pub async fn read_snapshot_for_checkpoint(location: &TableLocation) -> Read {
    read(location, true).await
}

async fn read(location: &TableLocation, for_checkpoint: bool) -> Read {
    let started = std::time::Instant::now();
    let key = location.url().to_string();
    let known = snapshots().lock().ok().and_then(|s| s.get(&key).cloned()).filter(|known| known.for_checkpoint || !for_checkpoint);
    let snapshot = match known {
        Some(known) => match commits_since(location, &known).await? {
            Some(commits) if commits.is_empty() => return Ok(Some(known)),
            Some(commits) => {
                let mut next = known.as_ref().clone();
                apply_commits(location, &mut next, &commits).await?;
                next
            }
            // The commit we read last is gone: the table was made anew or its log cleaned up.
            None => match read_from_log(location, for_checkpoint).await? {
                Some(snapshot) => snapshot,
                None => return Ok(None),
            },
        },
        None => match read_from_log(location, for_checkpoint).await? {
            Some(snapshot) => snapshot,
            None => return Ok(None),
        },
    };
    tracing::debug!(table = %location.display(), version = snapshot.version, files = snapshot.files.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "read the table's snapshot");
    let snapshot = Arc::new(snapshot);
    if let Ok(mut all) = snapshots().lock() {
        all.insert(key, snapshot.clone());
    }
    Ok(Some(snapshot))
}

/// The commits made after the snapshot `known`, or `None` when its own last commit is no longer
/// in the log. Listing starts at that commit, so a long log is not listed again.
async fn commits_since(location: &TableLocation, known: &Snapshot) -> std::result::Result<Option<Vec<(i64, String)>>, ReadError> {
    let from = format!("{:020}", known.version);
    let listed = location.list_delta_log(Some(&from)).await?;
    if !listed.contains(&commit_name(known.version)) {
        return Ok(None);
    }
    commits_after(location, &listed, known.version).map(Some)
}

/// The snapshot from the whole log: its last checkpoint, then every commit after it.
async fn read_from_log(location: &TableLocation, for_checkpoint: bool) -> std::result::Result<Option<Snapshot>, ReadError> {
    let log = location.list_delta_log(None).await?;
    let mut snapshot = Snapshot { version: -1, for_checkpoint, ..Snapshot::default() };
    if let Some((version, name)) = last_checkpoint(location, &log)? {
        read_checkpoint(location, &name, &mut snapshot).await?;
        snapshot.version = version;
    }
    let commits = commits_after(location, &log, snapshot.version)?;
    apply_commits(location, &mut snapshot, &commits).await?;
    Ok((snapshot.version >= 0).then_some(snapshot))
}

/// The name of the commit file of `version`.
fn commit_name(version: i64) -> String {
    format!("{version:020}.json")
}

fn version_of(name: &str) -> Option<i64> {
    name.get(..20)?.parse().ok()
}

/// The newest single-file checkpoint in `log`, as (version, file name). Multi-part and V2
/// checkpoints are beyond this reader.
fn last_checkpoint(location: &TableLocation, log: &[String]) -> std::result::Result<Option<(i64, String)>, ReadError> {
    let mut last = None;
    for name in log {
        let Some(rest) = name.get(20..).filter(|rest| rest.starts_with(".checkpoint")) else { continue };
        if rest != ".checkpoint.parquet" {
            return Err(unsupported(location, format!("checkpoint {name} is not a single-part checkpoint")));
        }
        if let Some(version) = version_of(name) {
            last = Some((version, name.clone()));
        }
    }
    Ok(last)
}

/// The commits in `log` after `version`, in order; a gap in their versions is an error.
fn commits_after(location: &TableLocation, log: &[String], version: i64) -> std::result::Result<Vec<(i64, String)>, ReadError> {
    let mut commits: Vec<(i64, String)> = log
        .iter()
        .filter(|name| name.get(20..) == Some(".json"))
        .filter_map(|name| version_of(name).map(|v| (v, name.clone())))
        .filter(|(v, _)| *v > version)
        .collect();
    commits.sort();
    let mut expected = version + 1;
    for (v, name) in &commits {
        if *v != expected {
            return Err(corrupt(location, name, format!("commit {expected} is missing before it")));
        }
        expected = v + 1;
    }
    Ok(commits)
}

/// Applies the add, remove and metadata actions of `commits` to `snapshot`, in order.
async fn apply_commits(location: &TableLocation, snapshot: &mut Snapshot, commits: &[(i64, String)]) -> std::result::Result<(), ReadError> {
    apply_commits_noting(location, snapshot, commits, None).await
}

/// [`apply_commits`], noting in `changes` what the commits touched.
async fn apply_commits_noting(location: &TableLocation, snapshot: &mut Snapshot, commits: &[(i64, String)], mut changes: Option<&mut Changes>) -> std::result::Result<(), ReadError> {
    for (version, name) in commits {
        let bytes = location.read_bytes(&format!("_delta_log/{name}")).await?;
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(location, name, e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: CommitAction = serde_json::from_str(line).map_err(|e| corrupt(location, name, e))?;
            if snapshot.for_checkpoint && (action.metadata.is_some() || action.protocol.is_some()) {
                let value: serde_json::Value = serde_json::from_str(line).map_err(|e| corrupt(location, name, e))?;
                if let Some(metadata) = value.get("metaData") {
                    snapshot.metadata_json = Some(metadata.clone());
                }
                if let Some(protocol) = value.get("protocol") {
                    snapshot.protocol_json = Some(protocol.clone());
                }
            }
            if let Some(changes) = changes.as_deref_mut() {
                note(snapshot, &action, changes);
            }
            apply(location, snapshot, action)?;
        }
        snapshot.version = *version;
    }
    Ok(())
}

/// Notes in `changes` what `action` touches (before it is applied to `snapshot`).
fn note(snapshot: &Snapshot, action: &CommitAction, changes: &mut Changes) {
    changes.metadata |= action.metadata.is_some();
    changes.protocol |= action.protocol.is_some();
    if let Some(add) = &action.add {
        changes.partitions.extend(add.partition_values.get(PARTITION_COLUMN).cloned().flatten());
    }
    if let Some(remove) = &action.remove {
        let known = snapshot.files.get(&file_path(&remove.path)).and_then(|f| f.bag_file.clone());
        let stated = remove.partition_values.as_ref().and_then(|v| v.get(PARTITION_COLUMN).cloned().flatten());
        changes.partitions.extend(stated.or(known));
    }
}

/// One line of a commit; the actions a reader of our tables needs (others are ignored).
#[derive(Deserialize)]
struct CommitAction {
    add: Option<AddAction>,
    remove: Option<RemoveAction>,
    #[serde(rename = "metaData")]
    metadata: Option<MetadataAction>,
    protocol: Option<ProtocolAction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddAction {
    path: String,
    #[serde(default)]
    partition_values: HashMap<String, Option<String>>,
    size: i64,
    #[serde(default)]
    modification_time: i64,
    stats: Option<String>,
    deletion_vector: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoveAction {
    path: String,
    partition_values: Option<HashMap<String, Option<String>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataAction {
    #[serde(default)]
    configuration: HashMap<String, String>,
    schema_string: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProtocolAction {
    min_reader_version: i32,
}

fn apply(location: &TableLocation, snapshot: &mut Snapshot, action: CommitAction) -> std::result::Result<(), ReadError> {
    if let Some(protocol) = action.protocol {
        check_reader_version(location, protocol.min_reader_version)?;
    }
    if let Some(metadata) = action.metadata {
        snapshot.configuration = metadata.configuration;
        snapshot.schema_string = metadata.schema_string;
    }
    if let Some(remove) = action.remove {
        let relative = file_path(&remove.path);
        snapshot.files.remove(&relative);
        snapshot.logged_paths.remove(&relative);
        snapshot.details.remove(&relative);
    }
    if let Some(add) = action.add {
        if add.deletion_vector.as_ref().is_some_and(|dv| !dv.is_null()) {
            return Err(unsupported(location, "a file has a deletion vector"));
        }
        let file = active_file(&add.path, add.size, add.partition_values.get(PARTITION_COLUMN).cloned().flatten(), add.stats.as_deref());
        if snapshot.for_checkpoint {
            snapshot.details.insert(file.relative_path.clone(), FileDetails { modification_time: add.modification_time, stats: add.stats });
        }
        insert_file(snapshot, file, &add.path);
    }
    Ok(())
}

/// Adds an active file, remembering its logged path when it differs from the relative one.
fn insert_file(snapshot: &mut Snapshot, file: ActiveFile, logged_path: &str) {
    if file.relative_path != logged_path {
        snapshot.logged_paths.insert(file.relative_path.clone(), logged_path.to_string());
    }
    snapshot.files.insert(file.relative_path.clone(), file);
}

/// Reader version 1 is plain Parquet files with partition values; later ones add features
/// (column mapping, deletion vectors) this reader does not apply.
fn check_reader_version(location: &TableLocation, version: i32) -> std::result::Result<(), ReadError> {
    if version > 1 {
        return Err(unsupported(location, format!("the table needs Delta reader version {version}")));
    }
    Ok(())
}

/// A file's path as the log holds it (URL-encoded) made a path relative to the table.
fn file_path(logged: &str) -> String {
    // The paths we write need neither decoding nor cleaning: take them as they are.
    let plain = logged.bytes().all(|b| b.is_ascii_alphanumeric() || b"=-_./".contains(&b));
    if plain && logged.split('/').all(|part| !part.is_empty() && part != "." && part != "..") {
        return logged.to_string();
    }
    let decoded = percent_encoding::percent_decode_str(logged).decode_utf8_lossy();
    match object_store::path::Path::parse(decoded.as_ref()) {
        Ok(path) => path.to_string(),
        Err(_) => object_store::path::Path::from(decoded.as_ref()).to_string(),
    }
}

fn active_file(logged_path: &str, size: i64, bag_file: Option<String>, stats: Option<&str>) -> ActiveFile {
    #[derive(Deserialize)]
    struct Stats {
        #[serde(rename = "numRecords")]
        num_records: Option<u64>,
    }
    ActiveFile {
        relative_path: file_path(logged_path),
        size: u64::try_from(size).unwrap_or(0),
        bag_file,
        rows: stats.and_then(|s| num_records(s).or_else(|| serde_json::from_str::<Stats>(s).ok().and_then(|s| s.num_records))),
    }
}

/// `numRecords` of a file's statistics as writers put it (`"numRecords":123`), found without
/// parsing the rest (the column statistics); `None` sends the caller to the JSON parser.
fn num_records(stats: &str) -> Option<u64> {
    const KEY: &str = "\"numRecords\":";
    let at = stats.find(KEY)? + KEY.len();
    let digits = stats[at..].trim_start();
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    let rest = digits[end..].trim_start();
    (end > 0 && (rest.starts_with(',') || rest.starts_with('}'))).then(|| digits[..end].parse().ok()).flatten()
}

/// The checkpoint columns this reader uses (each with every leaf below it).
const CHECKPOINT_LEAVES: &[&[&str]] = &[
    &["add", "path"],
    &["add", "partitionValues"],
    &["add", "size"],
    &["add", "stats"],
    &["add", "deletionVector", "storageType"],
    &["metaData", "configuration"],
    &["metaData", "schemaString"],
    &["protocol", "minReaderVersion"],
];

/// The checkpoint columns a checkpoint writer reads: those of a reader, the files' modification
/// times, and the whole metadata and protocol.
const CHECKPOINT_WRITER_LEAVES: &[&[&str]] = &[
    &["add", "path"],
    &["add", "partitionValues"],
    &["add", "size"],
    &["add", "stats"],
    &["add", "modificationTime"],
    &["add", "deletionVector", "storageType"],
    &["metaData"],
    &["protocol"],
];

/// Reads the active files and the metadata of the checkpoint `name` into `snapshot`.
async fn read_checkpoint(location: &TableLocation, name: &str, snapshot: &mut Snapshot) -> std::result::Result<(), ReadError> {
    let bytes = location.read_bytes(&format!("_delta_log/{name}")).await?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(location, name, e))?;
    // Only the leaves read below: a checkpoint's other columns (tags, times, row ids) are
    // most of its bytes to decode.
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, column)| {
            let parts = column.path().parts();
            let leaves = if snapshot.for_checkpoint { CHECKPOINT_WRITER_LEAVES } else { CHECKPOINT_LEAVES };
            leaves.iter().any(|wanted| parts.len() >= wanted.len() && parts.iter().zip(*wanted).all(|(a, b)| a == b))
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build().map_err(|e| corrupt(location, name, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(location, name, e))?;
        read_checkpoint_batch(location, name, &batch, snapshot)?;
    }
    Ok(())
}

fn read_checkpoint_batch(location: &TableLocation, name: &str, batch: &RecordBatch, snapshot: &mut Snapshot) -> std::result::Result<(), ReadError> {
    if snapshot.for_checkpoint {
        for (column, target) in [("metaData", &mut snapshot.metadata_json), ("protocol", &mut snapshot.protocol_json)] {
            if let Some(found) = action_json(batch, column).map_err(|e| corrupt(location, name, e))? {
                *target = Some(found);
            }
        }
    }
    if let Some(protocol) = struct_column(batch, "protocol") {
        if let Some(versions) = child(protocol, "minReaderVersion") {
            let versions = arrow::compute::cast(versions, &DataType::Int64).map_err(|e| corrupt(location, name, e))?;
            for version in versions.as_primitive::<Int64Type>().iter().flatten() {
                check_reader_version(location, i32::try_from(version).unwrap_or(i32::MAX))?;
            }
        }
    }
    if let Some(metadata) = struct_column(batch, "metaData") {
        if let Some(configuration) = child(metadata, "configuration") {
            for row in (0..metadata.len()).filter(|&row| metadata.is_valid(row)) {
                snapshot.configuration = string_map(location, name, configuration, row)?.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
            }
        }
        if let Some(schema) = child(metadata, "schemaString") {
            let schema = arrow::compute::cast(schema, &DataType::Utf8).map_err(|e| corrupt(location, name, e))?;
            let schema = schema.as_string::<i32>();
            for row in (0..metadata.len()).filter(|&row| metadata.is_valid(row) && schema.is_valid(row)) {
                snapshot.schema_string = Some(schema.value(row).to_string());
            }
        }
    }
    let Some(add) = struct_column(batch, "add") else { return Ok(()) };
    let text = |column: &str| -> std::result::Result<Option<arrow::array::ArrayRef>, ReadError> {
        child(add, column).map(|c| arrow::compute::cast(c, &DataType::Utf8).map_err(|e| corrupt(location, name, e))).transpose()
    };
    let (Some(paths), Some(sizes)) = (text("path")?, child(add, "size")) else {
        return Err(corrupt(location, name, "the checkpoint's add actions have no path or size"));
    };
    let sizes = arrow::compute::cast(sizes, &DataType::Int64).map_err(|e| corrupt(location, name, e))?;
    let stats = text("stats")?;
    let partitions = child(add, "partitionValues");
    if child(add, "deletionVector").is_some_and(|dv| dv.null_count() < dv.len() && (0..add.len()).any(|r| add.is_valid(r) && dv.is_valid(r))) {
        return Err(unsupported(location, "a file has a deletion vector"));
    }
    let (paths, sizes) = (paths.as_string::<i32>(), sizes.as_primitive::<Int64Type>());
    let stats = stats.as_ref().map(|s| s.as_string::<i32>());
    let partitions = partitions.map(|column| StringMap::of(location, name, column)).transpose()?;
    let modified = child(add, "modificationTime").map(|c| arrow::compute::cast(c, &DataType::Int64)).transpose().map_err(|e| corrupt(location, name, e))?;
    let modified = modified.as_ref().map(|m| m.as_primitive::<Int64Type>());
    for row in (0..add.len()).filter(|&row| add.is_valid(row) && paths.is_valid(row)) {
        let bag_file = partitions.as_ref().and_then(|map| map.entries(row).find(|(k, _)| *k == PARTITION_COLUMN).and_then(|(_, v)| v.map(str::to_string)));
        let row_stats = stats.filter(|s| s.is_valid(row)).map(|s| s.value(row));
        let file = active_file(paths.value(row), sizes.value(row), bag_file, row_stats);
        if snapshot.for_checkpoint {
            let modification_time = modified.filter(|m| m.is_valid(row)).map_or(0, |m| m.value(row));
            snapshot.details.insert(file.relative_path.clone(), FileDetails { modification_time, stats: row_stats.map(str::to_string) });
        }
        insert_file(snapshot, file, paths.value(row));
    }
    Ok(())
}

/// The action of column `column` (`metaData`, `protocol`) in the one row of `batch` that has
/// it, as JSON.
fn action_json(batch: &RecordBatch, column: &str) -> Result<Option<serde_json::Value>, String> {
    let Some(actions) = struct_column(batch, column) else { return Ok(None) };
    let Some(row) = (0..actions.len()).find(|&row| actions.is_valid(row)) else { return Ok(None) };
    let one = actions.slice(row, 1);
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(column, one.data_type().clone(), true)]));
    let single = RecordBatch::try_new(schema, vec![std::sync::Arc::new(one)]).map_err(|e| e.to_string())?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(&single).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&writer.into_inner()).map_err(|e| e.to_string())?;
    Ok(rows.into_iter().next().and_then(|mut row| row.get_mut(column).map(serde_json::Value::take)))
}

fn struct_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StructArray> {
    batch.column_by_name(name).and_then(|c| c.as_struct_opt())
}

fn child<'a>(parent: &'a StructArray, name: &str) -> Option<&'a arrow::array::ArrayRef> {
    parent.column_by_name(name)
}

/// The entries of row `row` of a `map<string, string>` column.
fn string_map(location: &TableLocation, name: &str, column: &arrow::array::ArrayRef, row: usize) -> std::result::Result<Vec<(String, Option<String>)>, ReadError> {
    let map = StringMap::of(location, name, column)?;
    Ok(map.entries(row).map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect())
}

/// A `map<string, string>` column with its keys and values as text, cast once for all rows.
struct StringMap<'a> {
    map: &'a arrow::array::MapArray,
    keys: arrow::array::ArrayRef,
    values: arrow::array::ArrayRef,
}

impl<'a> StringMap<'a> {
    fn of(location: &TableLocation, name: &str, column: &'a arrow::array::ArrayRef) -> std::result::Result<Self, ReadError> {
        let Some(map) = column.as_map_opt() else {
            return Err(corrupt(location, name, format!("expected a map column, found {}", column.data_type())));
        };
        let keys = arrow::compute::cast(map.keys(), &DataType::Utf8).map_err(|e| corrupt(location, name, e))?;
        let values = arrow::compute::cast(map.values(), &DataType::Utf8).map_err(|e| corrupt(location, name, e))?;
        Ok(StringMap { map, keys, values })
    }

    /// The (key, value) entries of row `row` (none when the row is null).
    fn entries(&self, row: usize) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        let (keys, values) = (self.keys.as_string::<i32>(), self.values.as_string::<i32>());
        let offsets = self.map.value_offsets();
        let range = if self.map.is_null(row) { 0..0 } else { offsets[row] as usize..offsets[row + 1] as usize };
        range.map(move |i| (keys.value(i), values.is_valid(i).then(|| values.value(i))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::delta::{self, TableSchema};
    use crate::lake::parquet::PartFile;
    use arrow::datatypes::{DataType as ArrowType, Field, Fields};

    fn schema() -> TableSchema {
        let fields: Fields = vec![Field::new("log_time", ArrowType::Int64, true)].into();
        TableSchema::of(&fields).unwrap()
    }

    fn part(bag: &str, name: &str, rows: u64) -> PartFile {
        PartFile { relative_path: format!("bag_file={bag}/{name}.parquet"), size: 10 + rows, rows, log_time_range: Some((1, 2)) }
    }

    /// (path, size, bag, rows) of every file, sorted.
    fn listed(files: impl IntoIterator<Item = ActiveFile>) -> Vec<(String, u64, Option<String>, Option<u64>)> {
        let mut out: Vec<_> = files.into_iter().map(|f| (f.relative_path, f.size, f.bag_file, f.rows)).collect();
        out.sort();
        out
    }

    /// The files `deltalake` sees in the table (a fresh load, not this process's cached one).
    async fn deltalake_files(location: &TableLocation) -> Vec<(String, u64, Option<String>, Option<u64>)> {
        let table = deltalake::open_table(location.url().clone()).await.unwrap();
        let snapshot = table.snapshot().unwrap();
        listed(snapshot.log_data().iter().map(|f| ActiveFile {
            relative_path: f.object_store_path().to_string(),
            size: f.size() as u64,
            bag_file: f.partition_values_map().get(PARTITION_COLUMN).cloned().flatten(),
            rows: f.num_records().map(|n| n as u64),
        }))
    }

    #[tokio::test]
    async fn the_snapshot_equals_deltalakes_across_checkpoints_replacements_and_new_commits() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        assert!(read_snapshot(&location).await.unwrap().is_none(), "no table yet");
        // 24 commits: checkpoints at versions 9 and 19 (every tenth version; the second written
        // from a snapshot read from the first), replaced partitions, and a bag name that the
        // log URL-encodes.
        for i in 0..24u64 {
            let bag = ["a", "b", "c d%e"][(i % 3) as usize];
            delta::replace_partition(&location, "t", &schema(), bag, &[part(bag, &format!("p{i}"), i)], false).await.unwrap();
            if i == 12 {
                snapshots().lock().unwrap().clear();
            }
            if i == 4 || i == 12 || i == 21 {
                let snapshot = read_snapshot(&location).await.unwrap().unwrap();
                assert_eq!(snapshot.version, i as i64);
                assert_eq!(listed(snapshot.files.values().cloned()), deltalake_files(&location).await, "after commit {i}");
            }
        }
        for version in [9, 19] {
            assert!(dir.path().join(format!("_delta_log/{version:020}.checkpoint.parquet")).exists(), "checkpoint {version}");
        }
        // Read from scratch: the last checkpoint and the commits after it.
        snapshots().lock().unwrap().clear();
        let snapshot = read_snapshot(&location).await.unwrap().unwrap();
        assert_eq!(snapshot.version, 23);
        let files = listed(snapshot.files.values().cloned());
        assert_eq!(files.len(), 3, "one file per bag after the replacements: {files:?}");
        assert_eq!(files, deltalake_files(&location).await);
        assert!(snapshot.configuration.contains_key(delta::ARROW_SCHEMA_PROPERTY));
    }

    #[test]
    fn the_row_count_is_found_in_statistics_as_writers_put_it() {
        assert_eq!(num_records(r#"{"numRecords":1583,"minValues":{"a":1}}"#), Some(1583));
        assert_eq!(num_records(r#"{"maxValues":{"a":2},"numRecords": 7}"#), Some(7));
        // Anything else is left to the JSON parser.
        assert_eq!(num_records(r#"{"numRecords":1.5e3}"#), None);
        assert_eq!(num_records(r#"{"numRecords":null}"#), None);
        let file = active_file("bag_file=a/p.parquet", 1, None, Some(r#"{ "numRecords" : 12 }"#));
        assert_eq!(file.rows, Some(12));
    }

    #[tokio::test]
    async fn a_table_made_anew_at_the_same_place_is_read_anew() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        for i in 0..3 {
            delta::replace_partition(&location, "t", &schema(), "a", &[part("a", &format!("p{i}"), i)], false).await.unwrap();
        }
        assert_eq!(read_snapshot(&location).await.unwrap().unwrap().version, 2);
        std::fs::remove_dir_all(dir.path().join("_delta_log")).unwrap();
        assert!(read_snapshot(&location).await.unwrap().is_none(), "the table is gone");
        let fresh = TableLocation::local(dir.path()).unwrap();
        delta::replace_partition(&fresh, "t", &schema(), "b", &[part("b", "q", 5)], false).await.unwrap();
        let snapshot = read_snapshot(&location).await.unwrap().unwrap();
        assert_eq!((snapshot.version, listed(snapshot.files.values().cloned())), (0, vec![("bag_file=b/q.parquet".to_string(), 15, Some("b".to_string()), Some(5))]));
    }

    #[tokio::test]
    async fn a_log_beyond_this_reader_is_reported_unsupported_and_a_gap_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let log = dir.path().join("_delta_log");
        std::fs::create_dir_all(&log).unwrap();
        let protocol = r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}"#;
        std::fs::write(log.join("00000000000000000000.json"), protocol).unwrap();
        let error = read_snapshot(&location).await.unwrap_err();
        assert!(matches!(&error, ReadError::Unsupported(Unsupported(why)) if why.contains("reader version 3")), "{error:?}");

        let other = tempfile::tempdir().unwrap();
        let location = TableLocation::local(other.path()).unwrap();
        for i in 0..3 {
            delta::replace_partition(&location, "t", &schema(), "a", &[part("a", &format!("p{i}"), i)], false).await.unwrap();
        }
        std::fs::remove_file(other.path().join("_delta_log/00000000000000000001.json")).unwrap();
        snapshots().lock().unwrap().clear();
        let error = read_snapshot(&location).await.unwrap_err();
        assert!(matches!(&error, ReadError::Lake(e) if e.to_string().contains("commit 1 is missing")), "{error:?}");
    }
}
