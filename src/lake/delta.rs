//! Delta Lake tables: creating a table, replacing bags' partitions in single atomic commits
//! (removes + adds; directly in the log when nothing else changes, [`super::delta_commit`],
//! else through `deltalake`), compaction commits, and what readers need of a table's current
//! snapshot (read by [`super::delta_log`], or by `deltalake` for logs beyond it). What the
//! commits are made of (types, schemas, actions) is in [`super::delta_schema`].

use std::collections::HashMap;

use arrow::datatypes::Fields;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{
    new_metadata, Action, MetadataExt, Protocol, StructType,
};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::DeltaTable;
use url::Url;

pub use super::delta_log::ActiveFile;
pub use super::delta_schema::{add_action, decode_arrow_fields, delta_struct, delta_type, encode_arrow_fields, merge_schemas, table_schema, union_arrow_fields, PartitionWrite, TableSchema, ARROW_SCHEMA_PROPERTY};
use super::location::TableLocation;
use super::parquet::PartFile;
use super::PARTITION_COLUMN;
use crate::lake::error::{LakeError, Result};

/// The Arrow columns of the table at `location`, from its metadata; `None` for a table without
/// them (or no table).
pub async fn arrow_fields(location: &TableLocation) -> Result<Option<Fields>> {
    Ok(table_files(location).await?.arrow_fields)
}

pub(super) fn table_url(location: &TableLocation) -> Result<Url> {
    location.ensure_exists()?;
    Ok(location.url().clone())
}

/// Opens the Delta table at `location`, or returns `None` when there is none yet.
pub async fn open(location: &TableLocation) -> Result<Option<DeltaTable>> {
    if location.loaded_table().is_none() && !location.has_delta_log().await? {
        return Ok(None);
    }
    Ok(Some(load(location).await?))
}

/// Loads the table at `location` at its latest version: the commits since this process last
/// loaded it, or its last checkpoint and the commits after it.
async fn load(location: &TableLocation) -> Result<DeltaTable> {
    let table = match location.loaded_table() {
        Some(mut table) => {
            table.update_state().await?;
            table
        }
        None => deltalake::open_table_with_storage_options(table_url(location)?, location.storage_options()).await?,
    };
    location.keep_loaded_table(&table);
    Ok(table)
}

/// Replaces every row of the unpartitioned table at `location` with `batch` (creating the
/// table, or replacing its schema), in one commit through `deltalake`. For small tables written
/// whole (the exported bag records), not for bag partitions.
pub async fn overwrite_table(location: &TableLocation, batch: arrow::array::RecordBatch) -> Result<u64> {
    let batch = super::parquet::file_batch(&batch)?;
    let url = table_url(location)?;
    let table = if location.has_delta_log().await? {
        DeltaTable::try_from_url_with_storage_options(url, location.storage_options()).await?
    } else {
        // Not loaded: there is nothing to load yet.
        deltalake::DeltaTableBuilder::from_url(url)?.with_storage_options(location.storage_options()).build()?
    };
    let table = table
        .write(vec![batch])
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
        .await?;
    Ok(table.version().unwrap_or(0))
}

/// Current schema of the table at `location`, if it exists.
pub async fn current_schema(location: &TableLocation) -> Result<Option<StructType>> {
    // From the lean snapshot when it reads the log and the schema parses; else `deltalake`.
    if let Ok(Some(snapshot)) = super::delta_log::read_snapshot(location).await {
        if let Some(schema) = snapshot.schema_string.as_deref().and_then(|text| serde_json::from_str::<StructType>(text).ok()) {
            return Ok(Some(schema));
        }
    }
    Ok(match open(location).await? {
        Some(t) => Some(t.snapshot()?.schema().as_ref().clone()),
        None => None,
    })
}

/// Replaces the partition `bag_file = bag` of the table at `dir` with `parts`, in one commit.
/// The table is created when missing and its schema widened with new columns when needed.
/// With `delete_replaced`, the data files the commit removed are deleted from disk afterwards.
pub async fn replace_partition(dir: &TableLocation, name: &str, schema: &TableSchema, bag: &str, parts: &[PartFile], delete_replaced: bool) -> Result<i64> {
    replace_partitions(dir, name, schema, &[PartitionWrite::new(bag, parts.to_vec())], delete_replaced).await
}

/// Replaces the partitions of several bags of the table at `dir`, in one commit: a reader sees
/// all of them before or all after. One commit for many bags is what keeps the cost of a bag
/// flat as a table grows, since every commit reads the table's state and every tenth one writes
/// a checkpoint of all its files. See [`replace_partition`] for the rest.
pub async fn replace_partitions(dir: &TableLocation, name: &str, schema: &TableSchema, writes: &[PartitionWrite], delete_replaced: bool) -> Result<i64> {
    // The common case, written to the log directly from the lean snapshot.
    let mut replaced = Vec::new();
    if let super::delta_commit::Outcome::Committed(version) = super::delta_commit::replace_partitions(dir, name, schema, writes, &mut replaced).await? {
        if delete_replaced {
            delete_files(dir, replaced).await;
        }
        return Ok(version);
    }
    // A new table, new columns, or a log beyond the lean reader: through `deltalake`. A writer
    // committing after the load is caught by the commit's conflict check.
    let table = if dir.loaded_table().is_some() || dir.has_delta_log().await? {
        load(dir).await?
    } else {
        match create_with_parts(dir, name, schema, writes).await? {
            Some(version) => return Ok(version),
            None => load(dir).await?,
        }
    };
    let snapshot = table.snapshot()?;
    let mut actions = Vec::new();
    let current = snapshot.schema().as_ref().clone();
    let merged = merge_schemas(&current, &schema.delta).ok_or_else(|| LakeError::ConflictingColumns { location: dir.display() })?;
    // The Arrow columns are kept up to date only in tables that have them from their creation.
    let stored_arrow = snapshot.metadata().configuration().get(ARROW_SCHEMA_PROPERTY).and_then(|text| decode_arrow_fields(text));
    let merged_arrow = stored_arrow.as_ref().map(|stored| union_arrow_fields(stored, &schema.arrow));
    if merged != current || merged_arrow != stored_arrow {
        let mut metadata = snapshot.metadata().clone().with_schema(&merged).map_err(deltalake::DeltaTableError::from)?;
        if let Some(fields) = &merged_arrow {
            metadata = metadata.add_config_key(ARROW_SCHEMA_PROPERTY.to_string(), encode_arrow_fields(fields)).map_err(deltalake::DeltaTableError::from)?;
        }
        actions.push(Action::Metadata(metadata));
    }
    let removed: std::collections::HashSet<&str> = writes.iter().flat_map(PartitionWrite::removed_partitions).collect();
    let mut replaced = Vec::new();
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        if values.get(PARTITION_COLUMN).and_then(|v| v.as_deref()).is_some_and(|bag| removed.contains(bag)) {
            actions.push(Action::Remove(file.remove_action(true)));
            replaced.push(file.object_store_path().to_string());
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    for write in writes {
        actions.extend(write.parts.iter().map(|part| Action::Add(add_action(part, &write.bag, now))));
    }
    let quoted: Vec<String> = removed.iter().map(|bag| format!("'{}'", bag.replace('\'', "''"))).collect();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
        predicate: Some(format!("{PARTITION_COLUMN} IN ({})", quoted.join(", "))),
    };
    let read_version = snapshot.version();
    let commit = replacing_commit()
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await?;
    log_concurrent_commits(name, read_version, commit.version(), commit.metrics.num_retries);
    if delete_replaced {
        delete_files(dir, replaced).await;
    }
    Ok(commit.version() as i64)
}

/// Deletes files a commit replaced: they are no longer part of the table, so their space is
/// freed now rather than at a later vacuum (readers of older table versions lose access).
async fn delete_files(dir: &TableLocation, replaced: Vec<String>) {
    for path in replaced {
        if let Err(e) = dir.delete(&path).await {
            tracing::warn!("could not delete replaced file: {e}");
        }
    }
}

/// Attempts of a commit that keeps losing the race for the next version to other writers (each
/// attempt first checks their commits for conflicts). Many writers on one table (a deploy's
/// tasks) can race many times; `deltalake`'s default is 15.
const COMMIT_RETRIES: usize = 100;

/// Says when other writers committed to the table between our read of it and our commit: the
/// commit was then checked against theirs (a conflict only when they touched our partitions),
/// and retried when one of them took the version we tried to write.
fn log_concurrent_commits(table: &str, read_version: u64, committed: u64, retries: u64) {
    let others = committed.saturating_sub(read_version + 1);
    if others > 0 || retries > 0 {
        tracing::info!(table, read_version, committed, others, retries, "concurrent commits: {others} by other writers since our read, checked for conflicts; {retries} retries");
    }
}

/// Commits `writes` (each with the columns of its files) to the table at `dir` in one commit,
/// or, when that fails, one commit per write, so that one bad bag (columns that conflict with
/// the table's) does not fail the others. Returns the writes (by index) that could not be
/// committed, with the reason; their part files are deleted.
pub async fn replace_partitions_or_each(dir: &TableLocation, name: &str, writes: &[(PartitionWrite, Fields)], delete_replaced: bool) -> Vec<(usize, String)> {
    let all = writes.iter().fold(Fields::empty(), |all, (_, fields)| union_arrow_fields(&all, fields));
    let together: Vec<PartitionWrite> = writes.iter().map(|(w, _)| w.clone()).collect();
    let outcome = match TableSchema::of(&all) {
        Ok(schema) => replace_partitions(dir, name, &schema, &together, delete_replaced).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => return Vec::new(),
        Err(e) if writes.len() == 1 => {
            discard_parts(dir, &writes[0].0.parts).await;
            return vec![(0, format!("table {name}: {e}"))];
        }
        Err(e) => tracing::warn!(table = name, bags = writes.len(), "committing the bags together failed ({e}); committing them one by one"),
    }
    let mut failed = Vec::new();
    for (i, (write, fields)) in writes.iter().enumerate() {
        let one = match TableSchema::of(fields) {
            Ok(schema) => replace_partitions(dir, name, &schema, std::slice::from_ref(write), delete_replaced).await,
            Err(e) => Err(e),
        };
        if let Err(e) = one {
            failed.push((i, format!("table {name}: {e}")));
            discard_parts(dir, &write.parts).await;
        }
    }
    failed
}

/// Deletes part files of the table at `dir` that no commit references.
pub async fn discard_parts(dir: &TableLocation, parts: &[PartFile]) {
    for part in parts {
        if let Err(e) = dir.delete(&part.relative_path).await {
            tracing::warn!("could not delete an uncommitted part file: {e}");
        }
    }
}

/// Versions between checkpoints of the tables we create: loading a table reads its last
/// checkpoint and the commits after it, so fewer commits between checkpoints keep each load
/// (one per bag and table) short as a lake grows; writing a checkpoint costs a pass over the
/// table's files.
const CHECKPOINT_INTERVAL: (&str, &str) = ("delta.checkpointInterval", "10");

/// How a partition replacement is committed: the table state after the commit is the loaded
/// snapshot plus this commit (without a post-commit hook `deltalake` reads the whole log again),
/// and a checkpoint is written every `delta.checkpointInterval` versions (see
/// [`CHECKPOINT_INTERVAL`]), so that loading the table reads one checkpoint and at most that
/// many commits instead of every commit since the table was created. Expired logs are not cleaned up here.
fn replacing_commit() -> CommitBuilder {
    CommitBuilder::from(
        CommitProperties::default()
            .with_create_checkpoint(true)
            .with_cleanup_expired_logs(Some(false))
            .with_max_retries(COMMIT_RETRIES),
    )
}

/// Creates the table at `dir` with the partitions of `writes` as its first, all in its first commit (one
/// log write instead of a create and then a replace). Returns `None` when another writer created
/// the table first: the caller then replaces the partition in the existing table.
///
/// The commit is written and nothing more: `deltalake`'s create operation reads the new table
/// back twice after writing it (for the commit's post-commit step and for the table it returns),
/// which was most of an ingest's commit time, and an ingest has no use for that table.
async fn create_with_parts(dir: &TableLocation, name: &str, schema: &TableSchema, writes: &[PartitionWrite]) -> Result<Option<i64>> {
    let table = deltalake::DeltaTableBuilder::from_url(table_url(dir)?)?
        .with_storage_options(dir.storage_options())
        .build()?;
    // Reader 1 / writer 2: what `deltalake` gives a table with our column types and no features.
    let protocol: Protocol = serde_json::from_value(serde_json::json!({ "minReaderVersion": 1, "minWriterVersion": 2 }))
        .map_err(deltalake::DeltaTableError::from)?;
    let properties = [
        (CHECKPOINT_INTERVAL.0.to_string(), CHECKPOINT_INTERVAL.1.to_string()),
        (ARROW_SCHEMA_PROPERTY.to_string(), encode_arrow_fields(&schema.arrow)),
    ];
    let metadata = new_metadata(&schema.delta, [PARTITION_COLUMN], properties)
        .and_then(|m| m.with_name(name.to_string()))
        .map_err(deltalake::DeltaTableError::from)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut actions = vec![Action::Protocol(protocol.clone()), Action::Metadata(metadata.clone())];
    for write in writes {
        actions.extend(write.parts.iter().map(|part| Action::Add(add_action(part, &write.bag, now))));
    }
    let operation = DeltaOperation::Create {
        mode: SaveMode::ErrorIfExists,
        location: table.table_url().clone(),
        protocol,
        metadata,
    };
    // No retries: when version 0 exists another writer created the table, and our create must
    // not become version 1 of theirs.
    let commit = CommitBuilder::default()
        .with_actions(actions)
        .with_max_retries(0)
        .build(None, table.log_store(), operation);
    // Prepared, then written; not awaiting the post-commit step is what skips the read-backs.
    let committed = async { commit.into_prepared_commit_future().await?.await }.await;
    match committed {
        Ok(post_commit) => Ok(Some(post_commit.version as i64)),
        Err(e) if dir.has_delta_log().await? => {
            tracing::debug!(table = name, "another writer created the table first ({e}); replacing the partition in it");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Replaces files of the table at `dir` with a compacted file holding the same rows, in one
/// commit with Delta's OPTIMIZE semantics: nothing is added or removed as data (`dataChange`
/// false), so readers and writers of other partitions carry on, and a writer that replaced
/// the same partition meanwhile makes this commit fail its conflict check (the compaction is
/// then simply not applied). `compacted` lists each new file with the old files it replaces.
pub async fn commit_compaction(dir: &TableLocation, compacted: &[(PartFile, String, Vec<String>)], target_size: u64) -> Result<i64> {
    let table = load(dir).await?;
    let snapshot = table.snapshot()?;
    let replaced: std::collections::HashSet<&str> = compacted.iter().flat_map(|(_, _, old)| old.iter().map(String::as_str)).collect();
    let mut actions = Vec::new();
    for file in snapshot.log_data().iter() {
        if replaced.contains(file.object_store_path().as_ref()) {
            actions.push(Action::Remove(file.remove_action(false)));
        }
    }
    if actions.len() != replaced.len() {
        return Err(LakeError::Delta { reason: format!("{}: files changed while they were compacted; run optimize again", dir.display()) });
    }
    let now = chrono::Utc::now().timestamp_millis();
    for (part, bag, _) in compacted {
        let mut add = add_action(part, bag, now);
        add.data_change = false;
        actions.push(Action::Add(add));
    }
    let operation = DeltaOperation::Optimize { predicate: None, target_size: i64::try_from(target_size).unwrap_or(i64::MAX) };
    let commit = replacing_commit().with_actions(actions).build(Some(snapshot), table.log_store(), operation).await?;
    Ok(commit.version() as i64)
}



/// The active Parquet files of the table at `location`.
pub async fn active_files(location: &TableLocation) -> Result<Vec<ActiveFile>> {
    Ok(table_files(location).await?.files)
}

/// What a reader needs of the current snapshot of a table, from one load of it.
#[derive(Debug, Default)]
pub struct TableFiles {
    /// Its active Parquet files.
    pub files: Vec<ActiveFile>,
    /// Its Arrow columns (see [`ARROW_SCHEMA_PROPERTY`]), when it records them.
    pub arrow_fields: Option<Fields>,
}

/// The active files and the Arrow columns of the table at `location` (empty when there is no
/// table yet).
pub async fn table_files(location: &TableLocation) -> Result<TableFiles> {
    Ok(match current_files(location).await? {
        Some(current) => {
            let arrow_fields = current.arrow_fields();
            TableFiles { files: current.into_files(), arrow_fields }
        }
        None => TableFiles::default(),
    })
}

/// A table's current snapshot as read by the lean log reader, or by `deltalake` for a log
/// beyond it. Files and columns are taken out only when needed.
enum CurrentFiles {
    Lean(std::sync::Arc<super::delta_log::Snapshot>),
    Eager { version: i64, files: Vec<ActiveFile>, arrow_fields: Option<Fields> },
}

impl CurrentFiles {
    fn version(&self) -> i64 {
        match self {
            CurrentFiles::Lean(snapshot) => snapshot.version,
            CurrentFiles::Eager { version, .. } => *version,
        }
    }

    /// The active files, in no particular order.
    fn into_files(self) -> Vec<ActiveFile> {
        match self {
            CurrentFiles::Lean(snapshot) => snapshot.files.values().cloned().collect(),
            CurrentFiles::Eager { files, .. } => files,
        }
    }

    fn arrow_fields(&self) -> Option<Fields> {
        match self {
            CurrentFiles::Lean(snapshot) => snapshot.configuration.get(ARROW_SCHEMA_PROPERTY).and_then(|text| decode_arrow_fields(text)),
            CurrentFiles::Eager { arrow_fields, .. } => arrow_fields.clone(),
        }
    }
}

/// The current snapshot of the table at `location`, or `None` when there is no table.
async fn current_files(location: &TableLocation) -> Result<Option<CurrentFiles>> {
    match super::delta_log::read_snapshot(location).await {
        Ok(snapshot) => Ok(snapshot.map(CurrentFiles::Lean)),
        Err(super::delta_log::ReadError::Lake(e)) => Err(e),
        Err(super::delta_log::ReadError::Unsupported(why)) => {
            tracing::debug!("reading the table with deltalake: {}", why.0);
            let Some(table) = open(location).await? else {
                return Ok(None);
            };
            let snapshot = table.snapshot()?;
            Ok(Some(CurrentFiles::Eager {
                version: snapshot.version() as i64,
                files: snapshot_files(snapshot),
                arrow_fields: snapshot_arrow_fields(snapshot),
            }))
        }
    }
}

fn snapshot_files(snapshot: &deltalake::table::state::DeltaTableState) -> Vec<ActiveFile> {
    snapshot
        .log_data()
        .iter()
        .map(|f| ActiveFile {
            // The object store path is the file's path relative to the table.
            relative_path: f.object_store_path().to_string(),
            size: u64::try_from(f.size()).unwrap_or(0),
            bag_file: f.partition_values_map().get(PARTITION_COLUMN).cloned().flatten(),
            rows: f.num_records().map(|n| n as u64),
        })
        .collect()
}

fn snapshot_arrow_fields(snapshot: &deltalake::table::state::DeltaTableState) -> Option<Fields> {
    snapshot.metadata().configuration().get(ARROW_SCHEMA_PROPERTY).and_then(|text| decode_arrow_fields(text))
}

/// A table's files by partition, as of one version.
struct PartitionIndex {
    version: i64,
    by_bag: HashMap<String, Vec<ActiveFile>>,
    arrow_fields: Option<Fields>,
}

/// Per process, the partition index of each table read by partition (by its location), kept
/// while its version is current: a batch reads one partition of every topic table per bag,
/// and listing a table's files costs as much as the table has files.
fn partition_indexes() -> &'static std::sync::Mutex<HashMap<String, std::sync::Arc<PartitionIndex>>> {
    static INDEXES: std::sync::OnceLock<std::sync::Mutex<HashMap<String, std::sync::Arc<PartitionIndex>>>> = std::sync::OnceLock::new();
    INDEXES.get_or_init(Default::default)
}

/// The files of the `bag_file` partition of the table at `location`, in name order (part names
/// carry the chunk range and sequence, so this is the bag's record order), and the table's
/// Arrow columns. The table's files are listed once per version and process.
pub async fn partition_table_files(location: &TableLocation, bag_file: &str) -> Result<TableFiles> {
    let key = location.display();
    let cached = partition_indexes().lock().ok().and_then(|indexes| indexes.get(&key).cloned());
    let Some(current) = current_files(location).await? else {
        return Ok(TableFiles::default());
    };
    let index = match cached.filter(|index| index.version == current.version()) {
        Some(index) => index,
        None => {
            let (version, arrow_fields) = (current.version(), current.arrow_fields());
            let mut by_bag: HashMap<String, Vec<ActiveFile>> = HashMap::new();
            for file in current.into_files() {
                by_bag.entry(file.bag_file.clone().unwrap_or_default()).or_default().push(file);
            }
            for files in by_bag.values_mut() {
                files.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
            }
            let index = std::sync::Arc::new(PartitionIndex { version, by_bag, arrow_fields });
            if let Ok(mut indexes) = partition_indexes().lock() {
                indexes.insert(key, index.clone());
            }
            index
        }
    };
    Ok(TableFiles { files: index.by_bag.get(bag_file).cloned().unwrap_or_default(), arrow_fields: index.arrow_fields.clone() })
}

/// The active part files of one `bag_file` partition, in name order.
pub async fn partition_files(location: &TableLocation, bag_file: &str) -> Result<Vec<ActiveFile>> {
    Ok(partition_table_files(location, bag_file).await?.files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType as ArrowType, Field, TimeUnit};

    fn schema() -> TableSchema {
        let fields: Fields = vec![Field::new("log_time", ArrowType::Int64, true)].into();
        TableSchema::of(&fields).unwrap()
    }

    fn part(name: &str, rows: u64) -> PartFile {
        PartFile {
            relative_path: format!("bag_file=a/{name}.parquet"),
            size: 10,
            rows,
            log_time_range: Some((1, 2)),
        }
    }

    async fn partition_paths(location: &TableLocation) -> Vec<String> {
        let mut paths: Vec<String> = partition_files(location, "a").await.unwrap().into_iter().map(|f| f.relative_path).collect();
        paths.sort();
        paths
    }

    #[tokio::test]
    async fn the_tables_arrow_columns_are_kept_in_its_metadata_and_widened() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        assert_eq!(arrow_fields(&location).await.unwrap(), None, "no table yet");
        let time = ArrowType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let micros = ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let first: Fields = vec![Field::new("log_time", time.clone(), true)].into();
        replace_partition(&location, "t", &TableSchema::of(&first).unwrap(), "a", &[part("p0", 3)], false).await.unwrap();
        let names_and_types = |fields: Fields| fields.iter().map(|f| (f.name().clone(), f.data_type().clone())).collect::<Vec<_>>();
        let stored_time = vec![("log_time".to_string(), micros.clone()), ("log_time_ns".to_string(), ArrowType::Int64)];
        assert_eq!(names_and_types(arrow_fields(&location).await.unwrap().unwrap()), stored_time, "the stored Arrow types");
        let wider: Fields = vec![Field::new("log_time", time, true), Field::new("count", ArrowType::UInt64, true)].into();
        replace_partition(&location, "t", &TableSchema::of(&wider).unwrap(), "b", &[part("q0", 4)], false).await.unwrap();
        let mut expected = stored_time;
        expected.push(("count".to_string(), ArrowType::Decimal128(20, 0)));
        assert_eq!(names_and_types(arrow_fields(&location).await.unwrap().unwrap()), expected);
        let delta = current_schema(&location).await.unwrap().unwrap();
        let delta_types: Vec<String> = delta.fields().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
        assert_eq!(delta_types, ["log_time:timestamp", "log_time_ns:long", "bag_file:string", "count:decimal(20,0)"], "Delta types agree with the file types");
    }

    #[tokio::test]
    async fn a_new_table_gets_its_first_partition_in_its_first_commit() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        let version = replace_partition(&location, "t", &schema(), "a", &[part("p0", 3)], false).await.unwrap();
        assert_eq!(version, 0);
        assert_eq!(partition_paths(&location).await, vec!["bag_file=a/p0.parquet"]);

        // The second ingest of the bag replaces the partition in the existing table.
        let version = replace_partition(&location, "t", &schema(), "a", &[part("p1", 4)], false).await.unwrap();
        assert_eq!(version, 1);
        assert_eq!(partition_paths(&location).await, vec!["bag_file=a/p1.parquet"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_writers_creating_the_same_table_at_once_both_land_their_partition() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let location = TableLocation::local(dir.path()).unwrap();
            let (a, b) = (location.clone(), location.clone());
            let first = tokio::spawn(async move { replace_partition(&a, "t", &schema(), "a", &[part("p0", 3)], false).await });
            let second = tokio::spawn(async move { replace_partition(&b, "t", &schema(), "b", &[part("q0", 4)], false).await });
            let mut versions = vec![first.await.unwrap().unwrap(), second.await.unwrap().unwrap()];
            versions.sort();
            assert_eq!(versions, vec![0, 1], "round {round}");
            // (`part` names every file under bag_file=a; the partition value says whose it is.)
            let mut files: Vec<(Option<String>, String)> =
                active_files(&location).await.unwrap().into_iter().map(|f| (f.bag_file, f.relative_path)).collect();
            files.sort();
            let expected = [("a", "bag_file=a/p0.parquet"), ("b", "bag_file=a/q0.parquet")];
            assert_eq!(files, expected.map(|(bag, path)| (Some(bag.to_string()), path.to_string())), "round {round}");
        }
    }

    #[tokio::test]
    async fn creating_a_table_another_writer_created_first_leaves_it_to_the_replace() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        replace_partition(&location, "t", &schema(), "a", &[part("p0", 3)], false).await.unwrap();
        // What a writer that saw no table a moment ago does: its create must not succeed.
        let created = create_with_parts(&location, "t", &schema(), &[PartitionWrite::new("a", vec![part("p1", 4)])]).await.unwrap();
        assert_eq!(created, None);
        assert_eq!(partition_paths(&location).await, vec!["bag_file=a/p0.parquet"]);
    }

    #[tokio::test]
    async fn one_commit_replaces_several_partitions_and_the_old_keys_they_replace() {
        let dir = tempfile::tempdir().unwrap();
        let location = TableLocation::local(dir.path()).unwrap();
        replace_partition(&location, "t", &schema(), "old_name", &[part("o0", 2)], false).await.unwrap();
        replace_partition(&location, "t", &schema(), "other", &[part("x0", 5)], false).await.unwrap();
        let writes = [
            PartitionWrite { bag: "a-000000000001".into(), parts: vec![part("a0", 3)], replaces: vec!["old_name".into()] },
            PartitionWrite::new("b-000000000002", vec![part("b0", 4), part("b1", 1)]),
        ];
        let version = replace_partitions(&location, "t", &schema(), &writes, false).await.unwrap();
        assert_eq!(version, 2, "one commit for both bags");
        let mut files: Vec<(String, String)> =
            active_files(&location).await.unwrap().into_iter().map(|f| (f.bag_file.unwrap(), f.relative_path)).collect();
        files.sort();
        let expected = [
            ("a-000000000001", "bag_file=a/a0.parquet"),
            ("b-000000000002", "bag_file=a/b0.parquet"),
            ("b-000000000002", "bag_file=a/b1.parquet"),
            ("other", "bag_file=a/x0.parquet"),
        ];
        assert_eq!(files, expected.map(|(bag, path)| (bag.to_string(), path.to_string())), "old_name is gone, other untouched");
    }
}
