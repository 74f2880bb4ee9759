//! Commits that replace partitions, written to the Delta log directly: the new version's JSON
//! file put only if absent, from the lean snapshot ([`super::delta_log`]). `deltalake`'s commit
//! loads the table's whole state (every file) first, in every process; this costs what the
//! commit's own partitions cost, so a bag's commit does not grow with the lake.
//!
//! Only the common case is done here: the table exists, its log is one the lean reader reads,
//! and the commit leaves its schema as it is. Otherwise (a new table, new columns) the caller
//! commits through `deltalake`, which also checks such commits against concurrent ones.
//!
//! Concurrency is Delta's optimistic protocol: when another writer took the version, the
//! commits made since are read; if one touched a partition this commit writes or replaces, or
//! changed the schema or protocol, this commit gives way ([`Outcome::Retry`] or an error), else
//! it is tried again at the next version. Every `delta.checkpointInterval`-th version gets a
//! checkpoint, written from the snapshot ([`super::delta_checkpoint`]).

use std::collections::HashSet;

use deltalake::kernel::StructType;

use super::delta_schema::{self as delta, PartitionWrite, TableSchema, ARROW_SCHEMA_PROPERTY};
use super::delta_log::{self, ReadError, Snapshot};
use super::location::TableLocation;
use super::PARTITION_COLUMN;
use crate::lake::error::{LakeError, Result};

/// What became of a commit tried here.
#[derive(Debug)]
pub enum Outcome {
    /// Committed as this version.
    Committed(i64),
    /// Not for this writer (no table yet, a log the lean reader does not read, or a schema to
    /// change): commit through `deltalake`.
    UseDeltalake,
}

/// Attempts of a commit that keeps losing the race for the next version.
const ATTEMPTS: usize = 100;

/// Replaces the partitions of `writes` in the table at `dir` in one commit (see the module
/// documentation). `replaced` receives the paths of the files the commit removed.
pub async fn replace_partitions(dir: &TableLocation, name: &str, schema: &TableSchema, writes: &[PartitionWrite], replaced: &mut Vec<String>) -> Result<Outcome> {
    let mut snapshot = match delta_log::read_snapshot(dir).await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) | Err(ReadError::Unsupported(_)) => return Ok(Outcome::UseDeltalake),
        Err(ReadError::Lake(e)) => return Err(e),
    };
    let read_version = snapshot.version;
    let ours: HashSet<&str> = writes.iter().flat_map(|w| std::iter::once(w.bag.as_str()).chain(w.replaces.iter().map(String::as_str))).collect();
    for attempt in 0..ATTEMPTS {
        if !keeps_schema(&snapshot, schema) {
            return Ok(Outcome::UseDeltalake);
        }
        let (body, removed) = commit_body(&snapshot, writes, &ours)?;
        let version = snapshot.version + 1;
        if dir.put_if_absent(&format!("_delta_log/{version:020}.json"), body.into_bytes()).await? {
            if attempt > 0 || version > read_version + 1 {
                tracing::info!(table = name, read_version, committed = version, retries = attempt, "concurrent commits: {} by other writers since our read, checked for conflicts; {attempt} retries", version - read_version - 1);
            }
            *replaced = removed;
            checkpoint_if_due(dir, name, &snapshot, version).await;
            return Ok(Outcome::Committed(version));
        }
        // Another writer took the version: see what it (and any after it) changed.
        let (next, changes) = match delta_log::changes_since(dir, &snapshot).await {
            Ok(Some(found)) => found,
            Ok(None) | Err(ReadError::Unsupported(_)) => return Ok(Outcome::UseDeltalake),
            Err(ReadError::Lake(e)) => return Err(e),
        };
        if let Some(bag) = changes.partitions.iter().find(|p| ours.contains(p.as_str())) {
            return Err(LakeError::Delta {
                reason: format!("{}: another writer changed partition {PARTITION_COLUMN}={bag} while this commit was being made; run again", dir.display()),
            });
        }
        if changes.protocol {
            return Ok(Outcome::UseDeltalake);
        }
        snapshot = next;
    }
    Err(LakeError::Delta { reason: format!("{}: {ATTEMPTS} other writers' commits came first; run again", dir.display()) })
}

/// Whether the table's schema (and the Arrow columns it records) already holds `schema`.
fn keeps_schema(snapshot: &Snapshot, schema: &TableSchema) -> bool {
    let Some(current) = snapshot.schema_string.as_deref().and_then(|text| serde_json::from_str::<StructType>(text).ok()) else {
        return false;
    };
    if delta::merge_schemas(&current, &schema.delta).as_ref() != Some(&current) {
        return false;
    }
    match snapshot.configuration.get(ARROW_SCHEMA_PROPERTY).and_then(|text| delta::decode_arrow_fields(text)) {
        Some(stored) => delta::union_arrow_fields(&stored, &schema.arrow) == stored,
        // A table made by an earlier version records no Arrow columns; nothing to keep up.
        None => true,
    }
}

/// The commit's lines (commit info, removes, adds) and the paths it removes.
fn commit_body(snapshot: &Snapshot, writes: &[PartitionWrite], ours: &HashSet<&str>) -> Result<(String, Vec<String>)> {
    let now = chrono::Utc::now().timestamp_millis();
    let quoted: Vec<String> = ours.iter().map(|bag| format!("'{}'", bag.replace('\'', "''"))).collect();
    let info = serde_json::json!({ "commitInfo": {
        "timestamp": now,
        "operation": "WRITE",
        "operationParameters": {
            "mode": "Overwrite",
            "partitionBy": format!("[\"{PARTITION_COLUMN}\"]"),
            "predicate": format!("{PARTITION_COLUMN} IN ({})", quoted.join(", ")),
        },
        "clientVersion": concat!("scenes.", env!("CARGO_PKG_VERSION")),
    }});
    let mut lines = vec![info.to_string()];
    let mut removed = Vec::new();
    let mut files: Vec<_> = snapshot.files.values().filter(|f| f.bag_file.as_deref().is_some_and(|bag| ours.contains(bag))).collect();
    files.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
    for file in files {
        let remove = serde_json::json!({ "remove": {
            "path": snapshot.logged_path(&file.relative_path),
            "deletionTimestamp": now,
            "dataChange": true,
            "extendedFileMetadata": true,
            "partitionValues": { PARTITION_COLUMN: file.bag_file },
            "size": file.size,
        }});
        lines.push(remove.to_string());
        removed.push(file.relative_path.clone());
    }
    for write in writes {
        for part in &write.parts {
            let add = deltalake::kernel::Action::Add(delta::add_action(part, &write.bag, now));
            lines.push(serde_json::to_string(&add).map_err(|e| LakeError::Delta { reason: format!("writing an add action: {e}") })?);
        }
    }
    Ok((lines.join("\n"), removed))
}

/// Writes a checkpoint after `version` when the table's interval says so, from the snapshot
/// (just brought up to date: our commit and any made since). A failure only means the next
/// readers replay a few more commits.
async fn checkpoint_if_due(dir: &TableLocation, name: &str, before: &Snapshot, version: i64) {
    let interval: i64 = before.configuration.get("delta.checkpointInterval").and_then(|v| v.parse().ok()).unwrap_or(100).max(1);
    if (version + 1) % interval != 0 {
        return;
    }
    let written = async {
        match delta_log::read_snapshot_for_checkpoint(dir).await {
            Ok(Some(now)) => super::delta_checkpoint::write_checkpoint(dir, &now).await,
            Ok(None) => Ok(()),
            Err(ReadError::Lake(e)) => Err(e),
            Err(ReadError::Unsupported(why)) => Err(LakeError::Delta { reason: why.0 }),
        }
    };
    if let Err(e) = written.await {
        tracing::warn!(table = name, version, "could not write a checkpoint: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::parquet::PartFile;
    use arrow::datatypes::{DataType as ArrowType, Field, Fields};

    fn schema(columns: &[&str]) -> TableSchema {
        let fields: Fields = columns.iter().map(|c| Field::new(*c, ArrowType::Int64, true)).collect::<Vec<_>>().into();
        TableSchema::of(&fields).unwrap()
    }

    fn write(bag: &str, name: &str) -> PartitionWrite {
        PartitionWrite::new(bag, vec![PartFile { relative_path: format!("bag_file={bag}/{name}.parquet"), size: 10, rows: 3, log_time_range: Some((1, 2)) }])
    }

    /// A table with partition `a` (made through `deltalake`, as a new table is).
    async fn table(dir: &std::path::Path) -> TableLocation {
        let location = TableLocation::local(dir).unwrap();
        crate::lake::delta::replace_partitions(&location, "t", &schema(&["log_time"]), &[write("a", "p0")], false).await.unwrap();
        location
    }

    async fn files(location: &TableLocation) -> Vec<(Option<String>, String)> {
        let mut files: Vec<_> = crate::lake::delta::active_files(location).await.unwrap().into_iter().map(|f| (f.bag_file, f.relative_path)).collect();
        files.sort();
        files
    }

    #[tokio::test]
    async fn a_replacement_is_written_directly_and_deltalake_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let location = table(dir.path()).await;
        let mut replaced = Vec::new();
        let outcome = replace_partitions(&location, "t", &schema(&["log_time"]), &[write("a", "p1"), write("b", "q0")], &mut replaced).await.unwrap();
        assert!(matches!(outcome, Outcome::Committed(1)), "{outcome:?}");
        assert_eq!(replaced, vec!["bag_file=a/p0.parquet".to_string()]);
        let table = deltalake::open_table(location.url().clone()).await.unwrap();
        let mut paths: Vec<String> = table.snapshot().unwrap().log_data().iter().map(|f| f.object_store_path().to_string()).collect();
        paths.sort();
        assert_eq!(paths, vec!["bag_file=a/p1.parquet", "bag_file=b/q0.parquet"]);
        // New columns are deltalake's to commit (a metadata change).
        let outcome = replace_partitions(&location, "t", &schema(&["log_time", "extra"]), &[write("c", "r0")], &mut replaced).await.unwrap();
        assert!(matches!(outcome, Outcome::UseDeltalake), "{outcome:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_of_other_partitions_at_once_all_land_and_of_the_same_one_give_way() {
        let dir = tempfile::tempdir().unwrap();
        let location = table(dir.path()).await;
        let tasks: Vec<_> = ["b", "c", "d", "e"]
            .into_iter()
            .map(|bag| {
                let location = location.clone();
                tokio::spawn(async move { replace_partitions(&location, "t", &schema(&["log_time"]), &[write(bag, "x")], &mut Vec::new()).await })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.unwrap().unwrap(), Outcome::Committed(_)));
        }
        assert_eq!(files(&location).await.len(), 5, "{:?}", files(&location).await);
        // A commit prepared from an old snapshot, for a partition another writer changed since.
        let old = delta_log::read_snapshot(&location).await.unwrap().unwrap();
        replace_partitions(&location, "t", &schema(&["log_time"]), &[write("b", "y")], &mut Vec::new()).await.unwrap();
        let ours: HashSet<&str> = ["b"].into_iter().collect();
        let (body, _) = commit_body(&old, &[write("b", "z")], &ours).unwrap();
        let taken = location.put_if_absent(&format!("_delta_log/{:020}.json", old.version + 1), body.into_bytes()).await.unwrap();
        assert!(!taken, "the version is taken");
        let (_, changes) = delta_log::changes_since(&location, &old).await.unwrap().unwrap();
        assert!(changes.partitions.contains("b") && !changes.metadata);
    }
}
