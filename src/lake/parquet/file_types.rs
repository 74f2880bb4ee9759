//! The column types of part files and table schemas: types that Spark, Trino/Athena, DuckDB,
//! pyarrow, Polars and pandas all read with their default settings, without losing a value.
//!
//! Decoding produces Arrow types closest to ROS (nanosecond times, unsigned integers, byte-array
//! views). Before a batch is written, [`file_batch`] turns it into its stored form, and
//! [`storage_fields`] gives the matching schema:
//! - a nanosecond timestamp `t` becomes two columns: `t`, a microsecond UTC timestamp (the
//!   time floored to the microsecond, Parquet `TIMESTAMP(MICROS, UTC)`, Delta `timestamp`),
//!   and `t_ns`, the exact nanoseconds since the epoch (`INT64`, Delta `long`). Spark and
//!   Trino refuse Parquet nanosecond timestamps, so the readable time is microseconds and the
//!   exact one is an integer. Inside structs and lists the companion is a sibling field.
//! - `uint64` becomes `decimal(20,0)`: the full range fits, and the Parquet type and the Delta
//!   type are the same (an INT64 annotated unsigned is not read as a decimal everywhere);
//! - byte-array views become plain binary (the Parquet writer takes views as they are).
//!
//! Both functions are idempotent: stored batches (read back from part files) pass unchanged.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, LargeListArray, ListArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampNanosecondType};

use crate::lake::error::Result;

/// Suffix of the column holding a time's exact nanoseconds next to its microsecond timestamp.
pub const EXACT_TIME_SUFFIX: &str = "_ns";

/// Decimal precision that holds every `uint64` value (20 digits).
const UINT64_DECIMAL: DataType = DataType::Decimal128(20, 0);

/// The schema batches of `schema` are stored as (see the module doc).
pub fn storage_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(storage_fields(schema.fields()), schema.metadata().clone()))
}

/// [`storage_schema`] for a list of fields.
pub fn storage_fields(fields: &Fields) -> Fields {
    fields.iter().flat_map(|f| stored_fields(f)).collect()
}

/// The stored field(s) of one field: two for a nanosecond time, one otherwise.
fn stored_fields(field: &FieldRef) -> Vec<FieldRef> {
    match field.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => vec![
            Arc::new(field.as_ref().clone().with_data_type(DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))),
            Arc::new(Field::new(exact_name(field.name()), DataType::Int64, field.is_nullable())),
        ],
        DataType::List(item) => list_fields(field, item, DataType::List),
        DataType::LargeList(item) => list_fields(field, item, DataType::LargeList),
        DataType::FixedSizeList(item, size) => list_fields(field, item, |item| DataType::FixedSizeList(item, *size)),
        other => vec![Arc::new(field.as_ref().clone().with_data_type(stored_type(other)))],
    }
}

/// A list of times is stored as a list of microsecond times and a sibling list of nanoseconds.
fn list_fields(field: &FieldRef, item: &FieldRef, list: impl Fn(FieldRef) -> DataType) -> Vec<FieldRef> {
    let items = stored_fields(item);
    let names = [field.name().clone(), exact_name(field.name())];
    items.into_iter().zip(names).map(|(stored, name)| Arc::new(Field::new(name, list(as_item(item, &stored)), field.is_nullable()))).collect()
}

/// A stored item field under the name of the list's item (`item`, whichever column it is).
fn as_item(item: &FieldRef, stored: &FieldRef) -> FieldRef {
    Arc::new(stored.as_ref().clone().with_name(item.name()))
}

/// The stored type of a type that is not a time or a list.
fn stored_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::BinaryView => DataType::Binary,
        DataType::UInt64 => UINT64_DECIMAL,
        DataType::Struct(fields) => DataType::Struct(storage_fields(fields)),
        other => other.clone(),
    }
}

/// The exact nanoseconds of the time column `name` of a batch, stored (`name_ns`) or not (a
/// nanosecond timestamp `name`); `None` when the batch has neither.
pub fn exact_times(batch: &RecordBatch, name: &str) -> Option<arrow::buffer::ScalarBuffer<i64>> {
    if let Some(exact) = batch.column_by_name(&exact_name(name)).and_then(|c| c.as_primitive_opt::<Int64Type>()) {
        return Some(exact.values().clone());
    }
    let nanos = batch.column_by_name(name)?.as_primitive_opt::<TimestampNanosecondType>()?;
    Some(nanos.values().clone())
}

fn exact_name(name: &str) -> String {
    format!("{name}{EXACT_TIME_SUFFIX}")
}

/// `batch` in its stored form (see the module doc); the batch itself when nothing changes.
pub fn file_batch(batch: &RecordBatch) -> Result<RecordBatch> {
    if !needs_conversion(batch.schema().fields()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        for (f, c) in stored_columns(field, column)? {
            fields.push(f);
            columns.push(c);
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, batch.schema().metadata().clone()));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Whether any column holds a nanosecond time or a `uint64` (views are written as they are).
fn needs_conversion(fields: &Fields) -> bool {
    fields.iter().any(|f| type_needs_conversion(f.data_type()))
}

fn type_needs_conversion(data_type: &DataType) -> bool {
    match data_type {
        DataType::Timestamp(TimeUnit::Nanosecond, _) | DataType::UInt64 => true,
        DataType::Struct(fields) => needs_conversion(fields),
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => type_needs_conversion(item.data_type()),
        _ => false,
    }
}

/// The stored column(s) of one column, with their fields (named as [`stored_fields`] names
/// them; typed by the arrays, so byte-array views inside stay views for the writer).
fn stored_columns(field: &FieldRef, column: &ArrayRef) -> Result<Vec<(FieldRef, ArrayRef)>> {
    if !type_needs_conversion(field.data_type()) {
        return Ok(vec![(field.clone(), column.clone())]);
    }
    let arrays: Vec<ArrayRef> = match field.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => time_columns(column),
        DataType::UInt64 => vec![arrow::compute::cast(column, &UINT64_DECIMAL)?],
        DataType::Struct(_) => vec![stored_struct(column.as_struct())?],
        DataType::List(item) => {
            let list = column.as_list::<i32>();
            stored_columns(item, list.values())?
                .into_iter()
                .map(|(f, values)| Ok(Arc::new(ListArray::try_new(as_item(item, &f), list.offsets().clone(), values, list.nulls().cloned())?) as ArrayRef))
                .collect::<Result<_>>()?
        }
        DataType::LargeList(item) => {
            let list = column.as_list::<i64>();
            stored_columns(item, list.values())?
                .into_iter()
                .map(|(f, values)| Ok(Arc::new(LargeListArray::try_new(as_item(item, &f), list.offsets().clone(), values, list.nulls().cloned())?) as ArrayRef))
                .collect::<Result<_>>()?
        }
        DataType::FixedSizeList(item, size) => {
            let list = column.as_fixed_size_list();
            stored_columns(item, list.values())?
                .into_iter()
                .map(|(f, values)| Ok(Arc::new(FixedSizeListArray::try_new(as_item(item, &f), *size, values, list.nulls().cloned())?) as ArrayRef))
                .collect::<Result<_>>()?
        }
        _ => vec![column.clone()],
    };
    let names = [field.name().clone(), exact_name(field.name())];
    Ok(arrays
        .into_iter()
        .zip(names)
        .enumerate()
        .map(|(i, (array, name))| {
            let stored = Field::new(name, array.data_type().clone(), field.is_nullable());
            // The first column is the field itself and keeps its metadata.
            let stored = if i == 0 { stored.with_metadata(field.metadata().clone()) } else { stored };
            (Arc::new(stored) as FieldRef, array)
        })
        .collect())
}

/// A nanosecond time as its microsecond timestamp (floored) and its nanosecond integer (the
/// same buffer).
fn time_columns(column: &ArrayRef) -> Vec<ArrayRef> {
    let nanos = column.as_primitive::<TimestampNanosecondType>();
    let micros = nanos.unary::<_, TimestampMicrosecondType>(|ns| ns.div_euclid(1_000));
    let micros = match nanos.timezone() {
        Some(tz) => micros.with_timezone(tz),
        None => micros,
    };
    let exact = nanos.reinterpret_cast::<Int64Type>();
    vec![Arc::new(micros), Arc::new(exact)]
}

fn stored_struct(column: &StructArray) -> Result<ArrayRef> {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (field, child) in column.fields().iter().zip(column.columns()) {
        for (f, c) in stored_columns(field, child)? {
            fields.push(f);
            arrays.push(c);
        }
    }
    Ok(Arc::new(StructArray::try_new(fields.into(), arrays, column.nulls().cloned())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, TimestampNanosecondArray, UInt64Array};
    use arrow::datatypes::Decimal128Type;

    fn time_field(name: &str) -> Field {
        Field::new(name, DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true)
    }

    #[test]
    fn nanosecond_times_become_a_microsecond_timestamp_and_exact_nanoseconds_at_every_depth() {
        let stamps = TimestampNanosecondArray::from(vec![Some(1_700_000_000_123_456_789), None, Some(-1)]).with_timezone("UTC");
        let header = StructArray::from(vec![
            (Arc::new(time_field("stamp")), Arc::new(stamps.clone()) as ArrayRef),
            (Arc::new(Field::new("seq", DataType::Int32, true)), Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
        ]);
        let times_list = ListArray::from_iter_primitive::<TimestampNanosecondType, _, _>(vec![Some(vec![Some(5_000_001)]), None, Some(vec![])]);
        let times_list = ListArray::new(Arc::new(Field::new("item", DataType::Timestamp(TimeUnit::Nanosecond, None), true)), times_list.offsets().clone(), times_list.values().clone(), times_list.nulls().cloned());
        let schema = Arc::new(Schema::new(vec![
            time_field("log_time"),
            Field::new("header", header.data_type().clone(), true),
            Field::new("times", times_list.data_type().clone(), true),
            Field::new("count", DataType::UInt64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(stamps), Arc::new(header), Arc::new(times_list), Arc::new(UInt64Array::from(vec![u64::MAX, 0, 7]))],
        )
        .unwrap();

        let stored = file_batch(&batch).unwrap();
        assert_eq!(stored.schema(), storage_schema(&schema), "the batch has the schema storage_schema gives");
        let stored_schema = stored.schema();
        let names: Vec<&str> = stored_schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["log_time", "log_time_ns", "header", "times", "times_ns", "count"]);

        let micros = stored.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(micros.value(0), 1_700_000_000_123_456);
        assert!(micros.is_null(1));
        assert_eq!(micros.value(2), -1, "floored, not truncated toward zero");
        assert_eq!(stored.column(1).as_primitive::<Int64Type>().value(0), 1_700_000_000_123_456_789);

        let header = stored.column(2).as_struct();
        let header_names: Vec<&str> = header.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(header_names, ["stamp", "stamp_ns", "seq"]);
        assert_eq!(header.column(1).as_primitive::<Int64Type>().value(2), -1);

        let exact_list = stored.column(4).as_list::<i32>();
        assert_eq!(exact_list.value(0).as_primitive::<Int64Type>().value(0), 5_000_001);
        assert!(exact_list.is_null(1));
        assert_eq!(stored.column(3).as_list::<i32>().value(0).as_primitive::<TimestampMicrosecondType>().value(0), 5_000);

        let count = stored.column(5).as_primitive::<Decimal128Type>();
        assert_eq!(count.value(0), u64::MAX as i128);

        let again = file_batch(&stored).unwrap();
        assert_eq!(again, stored, "stored batches pass unchanged");
    }
}
