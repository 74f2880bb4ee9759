//! `scenes ingest`: one bag → one Delta table per topic, partitioned by bag.
//!
//! The bag's chunks are split into contiguous ranges that are decompressed and decoded in
//! parallel (each chunk exactly once); every range writes its own Parquet part files, and each
//! table then gets one commit that replaces the bag's partition (so re-ingesting never
//! duplicates rows and readers never see half a bag).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, TimestampNanosecondArray};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::bag::{Bag, ChunkItem, ChunkRef, IndexState, ScanDamage};
use crate::error::{Error, Result};
use crate::failpoint::pause_point;
use crate::lake::location::TableLocation;
use crate::lake::parquet::{storage_fields, storage_schema, ParquetOptions, PartFile, PartWriter, StorageChoices};
use crate::lake::{bag_name, delta, escape_partition_value, table_name, Lake, RAW_MESSAGE_COLUMN};
use crate::meta::{BagRecord, MetaStore, TopicRecord};
use crate::source::inputs::BagInput;
use crate::source::S3Config;
use crate::decode::column::UTC;
use crate::decode::{Decoded, MessageColumns};

/// Tables committed at the same time at the end of an ingest.
const CONCURRENT_COMMITS: usize = 2;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Topics to extract; empty = all.
    pub topics: Vec<String>,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    pub parquet: ParquetOptions,
    /// Decoded bytes held per table and worker before they go to the Parquet writer.
    pub flush_bytes: usize,
    /// A part file is closed, and the next one started, once it reaches this many bytes.
    pub part_file_bytes: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Delete the files of a replaced partition right after the commit (else keep them until a vacuum).
    pub delete_replaced_files: bool,
}

impl Default for IngestOptions {
    /// Every topic, one worker per core, no progress bar. The config's `ingest` section takes
    /// its defaults from here.
    fn default() -> Self {
        IngestOptions {
            topics: Vec::new(),
            threads: 0,
            parquet: ParquetOptions::default(),
            flush_bytes: 1 << 20,
            part_file_bytes: 128 << 20,
            progress: false,
            delete_replaced_files: true,
        }
    }
}

/// What happened to one topic.
#[derive(Debug, Clone, Serialize)]
pub struct TopicReport {
    pub topic: String,
    pub msg_type: String,
    pub tables: Vec<String>,
    pub messages_in_bag: u64,
    pub messages_ingested: u64,
    pub decode_errors: u64,
    /// Messages known to be lost to damage in the file (torn or unindexed bags).
    pub messages_lost: u64,
    /// Messages recovered from the chunk cut by the end of the file.
    pub recovered_from_cut_chunk: u64,
    pub first_error: Option<String>,
    /// Messages with non-UTF-8 strings (kept lossily plus raw bytes in `_raw_message`).
    pub lossy_utf8: u64,
}

/// What happened to one bag.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub bag_file: String,
    pub path: PathBuf,
    pub index: IndexState,
    pub damage: ScanDamage,
    pub chunks: usize,
    pub bytes: u64,
    pub messages_ingested: u64,
    pub decode_errors: u64,
    pub seconds: f64,
    pub topics: Vec<TopicReport>,
    pub tables: Vec<String>,
}

/// One group of connections of a topic that share a definition (identical Arrow fields).
struct Variant {
    topic: String,
    template: MessageColumns,
    /// The definition could not be parsed: messages are kept as raw bytes only.
    raw_only: bool,
    has_header_stamp: bool,
    table: usize,
    md5: String,
    /// How its part files store their columns, chosen with the first one (see [`StorageChoices`]).
    storage: StorageChoices,
}

struct TableTarget {
    name: String,
    dir: TableLocation,
    variants: Vec<usize>,
}

/// Per connection counters gathered by the workers.
#[derive(Default, Clone)]
struct ConnCounters {
    ok: u64,
    errors: u64,
    lossy: u64,
    first_error: Option<String>,
}

struct Plan {
    variants: Vec<Variant>,
    tables: Vec<TableTarget>,
    /// connection id → variant index.
    conn_variant: FxHashMap<u32, usize>,
    definition_errors: HashMap<String, String>,
}

/// Opens and ingests one input: a local file (memory-mapped) or an object on S3 (read by
/// ranges, never downloaded whole).
pub fn ingest_input(input: &BagInput, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    match input {
        BagInput::Local(path) => ingest_bag(path, lake, store, opts, runtime),
        BagInput::S3(uri) => ingest_s3(uri, lake, store, opts, s3, runtime),
    }
}

#[cfg(feature = "aws")]
fn ingest_s3(uri: &str, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    let started = Instant::now();
    let reader = crate::source::s3::S3Bag::open(uri, s3, runtime.handle())?.into_reader();
    let bag = Bag::open_ranged(reader)?;
    ingest_opened(bag, started, lake, store, opts, runtime)
}

#[cfg(not(feature = "aws"))]
fn ingest_s3(uri: &str, _lake: &Lake, _store: &dyn MetaStore, _opts: &IngestOptions, _s3: &S3Config, _runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    Err(Error::Usage(format!("{uri}: this build has no S3 support (build with the `aws` feature, the default)")))
}

/// Ingests one bag file into the lake and records it in `store`.
pub fn ingest_bag(path: &Path, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    let started = Instant::now();
    ingest_opened(Bag::open(path)?, started, lake, store, opts, runtime)
}

/// Ingests a bag that is already open (a local file, or an object read by ranges). `started` is
/// when opening began, for the report's duration.
pub fn ingest_opened(bag: Bag, started: Instant, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    let bag_file = bag_name(&bag.path);
    tracing::debug!(bag = %bag_file, chunks = bag.chunks.len(), elapsed_s = started.elapsed().as_secs_f64(), "opened");
    let plan = runtime.block_on(plan_tables(&bag, lake, &opts.topics))?;
    tracing::debug!(tables = plan.tables.len(), elapsed_s = started.elapsed().as_secs_f64(), "planned");
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let workers = worker_count(opts.threads);
    let ranges = split_ranges(&bag.chunks, workers * 4);
    let progress = progress_bar(opts.progress, &bag);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))?;
    // Every worker takes the next range as soon as it is free. The ranges shrink from first to
    // last, so the one still running when the others have finished is a small one.
    //
    // A worker writes the ranges it takes into the same part files (one per table, a row group
    // per range), closed when it runs out of ranges: a bag makes as many files per table as
    // there are workers, not ranges. Creating a file (its inode, its writer) cost more than
    // writing a small-message range's rows into it, and readers open fewer small files.
    let next_range = std::sync::atomic::AtomicUsize::new(0);
    let mut outputs: Vec<(usize, Result<RangeOutput>)> = pool
        .broadcast(|_| {
            let mut done = Vec::new();
            let mut parts = OpenParts::default();
            loop {
                let i = next_range.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(range) = ranges.get(i) else { break };
                let ctx = RangeContext {
                    bag: &bag,
                    plan: &plan,
                    bag_file: &bag_file,
                    run_id: &run_id,
                    range_index: i,
                    opts,
                    progress: &progress,
                };
                let output = ctx.process(range, &mut parts);
                let failed = output.is_err();
                done.push((i, output));
                if failed {
                    // The run fails; the part files stay uncommitted and unread.
                    return done;
                }
            }
            done.push((ranges.len(), close_parts(&plan, &mut parts)));
            done
        })
        .into_iter()
        .flatten()
        .collect();
    outputs.sort_by_key(|(i, _)| *i);
    progress.finish_and_clear();
    let mut parts: Vec<Vec<(PartFile, Fields)>> = vec![Vec::new(); plan.tables.len()];
    let mut counters: HashMap<u32, ConnCounters> = HashMap::new();
    let mut damage = bag.damage.clone();
    for (_, out) in outputs {
        let out = out?;
        for (table, part, fields) in out.parts {
            parts[table].push((part, fields));
        }
        for (conn, c) in out.counters {
            let e = counters.entry(conn).or_default();
            e.ok += c.ok;
            e.errors += c.errors;
            e.lossy += c.lossy;
            if e.first_error.is_none() {
                e.first_error = c.first_error;
            }
        }
        damage.problems.extend(out.problems);
    }
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "decoded and wrote part files");
    // Nothing is committed unless the bag can be recorded afterwards; the part files written
    // for nothing are removed.
    if let Err(e) = store.ready() {
        runtime.block_on(remove_parts(&plan, &parts));
        return Err(e);
    }
    pause_point("ingest:parts-written");
    // One atomic Delta commit per table: a reader sees each table's partition either before or
    // after this run, never half of it. A run killed here leaves uncommitted part files that no
    // reader sees; the next run commits its own. The tables are independent, so their commits
    // run concurrently, two at a time: each commit's file operations run on tokio's blocking
    // threads, and every extra thread costs a fresh allocator segment that the kernel zeroes.
    // An abort of the crash-safety test's Python reader once blamed on concurrent commits was
    // the `deltalake` package's own abort at interpreter exit (delta-rs#2184); the test helpers
    // now leave without that teardown.
    let partition = bag_file.as_str();
    let committed = std::sync::atomic::AtomicUsize::new(0);
    let mut commits = Vec::with_capacity(plan.tables.len());
    for (i, table) in plan.tables.iter().enumerate() {
        let schema = delta::table_schema(&table_fields(&plan, table, &parts[i]))?;
        let files: Vec<PartFile> = parts[i].iter().map(|(p, _)| p.clone()).collect();
        let committed = &committed;
        commits.push(async move {
            delta::replace_partition(&table.dir, &table.name, &schema, partition, &files, opts.delete_replaced_files).await?;
            let n = committed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            pause_point(&format!("ingest:committed-{n}"));
            Ok::<_, Error>(())
        });
    }
    runtime.block_on(futures::stream::iter(commits).buffer_unordered(CONCURRENT_COMMITS).try_collect::<()>())?;
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "committed every table");
    let report = build_report(&bag, &bag_file, &plan, &counters, damage, started.elapsed().as_secs_f64());
    // The bag record comes last: batches only see a bag once all its tables are written.
    store.put_bag(&bag_record(&bag, &report)?)?;
    Ok(report)
}

fn worker_count(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        threads
    }
}

fn progress_bar(enabled: bool, bag: &Bag) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let total: u64 = bag.chunks.iter().map(|c| c.stored_len() as u64).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(bag_name(&bag.path));
    bar
}

/// Decides which connections are decoded into which table.
async fn plan_tables(bag: &Bag, lake: &Lake, topics: &[String]) -> Result<Plan> {
    let mut plan = Plan {
        variants: Vec::new(),
        tables: Vec::new(),
        conn_variant: FxHashMap::default(),
        definition_errors: HashMap::new(),
    };
    // Group connections into variants by (topic, Arrow fields).
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for conn in &bag.connections {
        if !topics.is_empty() && !topics.contains(&conn.topic) {
            continue;
        }
        let compiled = MessageColumns::for_connection(conn);
        let (template, raw_only) = match compiled {
            Ok(t) => (t, false),
            Err(e) => {
                plan.definition_errors.insert(conn.topic.clone(), e.to_string());
                (MessageColumns::empty(), true)
            }
        };
        let fields = template.fields();
        let key = (conn.topic.clone(), format!("{raw_only}{fields:?}"));
        let variant = *by_key.entry(key).or_insert_with(|| {
            plan.variants.push(Variant {
                topic: conn.topic.clone(),
                has_header_stamp: header_stamp_type(&fields).is_some(),
                template,
                raw_only,
                table: usize::MAX,
                md5: definition_md5(&conn.definition),
                storage: StorageChoices::default(),
            });
            plan.variants.len() - 1
        });
        plan.conn_variant.insert(conn.id, variant);
    }
    // Assign variants to tables, primary (most messages) first.
    let mut counts: HashMap<usize, u64> = HashMap::new();
    for (conn, v) in &plan.conn_variant {
        *counts.entry(*v).or_default() += bag.stats.get(conn).map(|s| s.messages).unwrap_or(0);
    }
    let mut order: Vec<usize> = (0..plan.variants.len()).collect();
    order.sort_by_key(|v| (plan.variants[*v].topic.clone(), std::cmp::Reverse(counts.get(v).copied().unwrap_or(0)), *v));
    for v in order {
        let variant = &plan.variants[v];
        let base = table_name(&variant.topic);
        let candidates = [base.clone(), format!("{base}__{}", &variant.md5[..8])];
        let incoming = delta::table_schema(&variant_fields(variant))?;
        let mut chosen = None;
        for name in candidates {
            let dir = lake.topic_table(&name);
            // Schema as planned in this run (other variants already assigned), else on disk.
            let planned = plan.tables.iter().position(|t| t.name == name);
            let current = match planned {
                Some(t) => Some(delta::table_schema(&union_fields(plan.tables[t].variants.iter().map(|&i| variant_fields(&plan.variants[i]))))?),
                None => delta::current_schema(&dir).await?,
            };
            let fits = current.as_ref().is_none_or(|c| delta::merge_schemas(c, &incoming).is_some());
            if fits {
                chosen = Some((name, dir, planned));
                break;
            }
        }
        let (name, dir, planned) = chosen.ok_or_else(|| Error::Lake {
            location: lake.topic_table(&base).display(),
            problem: format!("topic {} has a definition that fits neither {base} nor its md5-named table", variant.topic),
        })?;
        let table = match planned {
            Some(t) => t,
            None => {
                plan.tables.push(TableTarget { name, dir, variants: Vec::new() });
                plan.tables.len() - 1
            }
        };
        plan.tables[table].variants.push(v);
        plan.variants[v].table = table;
    }
    Ok(plan)
}

fn definition_md5(definition: &str) -> String {
    Md5::digest(definition.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `stamp` type of a leading `header` struct field, if the message has one.
fn header_stamp_type(fields: &Fields) -> Option<DataType> {
    let header = fields.iter().find(|f| f.name() == "header")?;
    let DataType::Struct(children) = header.data_type() else {
        return None;
    };
    let stamp = children.iter().find(|f| f.name() == "stamp")?;
    matches!(stamp.data_type(), DataType::Timestamp(_, _)).then(|| stamp.data_type().clone())
}

fn log_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
}

/// All columns a variant writes (before the optional raw column), as they are stored.
fn variant_fields(v: &Variant) -> Fields {
    let mut fields = vec![Field::new("log_time", log_time_type(), true)];
    if v.has_header_stamp {
        fields.push(Field::new("header_stamp", log_time_type(), true));
    }
    fields.extend(v.template.fields().iter().map(|f| f.as_ref().clone()));
    if v.raw_only {
        fields.push(Field::new(RAW_MESSAGE_COLUMN, DataType::Binary, true));
    }
    storage_fields(&fields.into())
}

fn union_fields(all: impl Iterator<Item = Fields>) -> Fields {
    let mut out: Vec<Arc<Field>> = Vec::new();
    for fields in all {
        for f in fields.iter() {
            if !out.iter().any(|o| o.name() == f.name()) {
                out.push(f.clone());
            }
        }
    }
    out.into()
}

fn table_fields(plan: &Plan, table: &TableTarget, parts: &[(PartFile, Fields)]) -> Fields {
    let planned = table.variants.iter().map(|&v| variant_fields(&plan.variants[v]));
    union_fields(planned.chain(parts.iter().map(|(_, f)| f.clone())))
}

/// Splits `chunks` into at most `n` consecutive ranges of shrinking size: by stored bytes, range
/// `k` (from 0) gets a share proportional to `n - k`, so the last range is about `2 / n²` of the
/// bag. Workers take ranges in order, and the last one to finish then has little left to do.
/// Each range is a row group of the part files of the worker that takes it.
fn split_ranges(chunks: &[ChunkRef], n: usize) -> Vec<&[ChunkRef]> {
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
struct RangeOutput {
    parts: Vec<(usize, PartFile, Fields)>,
    counters: FxHashMap<u32, ConnCounters>,
    problems: Vec<String>,
}

/// Rows of one variant being accumulated by one worker.
struct VariantBatch {
    columns: MessageColumns,
    log_time: Vec<i64>,
    /// (row, raw message) for rows with non-UTF-8 strings or an unparsable definition.
    raw: Vec<(usize, Vec<u8>)>,
    raw_bytes: usize,
}

struct RangeContext<'a> {
    bag: &'a Bag,
    plan: &'a Plan,
    bag_file: &'a str,
    run_id: &'a str,
    range_index: usize,
    opts: &'a IngestOptions,
    progress: &'a ProgressBar,
}

impl RangeContext<'_> {
    /// Decodes the chunks of one range into `parts`, the worker's open part files; each ends
    /// the range with its rows written out as a row group.
    fn process(&self, chunks: &[ChunkRef], parts: &mut OpenParts) -> Result<RangeOutput> {
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
                    self.flush(v, batch, parts, &mut out)?;
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
                    self.flush(v, batch, parts, &mut out)?;
                }
            }
        }
        // The range's rows leave memory, as if its files were closed.
        for writer in parts.writers.values_mut() {
            writer.end_row_group()?;
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

    /// Hands the rows accumulated in `batch` to the variant's open part file (starting one if
    /// needed, or a new one if the columns changed), and closes the file once it is large enough.
    fn flush(&self, v: usize, batch: &mut VariantBatch, parts: &mut OpenParts, out: &mut RangeOutput) -> Result<()> {
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
async fn remove_parts(plan: &Plan, parts: &[Vec<(PartFile, Fields)>]) {
    for (table, files) in plan.tables.iter().zip(parts) {
        for (part, _) in files {
            if let Err(e) = table.dir.delete(&part.relative_path).await {
                tracing::warn!("could not delete an uncommitted part file: {e}");
            }
        }
    }
}

/// Finishes variant `v`'s open part file in `parts`, if any, and records it in `out`.
fn close_part(plan: &Plan, v: usize, parts: &mut OpenParts, out: &mut RangeOutput) -> Result<()> {
    if let Some(writer) = parts.writers.remove(&v) {
        let fields = writer.schema().fields().clone();
        let part = writer.finish()?;
        out.parts.push((plan.variants[v].table, part, fields));
    }
    Ok(())
}

/// Finishes every part file a worker still has open, once it has no range left.
fn close_parts(plan: &Plan, parts: &mut OpenParts) -> Result<RangeOutput> {
    let mut out = RangeOutput::default();
    let mut open: Vec<usize> = parts.writers.keys().copied().collect();
    open.sort();
    for v in open {
        close_part(plan, v, parts, &mut out)?;
    }
    Ok(out)
}

/// The part files a worker has open, one per variant, and the sequence number of the next.
#[derive(Default)]
struct OpenParts {
    writers: HashMap<usize, PartWriter>,
    next_seq: usize,
}

fn decode_into(batch: &mut VariantBatch, variant: &Variant, time: u64, data: &[u8], shared: Option<&Buffer>, counters: &mut ConnCounters) {
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
fn finish_batch(variant: &Variant, batch: &mut VariantBatch) -> Result<RecordBatch> {
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

fn build_report(bag: &Bag, bag_file: &str, plan: &Plan, counters: &HashMap<u32, ConnCounters>, damage: ScanDamage, seconds: f64) -> IngestReport {
    let mut topics: BTreeMap<String, TopicReport> = BTreeMap::new();
    let losses = bag.topic_losses();
    for conn in &bag.connections {
        let t = topics.entry(conn.topic.clone()).or_insert_with(|| TopicReport {
            topic: conn.topic.clone(),
            msg_type: conn.msg_type.clone(),
            tables: Vec::new(),
            messages_in_bag: 0,
            messages_ingested: 0,
            decode_errors: 0,
            messages_lost: losses.get(&conn.topic).map(|l| l.lost).unwrap_or(0),
            recovered_from_cut_chunk: losses.get(&conn.topic).map(|l| l.recovered_from_cut_chunk).unwrap_or(0),
            first_error: plan.definition_errors.get(&conn.topic).map(|e| format!("definition not understood, messages kept raw: {e}")),
            lossy_utf8: 0,
        });
        t.messages_in_bag += bag.stats.get(&conn.id).map(|s| s.messages).unwrap_or(0);
        if let Some(&v) = plan.conn_variant.get(&conn.id) {
            let table = &plan.tables[plan.variants[v].table].name;
            if !t.tables.contains(table) {
                t.tables.push(table.clone());
            }
        }
        if let Some(c) = counters.get(&conn.id) {
            t.messages_ingested += c.ok;
            t.decode_errors += c.errors;
            t.lossy_utf8 += c.lossy;
            if t.first_error.is_none() {
                t.first_error = c.first_error.clone();
            }
        }
    }
    let topics: Vec<TopicReport> = topics.into_values().collect();
    IngestReport {
        bag_file: bag_file.to_string(),
        path: bag.path.clone(),
        index: bag.index.clone(),
        damage,
        chunks: bag.chunks.len(),
        bytes: bag.file_size(),
        messages_ingested: topics.iter().map(|t| t.messages_ingested).sum(),
        decode_errors: topics.iter().map(|t| t.decode_errors).sum(),
        seconds,
        tables: plan.tables.iter().map(|t| t.name.clone()).collect(),
        topics,
    }
}

fn bag_record(bag: &Bag, report: &IngestReport) -> Result<BagRecord> {
    // A bag read from S3 is recorded by key and bucket (as the reference pipeline's items);
    // a local one by its absolute path.
    let path = bag.path.to_string_lossy();
    let (prefix, bucket) = match path.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
        Some((bucket, key)) => (key.to_string(), Some(bucket.to_string())),
        None => (std::fs::canonicalize(&bag.path).unwrap_or_else(|_| bag.path.clone()).display().to_string(), None),
    };
    let mut topics = BTreeMap::new();
    for t in &report.topics {
        let conns: Vec<u32> = bag.connections.iter().filter(|c| c.topic == t.topic).map(|c| c.id).collect();
        let start = conns.iter().filter_map(|c| bag.stats.get(c)?.start_time).min();
        let end = conns.iter().filter_map(|c| bag.stats.get(c)?.end_time).max();
        let frequency_hz = match (start, end) {
            (Some(s), Some(e)) if e > s && t.messages_in_bag > 1 => Some((t.messages_in_bag - 1) as f64 / ((e - s) as f64 / 1e9)),
            _ => None,
        };
        topics.insert(
            t.topic.clone(),
            TopicRecord {
                msg_type: t.msg_type.clone(),
                message_count: t.messages_in_bag,
                frequency_hz,
                tables: t.tables.clone(),
                messages_ingested: t.messages_ingested,
                decode_errors: t.decode_errors,
            },
        );
    }
    let status = if !bag.is_indexed() {
        "recovered"
    } else if report.decode_errors > 0 || !report.damage.problems.is_empty() {
        "ingested_with_errors"
    } else {
        "ingested"
    };
    Ok(BagRecord {
        bag_file_prefix: prefix,
        bag_file: report.bag_file.clone(),
        bag_file_bucket: bucket,
        size_bytes: bag.file_size(),
        start_time_ns: bag.start_time(),
        end_time_ns: bag.end_time(),
        message_count: bag.message_count(),
        status: status.into(),
        ingest_seconds: report.seconds,
        ingested_at: chrono::Utc::now().to_rfc3339(),
        topics,
    })
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
