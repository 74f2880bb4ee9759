//! `scenes sync`: puts every (non-blob) topic of a bag on one timeline of fixed ticks
//! (100 ms by default). At tick T each topic carries its latest message with time ≤ T, as one
//! struct column named after its table, plus `<table>_age_ms`. Integer nanoseconds throughout.
//!
//! Ticks are `k·tick` for integer k in `[floor(t_min/tick), floor(t_max/tick))`, with `t_min`
//! and `t_max` over the synced topics' times. Messages with equal times keep their record
//! order, so the one recorded last is the latest.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StructArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Error, Result};
use crate::lake::parquet::{self, ParquetOptions};
use crate::lake::{delta, Lake};
use crate::decode::column::UTC;

/// Which time orders the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The bag record time (the reference behaviour).
    LogTime,
    /// `header.stamp`, for topics that have one (others fall back to `log_time`).
    HeaderStamp,
}

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub tick_ns: i64,
    pub time_source: TimeSource,
    /// Tables to sync; empty = every topic table without large binary columns.
    pub tables: Vec<String>,
    /// Older samples than this are null at a tick (None = forward fill forever).
    pub max_staleness_ns: Option<i64>,
    /// How the `synced` table's part files are written.
    pub parquet: ParquetOptions,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            tick_ns: 100_000_000,
            time_source: TimeSource::LogTime,
            tables: Vec::new(),
            max_staleness_ns: None,
            parquet: ParquetOptions::default(),
        }
    }
}

/// The ticks of a bag whose synced topics span `[t_min, t_max]`.
pub fn ticks(t_min: i64, t_max: i64, tick_ns: i64) -> Vec<i64> {
    let first = t_min.div_euclid(tick_ns);
    let last = t_max.div_euclid(tick_ns);
    (first..last).map(|k| k * tick_ns).collect()
}

/// Orders samples by time, keeping record order among equal times.
pub fn time_order(times: &[i64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| (times[i], i));
    order
}

/// For each tick, the position (in `sorted_times`) of the latest sample with time ≤ tick,
/// or `None` before the first sample or when it is older than `max_staleness_ns`.
pub fn latest_at(sorted_times: &[i64], ticks: &[i64], max_staleness_ns: Option<i64>) -> Vec<Option<usize>> {
    let mut out = Vec::with_capacity(ticks.len());
    let mut next = 0;
    for &tick in ticks {
        while next < sorted_times.len() && sorted_times[next] <= tick {
            next += 1;
        }
        let latest = next.checked_sub(1);
        let fresh = latest.filter(|&i| max_staleness_ns.is_none_or(|max| tick - sorted_times[i] <= max));
        out.push(fresh);
    }
    out
}

/// One topic's rows of one bag, in record order.
struct TopicRows {
    table: String,
    /// The topic's rows in the batches they were read in (not concatenated: that would copy
    /// every row, when only one per tick is kept), then one all-null row.
    parts: Vec<ArrayRef>,
    /// (part, row) of each message, in the order of `times`.
    locations: Vec<(usize, usize)>,
    times: Vec<i64>,
}

impl TopicRows {
    /// Where the all-null row is: picked for ticks that have no message.
    fn null_row(&self) -> (usize, usize) {
        (self.parts.len() - 1, 0)
    }
}

fn is_blob_table(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Binary && f.name() != crate::lake::RAW_MESSAGE_COLUMN)
}

/// Reads the rows of `table` for `bag_file`, in record order (part files sorted by name).
async fn read_topic(lake: &Lake, table: &str, bag_file: &str, source: TimeSource) -> Result<Option<TopicRows>> {
    let location = lake.topic_table(table);
    let table_files = delta::partition_table_files(&location, bag_file).await?;
    let files = table_files.files;
    let Some(first) = files.first() else {
        return Ok(None);
    };
    // Decide from the table's recorded columns (or a footer), so image and point-cloud data is
    // never read here.
    let schema = match table_files.arrow_fields {
        Some(fields) => Arc::new(Schema::new(fields)),
        None => location.file_schema(&first.relative_path, first.size).await?,
    };
    if is_blob_table(&schema) {
        return Ok(None);
    }
    let names: Vec<String> = files.iter().map(|f| f.relative_path.clone()).collect();
    let batches = location.read_files(&names).await?;
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let time_column = match source {
        TimeSource::HeaderStamp if first.column_by_name("header_stamp").is_some() => "header_stamp",
        _ => "log_time",
    };
    let mut rows = TopicRows {
        table: table.to_string(),
        parts: Vec::with_capacity(batches.len() + 1),
        locations: Vec::new(),
        times: Vec::new(),
    };
    for (part, batch) in batches.into_iter().enumerate() {
        let times = crate::lake::parquet::exact_times(&batch, time_column)
            .ok_or_else(|| Error::MissingTimeColumn { table: table.to_string(), column: time_column.to_string() })?;
        rows.times.extend_from_slice(&times);
        rows.locations.extend((0..batch.num_rows()).map(|row| (part, row)));
        rows.parts.push(Arc::new(StructArray::from(batch)));
    }
    let row_type = rows.parts[0].data_type().clone();
    rows.parts.push(arrow::array::new_null_array(&row_type, 1));
    Ok(Some(rows))
}

/// Builds the synced rows of one bag.
pub async fn synced_batch(lake: &Lake, bag_file: &str, opts: &SyncOptions) -> Result<Option<RecordBatch>> {
    let tables = if opts.tables.is_empty() { lake.topic_tables().await? } else { opts.tables.clone() };
    let mut topics = Vec::new();
    for table in &tables {
        if let Some(t) = read_topic(lake, table, bag_file, opts.time_source).await? {
            if !t.times.is_empty() {
                topics.push(t);
            }
        }
    }
    let (Some(t_min), Some(t_max)) = (
        topics.iter().filter_map(|t| t.times.iter().min()).min().copied(),
        topics.iter().filter_map(|t| t.times.iter().max()).max().copied(),
    ) else {
        return Ok(None);
    };
    let grid = ticks(t_min, t_max, opts.tick_ns);
    let mut fields = vec![Field::new("tick", DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, Some(UTC.into())), false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(TimestampNanosecondArray::from(grid.clone()).with_timezone(UTC))];
    for topic in topics {
        let order = time_order(&topic.times);
        let sorted: Vec<i64> = order.iter().map(|&i| topic.times[i]).collect();
        let picks = latest_at(&sorted, &grid, opts.max_staleness_ns);
        let picked: Vec<(usize, usize)> = picks.iter().map(|p| p.map_or(topic.null_row(), |i| topic.locations[order[i]])).collect();
        let ages = Int64Array::from(
            picks
                .iter()
                .zip(&grid)
                .map(|(p, tick)| p.map(|i| (tick - sorted[i]) / 1_000_000))
                .collect::<Vec<_>>(),
        );
        let sources: Vec<&dyn Array> = topic.parts.iter().map(|a| a.as_ref()).collect();
        let taken = arrow::compute::interleave(&sources, &picked)?;
        fields.push(Field::new(&topic.table, taken.data_type().clone(), true));
        columns.push(taken);
        fields.push(Field::new(format!("{}_age_ms", topic.table), DataType::Int64, true));
        columns.push(Arc::new(ages));
    }
    Ok(Some(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?))
}

/// Syncs one bag into the `synced` table (replacing its partition). Returns the tick count.
pub async fn sync_bag(lake: &Lake, bag_file: &str, opts: &SyncOptions) -> Result<usize> {
    let Some(synced) = write_synced(lake, bag_file, opts).await? else {
        return Ok(0);
    };
    let schema = delta::TableSchema::of(&synced.fields)?;
    delta::replace_partition(&lake.table("synced"), "synced", &schema, bag_file, &synced.write.parts, true).await?;
    Ok(synced.ticks)
}

/// A bag's timeline written as a part file of `synced`, not yet committed.
pub struct SyncedPart {
    pub write: delta::PartitionWrite,
    /// The columns of its file.
    pub fields: arrow::datatypes::Fields,
    pub ticks: usize,
}

/// Builds a bag's timeline and writes it as a part file of `synced`, for the caller to commit
/// (alone, or with other bags'). `None` when the bag has no synced topic.
pub async fn write_synced(lake: &Lake, bag_file: &str, opts: &SyncOptions) -> Result<Option<SyncedPart>> {
    let Some(batch) = synced_batch(lake, bag_file, opts).await? else {
        return Ok(None);
    };
    let parts = parquet::write_partition_part(&lake.table("synced"), bag_file, &batch, &opts.parquet).await?;
    Ok(Some(SyncedPart {
        write: delta::PartitionWrite::new(bag_file, parts),
        fields: batch.schema().fields().clone(),
        ticks: batch.num_rows(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn tick_range_is_floor_to_floor_exclusive() {
        assert_eq!(ticks(1_050 * MS, 1_320 * MS, 100 * MS), vec![1_000 * MS, 1_100 * MS, 1_200 * MS]);
        assert_eq!(ticks(1_000 * MS, 1_000 * MS, 100 * MS), Vec::<i64>::new());
        assert_eq!(ticks(1_000 * MS, 1_100 * MS, 100 * MS), vec![1_000 * MS]);
    }

    #[test]
    fn latest_is_inclusive_and_null_before_the_first_message() {
        let times = [100 * MS, 200 * MS];
        let grid = [0, 100 * MS, 150 * MS, 200 * MS, 900 * MS];
        assert_eq!(latest_at(&times, &grid, None), vec![None, Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn staleness_bound_nulls_old_samples() {
        let times = [100 * MS];
        let grid = [100 * MS, 300 * MS, 400 * MS];
        assert_eq!(latest_at(&times, &grid, Some(200 * MS)), vec![Some(0), Some(0), None]);
    }

    #[test]
    fn equal_times_take_the_last_recorded_and_unsorted_input_is_ordered() {
        // Recorded out of time order; two messages share t = 200 ms (record positions 1 and 3).
        let times = [300 * MS, 200 * MS, 100 * MS, 200 * MS];
        let order = time_order(&times);
        assert_eq!(order, vec![2, 1, 3, 0]);
        let sorted: Vec<i64> = order.iter().map(|&i| times[i]).collect();
        let picks = latest_at(&sorted, &[200 * MS, 250 * MS, 300 * MS], None);
        let recorded: Vec<usize> = picks.into_iter().map(|p| order[p.unwrap()]).collect();
        assert_eq!(recorded, vec![3, 3, 0]);
    }
}
