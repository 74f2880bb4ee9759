//! Delta checkpoints written from the lean snapshot ([`super::delta_log`]): the table's protocol,
//! metadata and one add action per active file, as one Parquet file
//! (`_delta_log/<version>.checkpoint.parquet`), then `_delta_log/_last_checkpoint`. A writer that
//! has just committed holds that snapshot already, so a checkpoint costs writing it, not
//! reading the whole table again as `deltalake`'s does.
//!
//! The columns are those of the Delta protocol's checkpoint schema that our tables use (no
//! deletion vectors, row tracking or clustering). Remove actions (tombstones) are not carried
//! over: replaced files are deleted at commit by default, `scenes vacuum` decides by the active
//! files, and readers do not need them.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use super::delta_log::Snapshot;
use super::location::TableLocation;
use super::PARTITION_COLUMN;
use crate::lake::error::{LakeError, Result};

/// Writes the checkpoint of `snapshot` (its version) to the log of the table at `dir`.
pub async fn write_checkpoint(dir: &TableLocation, snapshot: &Snapshot) -> Result<()> {
    let (true, Some(protocol), Some(metadata)) = (snapshot.for_checkpoint, &snapshot.protocol_json, &snapshot.metadata_json) else {
        return Err(LakeError::Delta { reason: format!("{}: the snapshot lacks its protocol or metadata", dir.display()) });
    };
    let mut lines = vec![serde_json::json!({ "protocol": protocol }).to_string(), serde_json::json!({ "metaData": metadata }).to_string()];
    let mut paths: Vec<&String> = snapshot.files.keys().collect();
    paths.sort();
    for relative in paths {
        let file = &snapshot.files[relative];
        let details = snapshot.details.get(relative).cloned().unwrap_or_default();
        let add = serde_json::json!({ "add": {
            "path": snapshot.logged_path(relative),
            "partitionValues": { PARTITION_COLUMN: file.bag_file },
            "size": file.size,
            "modificationTime": details.modification_time,
            "dataChange": false,
            "stats": details.stats,
        }});
        lines.push(add.to_string());
    }
    let actions = lines.len();
    let bytes = parquet_of(&lines.join("\n")).map_err(|reason| LakeError::Delta { reason: format!("{}: writing a checkpoint: {reason}", dir.display()) })?;
    let size_in_bytes = bytes.len();
    let version = snapshot.version;
    dir.put(&format!("_delta_log/{version:020}.checkpoint.parquet"), bytes).await?;
    let last = serde_json::json!({ "version": version, "size": actions, "sizeInBytes": size_in_bytes, "numOfAddFiles": actions - 2 });
    dir.put("_delta_log/_last_checkpoint", last.to_string().into_bytes()).await?;
    Ok(())
}

/// The actions (JSON lines) as a checkpoint Parquet file.
fn parquet_of(json_lines: &str) -> std::result::Result<Vec<u8>, String> {
    let schema = checkpoint_schema();
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone()).build_decoder().map_err(|e| e.to_string())?;
    let mut rest = json_lines.as_bytes();
    let mut batches = Vec::new();
    loop {
        let used = decoder.decode(rest).map_err(|e| e.to_string())?;
        rest = &rest[used..];
        match decoder.flush().map_err(|e| e.to_string())? {
            Some(batch) => batches.push(batch),
            None if rest.is_empty() => break,
            None => {}
        }
    }
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).map_err(|e| e.to_string())?;
    for batch in &batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.close().map_err(|e| e.to_string())?;
    Ok(out)
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn string_map(name: &str, nullable: bool) -> Field {
    let entries = Field::new("key_value", DataType::Struct(Fields::from(vec![text("key", false), text("value", true)])), false);
    Field::new(name, DataType::Map(Arc::new(entries), false), nullable)
}

fn strings(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("element", DataType::Utf8, false))), nullable)
}

fn action(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

/// The checkpoint columns (Delta protocol, "Checkpoint Schema") of protocol, metadata and add.
fn checkpoint_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        action("protocol", vec![
            Field::new("minReaderVersion", DataType::Int32, false),
            Field::new("minWriterVersion", DataType::Int32, false),
            strings("readerFeatures", true),
            strings("writerFeatures", true),
        ]),
        action("metaData", vec![
            text("id", false),
            text("name", true),
            text("description", true),
            Field::new("format", DataType::Struct(Fields::from(vec![text("provider", false), string_map("options", true)])), false),
            text("schemaString", false),
            strings("partitionColumns", false),
            Field::new("createdTime", DataType::Int64, true),
            string_map("configuration", true),
        ]),
        action("add", vec![
            text("path", false),
            string_map("partitionValues", false),
            Field::new("size", DataType::Int64, false),
            Field::new("modificationTime", DataType::Int64, false),
            Field::new("dataChange", DataType::Boolean, false),
            text("stats", true),
            string_map("tags", true),
        ]),
    ]))
}
