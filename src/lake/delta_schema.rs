//! What a Delta commit of ours is made of, shared by the two ways of committing (through
//! `deltalake`, [`super::delta`], and directly, [`super::delta_commit`]): the Delta types of
//! our Arrow types and the table schema, the Arrow columns a table records in its metadata,
//! the partitions a commit replaces, and the add action of a part file.
//!
//! Tables hold the stored column types of [`super::parquet::storage_fields`] (microsecond
//! timestamps with exact nanoseconds beside them, `uint64` as `decimal(20,0)`). Delta has no
//! unsigned, duration or fixed-size-list types, so for those the log declares the nearest wider
//! type (uint8 → short, uint16 → integer, uint32 → long, duration → long, fixed-size list →
//! array), which Spark and Trino also give the Parquet columns.

use std::collections::HashMap;

use arrow::datatypes::{DataType as ArrowType, Fields, TimeUnit};
use deltalake::kernel::{Add, ArrayType, DataType, PrimitiveType, StructField, StructType};

use super::parquet::PartFile;
use super::PARTITION_COLUMN;
use crate::lake::error::{LakeError, Result};

/// The Delta type that holds values of an Arrow type.
pub fn delta_type(arrow: &ArrowType) -> Result<DataType> {
    Ok(match arrow {
        ArrowType::Boolean => DataType::BOOLEAN,
        ArrowType::Int8 => DataType::BYTE,
        ArrowType::Int16 | ArrowType::UInt8 => DataType::SHORT,
        ArrowType::Int32 | ArrowType::UInt16 => DataType::INTEGER,
        ArrowType::Int64 | ArrowType::UInt32 | ArrowType::Duration(_) => DataType::LONG,
        // The full uint64 range needs 20 decimal digits.
        ArrowType::UInt64 => DataType::decimal(20, 0).map_err(|e| LakeError::Delta { reason: e.to_string() })?,
        ArrowType::Decimal128(precision, scale) => {
            DataType::decimal(*precision, *scale as u8).map_err(|e| LakeError::Delta { reason: e.to_string() })?
        }
        ArrowType::Float32 => DataType::FLOAT,
        ArrowType::Float64 => DataType::DOUBLE,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::STRING,
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView | ArrowType::FixedSizeBinary(_) => DataType::BINARY,
        // Stored tables have no nanosecond timestamps (see `storage_fields`); tables written
        // before that declared them as `long` (ns since the epoch).
        ArrowType::Timestamp(TimeUnit::Nanosecond, _) => DataType::LONG,
        ArrowType::Timestamp(_, Some(_)) => DataType::Primitive(PrimitiveType::Timestamp),
        ArrowType::Timestamp(_, None) => DataType::Primitive(PrimitiveType::TimestampNtz),
        ArrowType::List(f) | ArrowType::LargeList(f) | ArrowType::FixedSizeList(f, _) => {
            DataType::Array(Box::new(ArrayType::new(delta_type(f.data_type())?, true)))
        }
        ArrowType::Struct(fields) => DataType::Struct(Box::new(delta_struct(fields)?)),
        other => return Err(LakeError::NoDeltaType { arrow_type: other.to_string() }),
    })
}

/// Delta struct type of Arrow fields (all nullable).
pub fn delta_struct(fields: &Fields) -> Result<StructType> {
    let fields = fields
        .iter()
        .map(|f| Ok(StructField::new(f.name().clone(), delta_type(f.data_type())?, true)))
        .collect::<Result<Vec<_>>>()?;
    StructType::try_new(fields).map_err(|e| LakeError::Delta { reason: e.to_string() })
}

/// Table property holding the table's Arrow schema: every column its files hold, with their
/// exact Arrow types (which Delta types do not carry: nanosecond times, unsigned integers), so
/// that readers need no file footers. Tables created before it was introduced lack it, and keep
/// being read from their footers.
pub const ARROW_SCHEMA_PROPERTY: &str = "scenes.arrowSchema";

/// The schema a commit declares: the Delta schema, and the Arrow columns it comes from.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub delta: StructType,
    pub arrow: Fields,
}

impl TableSchema {
    /// The schema of a table whose files hold batches of `data_fields` (plus the partition
    /// column), in their stored form.
    pub fn of(data_fields: &Fields) -> Result<TableSchema> {
        let stored = super::parquet::storage_fields(data_fields);
        Ok(TableSchema { delta: table_schema(&stored)?, arrow: stored })
    }
}

/// `fields` as the value of [`ARROW_SCHEMA_PROPERTY`].
pub fn encode_arrow_fields(fields: &Fields) -> String {
    parquet::arrow::encode_arrow_schema(&arrow::datatypes::Schema::new(fields.clone()))
}

/// The Arrow columns recorded in [`ARROW_SCHEMA_PROPERTY`]; `None` when absent or unreadable.
pub fn decode_arrow_fields(text: &str) -> Option<Fields> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    let schema = arrow_ipc::convert::try_schema_from_ipc_buffer(&bytes).ok()?;
    Some(schema.fields().clone())
}

/// Columns of `current` then those of `incoming` it lacks, by name, all nullable (files without
/// a column read it as null).
pub fn union_arrow_fields(current: &Fields, incoming: &Fields) -> Fields {
    let mut fields: Vec<arrow::datatypes::FieldRef> = current.iter().cloned().collect();
    for f in incoming.iter() {
        if !fields.iter().any(|x| x.name() == f.name()) {
            fields.push(std::sync::Arc::new(f.as_ref().clone().with_nullable(true)));
        }
    }
    fields.into()
}

/// Delta schema of a table: its data columns plus the `bag_file` partition column.
pub fn table_schema(data_fields: &Fields) -> Result<StructType> {
    let mut fields: Vec<StructField> = delta_struct(data_fields)?.fields().cloned().collect();
    fields.push(StructField::new(PARTITION_COLUMN, DataType::STRING, true));
    StructType::try_new(fields).map_err(|e| LakeError::Delta { reason: e.to_string() })
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

/// One bag's part of a commit: the files of its partition, and the partitions they replace.
#[derive(Debug, Clone)]
pub struct PartitionWrite {
    /// The partition written (`bag_file = bag`).
    pub bag: String,
    pub parts: Vec<PartFile>,
    /// Other partitions removed by the same commit: the bag's partition under the key an earlier
    /// version gave it (its file name), so that re-ingesting an old lake does not keep both.
    pub replaces: Vec<String>,
}

impl PartitionWrite {
    pub fn new(bag: &str, parts: Vec<PartFile>) -> PartitionWrite {
        PartitionWrite { bag: bag.to_string(), parts, replaces: Vec::new() }
    }

    /// Every partition this write removes the current files of.
    pub fn removed_partitions(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.bag.as_str()).chain(self.replaces.iter().map(String::as_str))
    }
}

/// The add action of a part file of partition `bag`, with its row count and `log_time_ns` range.
pub fn add_action(part: &PartFile, bag: &str, now: i64) -> Add {
    let mut stats = serde_json::json!({ "numRecords": part.rows });
    if let Some((min, max)) = part.log_time_range {
        // The exact times (`log_time_ns`, Delta `long`): statistics of the microsecond
        // `log_time` would need Delta's millisecond-truncated timestamp text.
        stats["minValues"] = serde_json::json!({ "log_time_ns": min });
        stats["maxValues"] = serde_json::json!({ "log_time_ns": max });
        stats["nullCount"] = serde_json::json!({ "log_time_ns": 0 });
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
