//! Delta Lake tables: the Delta schema of our Arrow types, creating a table, and replacing one
//! bag's partition with new part files in a single atomic commit (removes + adds).
//!
//! Delta has no unsigned, duration or fixed-size-list types and stores timestamps in µs, so the
//! log declares the nearest wider type (uint8 → short, uint16 → integer, uint32 → long, uint64 → decimal(20,0),
//! duration → long, fixed-size list → array, timestamp(ns) → long ns) while the Parquet files
//! keep the exact Arrow types. Readers of the Parquet files see the exact types; Delta readers
//! see the widened ones.

use std::collections::HashMap;
use std::path::Path;

use arrow::datatypes::{DataType as ArrowType, Fields, TimeUnit};
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{
    Action, Add, ArrayType, DataType, MetadataExt, PrimitiveType, StructField, StructType,
};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::DeltaTable;
use url::Url;

use super::parts::PartFile;
use super::PARTITION_COLUMN;
use crate::error::{Error, Result};

/// The Delta type that holds values of an Arrow type.
pub fn delta_type(arrow: &ArrowType) -> Result<DataType> {
    Ok(match arrow {
        ArrowType::Boolean => DataType::BOOLEAN,
        ArrowType::Int8 => DataType::BYTE,
        ArrowType::Int16 | ArrowType::UInt8 => DataType::SHORT,
        ArrowType::Int32 | ArrowType::UInt16 => DataType::INTEGER,
        ArrowType::Int64 | ArrowType::UInt32 | ArrowType::Duration(_) => DataType::LONG,
        // The full uint64 range needs 20 decimal digits.
        ArrowType::UInt64 => DataType::decimal(20, 0).map_err(|e| Error::Lake {
            location: String::new(),
            problem: e.to_string(),
        })?,
        ArrowType::Float32 => DataType::FLOAT,
        ArrowType::Float64 => DataType::DOUBLE,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::STRING,
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView | ArrowType::FixedSizeBinary(_) => DataType::BINARY,
        // Delta's `timestamp` is µs and its nanosecond type needs a reader feature most engines
        // lack, so nanosecond timestamps are declared as `long` (ns since the epoch).
        ArrowType::Timestamp(TimeUnit::Nanosecond, _) => DataType::LONG,
        ArrowType::Timestamp(_, Some(_)) => DataType::Primitive(PrimitiveType::Timestamp),
        ArrowType::Timestamp(_, None) => DataType::Primitive(PrimitiveType::TimestampNtz),
        ArrowType::List(f) | ArrowType::LargeList(f) | ArrowType::FixedSizeList(f, _) => {
            DataType::Array(Box::new(ArrayType::new(delta_type(f.data_type())?, true)))
        }
        ArrowType::Struct(fields) => DataType::Struct(Box::new(delta_struct(fields)?)),
        other => {
            return Err(Error::Lake {
                location: String::new(),
                problem: format!("no Delta type for Arrow type {other}"),
            })
        }
    })
}

/// Delta struct type of Arrow fields (all nullable).
pub fn delta_struct(fields: &Fields) -> Result<StructType> {
    let fields = fields
        .iter()
        .map(|f| Ok(StructField::new(f.name().clone(), delta_type(f.data_type())?, true)))
        .collect::<Result<Vec<_>>>()?;
    StructType::try_new(fields).map_err(|e| Error::Lake {
        location: String::new(),
        problem: e.to_string(),
    })
}

/// Delta schema of a table: its data columns plus the `bag_file` partition column.
pub fn table_schema(data_fields: &Fields) -> Result<StructType> {
    let mut fields: Vec<StructField> = delta_struct(data_fields)?.fields().cloned().collect();
    fields.push(StructField::new(PARTITION_COLUMN, DataType::STRING, true));
    StructType::try_new(fields).map_err(|e| Error::Lake {
        location: String::new(),
        problem: e.to_string(),
    })
}

/// Top-level union of two schemas. `None` when a column exists in both with different types.
pub fn merge_schemas(current: &StructType, incoming: &StructType) -> Option<StructType> {
    let mut fields: Vec<StructField> = current.fields().cloned().collect();
    for f in incoming.fields() {
        match current.field(f.name()) {
            Some(existing) if existing.data_type() != f.data_type() => return None,
            Some(_) => {}
            None => fields.push(f.clone()),
        }
    }
    StructType::try_new(fields).ok()
}

fn table_url(dir: &Path) -> Result<Url> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Url::from_directory_path(dir).map_err(|_| Error::Lake {
        location: dir.display().to_string(),
        problem: "not an absolute directory path".into(),
    })
}

/// Opens the Delta table at `dir`, or returns `None` when there is none yet.
pub async fn open(dir: &Path) -> Result<Option<DeltaTable>> {
    if !dir.join("_delta_log").is_dir() {
        return Ok(None);
    }
    let table = deltalake::open_table(table_url(dir)?).await?;
    Ok(Some(table))
}

/// Current schema of the table at `dir`, if it exists.
pub async fn current_schema(dir: &Path) -> Result<Option<StructType>> {
    Ok(match open(dir).await? {
        Some(t) => Some(t.snapshot()?.schema().as_ref().clone()),
        None => None,
    })
}

/// Opens the table at `dir`, creating it with `schema` (partitioned by `bag_file`) if needed.
pub async fn open_or_create(dir: &Path, name: &str, schema: &StructType) -> Result<DeltaTable> {
    if let Some(t) = open(dir).await? {
        return Ok(t);
    }
    let table = deltalake::DeltaTableBuilder::from_url(table_url(dir)?)?.build()?;
    let created = table
        .create()
        .with_table_name(name)
        .with_columns(schema.fields().cloned())
        .with_partition_columns([PARTITION_COLUMN])
        .with_save_mode(SaveMode::Ignore)
        .await;
    match created {
        Ok(t) if t.version().is_some() => Ok(t),
        // Another process created it first (or Ignore returned an unloaded table): load it.
        _ => Ok(deltalake::open_table(table_url(dir)?).await?),
    }
}

/// Replaces the partition `bag_file = bag` of the table at `dir` with `parts`, in one commit.
/// The table is created when missing and its schema widened with new columns when needed.
/// With `delete_replaced`, the data files the commit removed are deleted from disk afterwards.
pub async fn replace_partition(dir: &Path, name: &str, schema: &StructType, bag: &str, parts: &[PartFile], delete_replaced: bool) -> Result<i64> {
    let mut table = open_or_create(dir, name, schema).await?;
    table.update_state().await?;
    let snapshot = table.snapshot()?;
    let mut actions = Vec::new();
    let current = snapshot.schema().as_ref().clone();
    if &current != schema {
        let merged = merge_schemas(&current, schema).ok_or_else(|| Error::Lake {
            location: dir.display().to_string(),
            problem: "new columns conflict with the table's existing column types".into(),
        })?;
        if merged != current {
            let metadata = snapshot.metadata().clone().with_schema(&merged).map_err(deltalake::DeltaTableError::from)?;
            actions.push(Action::Metadata(metadata));
        }
    }
    let mut replaced = Vec::new();
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        if values.get(PARTITION_COLUMN).and_then(|v| v.as_deref()) == Some(bag) {
            actions.push(Action::Remove(file.remove_action(true)));
            replaced.push(dir.join(file.object_store_path().to_string()));
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    for part in parts {
        actions.push(Action::Add(add_action(part, bag, now)));
    }
    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
        predicate: Some(format!("{PARTITION_COLUMN} = '{}'", bag.replace('\'', "''"))),
    };
    let commit = CommitBuilder::default()
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await?;
    if delete_replaced {
        // The replaced files are no longer part of the table; free their space now rather than
        // at a later vacuum (readers of older table versions lose access to them).
        for path in replaced {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("could not delete replaced file {}: {e}", path.display());
            }
        }
    }
    Ok(commit.version() as i64)
}

fn add_action(part: &PartFile, bag: &str, now: i64) -> Add {
    let mut stats = serde_json::json!({ "numRecords": part.rows });
    if let Some((min, max)) = part.log_time_range {
        // log_time is declared `long` (ns) in the Delta schema.
        stats["minValues"] = serde_json::json!({ "log_time": min });
        stats["maxValues"] = serde_json::json!({ "log_time": max });
        stats["nullCount"] = serde_json::json!({ "log_time": 0 });
    }
    Add {
        path: part.relative_path.clone(),
        partition_values: HashMap::from([(PARTITION_COLUMN.to_string(), Some(bag.to_string()))]),
        size: part.size as i64,
        modification_time: now,
        data_change: true,
        stats: Some(stats.to_string()),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

/// Paths (absolute) of the active Parquet files of the table at `dir`, with their `bag_file`.
pub async fn active_files(dir: &Path) -> Result<Vec<(std::path::PathBuf, Option<String>)>> {
    let Some(table) = open(dir).await? else {
        return Ok(Vec::new());
    };
    let snapshot = table.snapshot()?;
    Ok(snapshot
        .log_data()
        .iter()
        .map(|f| {
            let bag = f.partition_values_map().get(PARTITION_COLUMN).cloned().flatten();
            // The object store path is the file's path relative to the table, as on disk.
            let rel = f.object_store_path().to_string();
            (dir.join(rel), bag)
        })
        .collect())
}

/// The active part files of one `bag_file` partition, in name order (part names carry the
/// chunk range and sequence, so this is the bag's record order).
pub async fn partition_files(dir: &Path, bag_file: &str) -> Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<std::path::PathBuf> = active_files(dir)
        .await?
        .into_iter()
        .filter(|(_, bag)| bag.as_deref() == Some(bag_file))
        .map(|(p, _)| p)
        .collect();
    files.sort();
    Ok(files)
}

/// The Arrow schema of a Parquet file (read from its footer only).
pub fn file_schema(path: &Path) -> Result<arrow::datatypes::SchemaRef> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.schema().clone())
}

/// All rows of `files`, in order.
pub fn read_files(files: &[std::path::PathBuf]) -> Result<Vec<arrow::array::RecordBatch>> {
    let mut batches = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
            batches.push(batch?);
        }
    }
    Ok(batches)
}
