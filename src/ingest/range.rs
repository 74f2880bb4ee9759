//! One worker's share of an ingest: the chunk ranges it takes, decoded into batches per variant
//! and written into the worker's open part files (a row group per range), with per-connection
//! counters of what was decoded and what did not match its definition.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, TimestampNanosecondArray};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use indicatif::ProgressBar;
use rustc_hash::FxHashMap;

use super::plan::{log_time_type, ConnCounters, Plan, Variant, DECODE_STATUS_COLUMN, MESSAGE_TYPE_COLUMN};
use super::IngestOptions;
use crate::bag::{Bag, ChunkItem, ChunkRef};
use crate::decode::column::UTC;
use crate::decode::{Decoded, MessageColumns};
use crate::error::Result;
use crate::lake::parquet::{storage_schema, PartFile, PartWriter};
use crate::lake::{escape_partition_value, RAW_MESSAGE_COLUMN};

/// Splits `chunks` into at most `n` consecutive ranges of shrinking size: by stored bytes, range
/// `k` (from 0) gets a share proportional to `n - k`, so the last range is about `2 / n²` of the
/// bag. Workers take ranges in order, and the last one to finish then has little left to do.
/// Each range is a row group of the part files of the worker that takes it.
pub(super) fn split_ranges(chunks: &[ChunkRef], n: usize) -> Vec<&[ChunkRef]> {
    if chunks.is_empty() {
        return Vec::new();
    }
    let n = n.max(1);
    let total: usize = chunks.iter().map(|c| c.stored_len().max(1)).sum();
    let weights_total = n * (n + 1) / 2;
    // Stored bytes at which range `k` ends: total × (n + (n-1) + … + (n-k)) / weights_total.
    let end_of = |k: usize| -> usize {
        let weights_so_far = (k + 1) * n - k * (k + 1) / 2;
        ((total as u128 * weights_so_far as u128) / weights_total as u128) as usize
    };
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut acc = 0;
    for (i, c) in chunks.iter().enumerate() {
        acc += c.stored_len().max(1);
        if acc >= end_of(ranges.len()) {
            ranges.push(&chunks[start..=i]);
            start = i + 1;
        }
    }
    if start < chunks.len() {
        ranges.push(&chunks[start..]);
    }
    ranges
}

#[derive(Default)]
pub(super) struct RangeOutput {
    pub(super) parts: Vec<(usize, PartFile, Fields)>,
    pub(super) counters: FxHashMap<u32, ConnCounters>,
    pub(super) problems: Vec<String>,
    /// Tables (by index) whose rows could not be written, with the reason: the bag is written
    /// without them.
    pub(super) failed_tables: Vec<(usize, String)>,
}

/// Rows of one variant being accumulated by one worker.
pub(super) struct VariantBatch {
    pub(super) columns: MessageColumns,
    pub(super) log_time: Vec<i64>,
    /// (row, raw message) for rows with non-UTF-8 strings or an unparsable definition.
    pub(super) raw: Vec<(usize, Vec<u8>)>,
    pub(super) raw_bytes: usize,
}

pub(super) struct RangeContext<'a> {
    pub(super) bag: &'a Bag,
    pub(super) plan: &'a Plan,
    pub(super) bag_file: &'a str,
    pub(super) run_id: &'a str,
    pub(super) range_index: usize,
    pub(super) opts: &'a IngestOptions,
    pub(super) progress: &'a ProgressBar,
}

impl RangeContext<'_> {
    /// Decodes the chunks of one range into `parts`, the worker's open part files; each ends
    /// the range with its rows written out as a row group.
    pub(super) fn process(&self, chunks: &[ChunkRef], parts: &mut OpenParts) -> Result<RangeOutput> {
        let mut out = RangeOutput::default();
        let mut batches: FxHashMap<usize, VariantBatch> = FxHashMap::default();
        let mut unknown_conn = 0u64;
        for chunk in self.bag.read_chunks(chunks) {
            let mut chunk = chunk?;
            let mut records = chunk.records();
            for item in records.by_ref() {
                let ChunkItem::Message { conn, time, data } = item else {
                    continue;
                };
                let Some(&v) = self.plan.conn_variant.get(&conn) else {
                    if !self.bag.connections.iter().any(|c| c.id == conn) {
                        unknown_conn += 1;
                    }
                    continue;
                };
                if parts.has_failed(self.plan.variants[v].table) {
                    continue;
                }
                let batch = batches.entry(v).or_insert_with(|| self.new_batch(v, chunks));
                let counters = out.counters.entry(conn).or_default();
                decode_into(batch, &self.plan.variants[v], time, data, chunk.shared(), counters);
            }
            let records_problem = records.problem.take();
            // A damaged chunk of an indexed bag is reported too; scanned bags already list theirs.
            if self.bag.is_indexed() {
                if let Some(p) = chunk.take_problem().or(records_problem) {
                    out.problems.push(format!("chunk at byte {}: {p}", chunk.info().pos));
                }
            }
            for (&v, batch) in batches.iter_mut() {
                if batch.columns.heap_bytes() + batch.raw_bytes >= self.opts.flush_bytes {
                    self.flush(v, batch, parts, &mut out);
                }
            }
            // Values still pointing into the chunk keep its memory until they are written.
            if batches.values_mut().fold(false, |any, b| b.columns.take_shared_use() | any) {
                chunk.keep_for_values();
            }
            self.progress.inc(chunk.info().stored_len() as u64);
        }
        let mut keys: Vec<usize> = batches.keys().copied().collect();
        keys.sort();
        for v in keys {
            if let Some(batch) = batches.get_mut(&v) {
                if !batch.log_time.is_empty() {
                    self.flush(v, batch, parts, &mut out);
                }
            }
        }
        // The range's rows leave memory, as if its files were closed.
        let mut open: Vec<usize> = parts.writers.keys().copied().collect();
        open.sort();
        for v in open {
            let ended = parts.writers.get_mut(&v).map_or(Ok(()), PartWriter::end_row_group);
            if let Err(e) = ended {
                fail_table(self.plan, v, &e.into(), parts, &mut out);
            }
        }
        if unknown_conn > 0 {
            out.problems.push(format!("{unknown_conn} messages reference a connection id that has no connection record"));
        }
        Ok(out)
    }

    /// Empty builders for variant `v`, with room reserved for the messages the index says the
    /// range holds (up to one flush's worth).
    fn new_batch(&self, v: usize, chunks: &[ChunkRef]) -> VariantBatch {
        let expected: usize = chunks
            .iter()
            .flat_map(|c| c.counts.iter())
            .filter(|(conn, _)| self.plan.conn_variant.get(conn) == Some(&v))
            .map(|&(_, n)| n as usize)
            .sum();
        let mut columns = self.plan.variants[v].template.clone();
        columns.reserve(expected, self.opts.flush_bytes);
        VariantBatch {
            columns,
            log_time: Vec::with_capacity(expected.min(self.opts.flush_bytes / 8)),
            raw: Vec::new(),
            raw_bytes: 0,
        }
    }

    /// Hands the rows accumulated in `batch` to the variant's open part file (see
    /// [`RangeContext::write_rows`]). When they cannot be written, the variant's table fails
    /// alone (see [`fail_table`]) and its rows are dropped.
    fn flush(&self, v: usize, batch: &mut VariantBatch, parts: &mut OpenParts, out: &mut RangeOutput) {
        if let Err(e) = self.write_rows(v, batch, parts, out) {
            fail_table(self.plan, v, &e, parts, out);
            *batch = self.new_batch(v, &[]);
        }
    }

    /// Writes the rows of `batch` to the variant's open part file (starting one if needed, or a
    /// new one if the columns changed), and closes the file once it is large enough.
    fn write_rows(&self, v: usize, batch: &mut VariantBatch, parts: &mut OpenParts, out: &mut RangeOutput) -> Result<()> {
        let table_name = &self.plan.tables[self.plan.variants[v].table].name;
        if let Some(reason) = crate::failpoint::injected_failure(&format!("write:{table_name}")) {
            return Err(crate::lake::LakeError::Delta { reason }.into());
        }
        let record_batch = finish_batch(&self.plan.variants[v], batch)?;
        if parts.writers.get(&v).is_some_and(|w| w.schema() != storage_schema(&record_batch.schema())) {
            close_part(self.plan, v, parts, out)?;
        }
        let writer = match parts.writers.entry(v) {
            std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let table = &self.plan.tables[self.plan.variants[v].table];
                let relative = format!(
                    "bag_file={}/part-{}-{:05}-{:04}.parquet",
                    escape_partition_value(self.bag_file),
                    self.run_id,
                    self.range_index,
                    parts.next_seq
                );
                parts.next_seq += 1;
                let storage = &self.plan.variants[v].storage;
                slot.insert(PartWriter::create_with(&table.dir, &relative, &record_batch, &self.opts.parquet, storage)?)
            }
        };
        writer.write(&record_batch)?;
        // The writer has copied the values out; the bag pages they pointed at can go. (Byte
        // arrays are views only as a message's own fields, so only top-level columns.)
        for views in record_batch.columns().iter().filter_map(|c| c.as_binary_view_opt()) {
            self.bag.release_values(views.data_buffers());
        }
        if writer.size() >= self.part_file_limit(v) {
            close_part(self.plan, v, parts, out)?;
        }
        Ok(())
    }

    /// Size at which a part file of variant `v` is closed. A part for an object store is held in
    /// memory until it is uploaded whole, so there it is also bounded by the row group size.
    fn part_file_limit(&self, v: usize) -> usize {
        let table = &self.plan.tables[self.plan.variants[v].table];
        match table.dir.local_dir() {
            Some(_) => self.opts.part_file_bytes,
            None => self.opts.part_file_bytes.min(self.opts.parquet.row_group_bytes),
        }
    }
}

/// Deletes part files of this run that will not be committed (best effort: a file left
/// behind is never read, as after a run killed before its commits).
/// Finishes variant `v`'s open part file in `parts`, if any, and records it in `out`.
pub(super) fn close_part(plan: &Plan, v: usize, parts: &mut OpenParts, out: &mut RangeOutput) -> Result<()> {
    if let Some(writer) = parts.writers.remove(&v) {
        let fields = writer.schema().fields().clone();
        let part = writer.finish()?;
        out.parts.push((plan.variants[v].table, part, fields));
    }
    Ok(())
}

/// Finishes every part file a worker still has open, once it has no range left.
pub(super) fn close_parts(plan: &Plan, parts: &mut OpenParts) -> Result<RangeOutput> {
    let mut out = RangeOutput::default();
    let mut open: Vec<usize> = parts.writers.keys().copied().collect();
    open.sort();
    for v in open {
        if let Err(e) = close_part(plan, v, parts, &mut out) {
            fail_table(plan, v, &e, parts, &mut out);
        }
    }
    Ok(out)
}

/// Gives up on the table of variant `v` in this worker after `error`: its open part files are
/// deleted, its later rows skipped, and the table reported failed (the caller deletes the part
/// files closed before, and commits the bag without the table).
fn fail_table(plan: &Plan, v: usize, error: &crate::error::Error, parts: &mut OpenParts, out: &mut RangeOutput) {
    let table = plan.variants[v].table;
    let target = &plan.tables[table];
    let topics: Vec<&str> = target.variants.iter().map(|&u| plan.variants[u].topic.as_str()).collect();
    tracing::warn!(table = %target.name, "rows of {} could not be written: {error}", topics.join(", "));
    out.failed_tables.push((table, error.to_string()));
    for u in target.variants.iter().copied() {
        if let Some(writer) = parts.writers.remove(&u) {
            writer.discard();
        }
    }
    parts.failed_tables.insert(table);
}

/// The part files a worker has open, one per variant, and the sequence number of the next.
#[derive(Default)]
pub(super) struct OpenParts {
    pub(super) writers: HashMap<usize, PartWriter>,
    pub(super) next_seq: usize,
    /// Tables this worker gave up on (see [`fail_table`]).
    failed_tables: std::collections::HashSet<usize>,
}

impl OpenParts {
    /// Whether this worker gave up on `table`.
    #[inline]
    fn has_failed(&self, table: usize) -> bool {
        !self.failed_tables.is_empty() && self.failed_tables.contains(&table)
    }
}

pub(super) fn decode_into(batch: &mut VariantBatch, variant: &Variant, time: u64, data: &[u8], shared: Option<&Buffer>, counters: &mut ConnCounters) {
    let row = batch.log_time.len();
    if variant.raw_only {
        batch.raw.push((row, data.to_vec()));
        batch.raw_bytes += data.len();
        batch.log_time.push(time as i64);
        counters.ok += 1;
        return;
    }
    match batch.columns.decode_in(data, shared) {
        Ok(Decoded::Ok) => {
            batch.log_time.push(time as i64);
            counters.ok += 1;
        }
        Ok(Decoded::LossyUtf8) => {
            batch.raw.push((row, data.to_vec()));
            batch.raw_bytes += data.len();
            batch.log_time.push(time as i64);
            counters.ok += 1;
            counters.lossy += 1;
        }
        Err(e) => {
            counters.errors += 1;
            if counters.first_error.is_none() {
                counters.first_error = Some(format!("message at {time} ns ({} bytes): {e}", data.len()));
            }
        }
    }
}

/// Turns accumulated rows into a record batch: log_time, header_stamp, fields, raw column.
pub(super) fn finish_batch(variant: &Variant, batch: &mut VariantBatch) -> Result<RecordBatch> {
    let rows = batch.log_time.len();
    let names = batch.columns.names.clone();
    let arrays = batch.columns.finish()?;
    let mut fields: Vec<Field> = vec![Field::new("log_time", log_time_type(), true)];
    // The next batch gets the same room (as the decoded columns do: `Column::finish`).
    let room = Vec::with_capacity(batch.log_time.capacity());
    let log_time = std::mem::replace(&mut batch.log_time, room);
    let mut columns: Vec<ArrayRef> = vec![Arc::new(TimestampNanosecondArray::from(log_time).with_timezone(UTC))];
    if variant.has_header_stamp {
        let stamp = names
            .iter()
            .position(|n| n == "header")
            .and_then(|i| arrays[i].as_struct_opt())
            .and_then(|s| s.column_by_name("stamp").cloned());
        if let Some(stamp) = stamp {
            fields.push(Field::new("header_stamp", stamp.data_type().clone(), true));
            columns.push(stamp);
        }
    }
    for (name, array) in names.iter().zip(arrays) {
        fields.push(Field::new(name, array.data_type().clone(), true));
        columns.push(array);
    }
    if let Some((msg_type, status)) = &variant.raw_reason {
        for (name, value) in [(MESSAGE_TYPE_COLUMN, msg_type), (DECODE_STATUS_COLUMN, status)] {
            fields.push(Field::new(name, DataType::Utf8, true));
            columns.push(Arc::new(arrow::array::StringArray::from(vec![value.as_str(); rows])));
        }
    }
    if !batch.raw.is_empty() {
        let mut values: Vec<Option<Vec<u8>>> = vec![None; rows];
        for (row, bytes) in batch.raw.drain(..) {
            if let Some(slot) = values.get_mut(row) {
                *slot = Some(bytes);
            }
        }
        batch.raw_bytes = 0;
        fields.push(Field::new(RAW_MESSAGE_COLUMN, DataType::Binary, true));
        columns.push(Arc::new(BinaryArray::from_iter(values)));
    }
    let schema = Arc::new(Schema::new(fields));
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(schema, columns, &options)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bag::chunk::Compression;

    fn chunks(sizes: &[usize]) -> Vec<ChunkRef> {
        let mut pos = 0;
        sizes
            .iter()
            .map(|&len| {
                let chunk = ChunkRef {
                    pos: pos as u64,
                    compression: Compression::None,
                    uncompressed_size: len as u64,
                    data_start: pos,
                    data_end: pos + len,
                    truncated: false,
                    start_time: None,
                    end_time: None,
                    counts: Vec::new(),
                    outside_chunks: false,
                    declared_stored_len: len as u64,
                };
                pos += len;
                chunk
            })
            .collect()
    }

    fn range_bytes(ranges: &[&[ChunkRef]]) -> Vec<usize> {
        ranges.iter().map(|r| r.iter().map(ChunkRef::stored_len).sum()).collect()
    }

    #[test]
    fn ranges_cover_every_chunk_once_in_order_and_shrink() {
        let all = chunks(&[100; 360]);
        let ranges = split_ranges(&all, 8);
        assert_eq!(ranges.len(), 8);
        let positions: Vec<u64> = ranges.iter().flat_map(|r| r.iter().map(|c| c.pos)).collect();
        assert_eq!(positions, all.iter().map(|c| c.pos).collect::<Vec<_>>());
        // Shares 8/36, 7/36, …, 1/36 of 36,000 bytes.
        assert_eq!(range_bytes(&ranges), vec![8000, 7000, 6000, 5000, 4000, 3000, 2000, 1000]);
    }

    #[test]
    fn a_few_large_chunks_give_fewer_ranges_none_empty() {
        let all = chunks(&[1000, 10, 10, 5000, 10]);
        let ranges = split_ranges(&all, 8);
        assert!(ranges.len() <= 8);
        assert!(ranges.iter().all(|r| !r.is_empty()));
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), all.len());
        assert!(split_ranges(&[], 8).is_empty());
        assert_eq!(split_ranges(&all, 1).len(), 1);
    }
}

