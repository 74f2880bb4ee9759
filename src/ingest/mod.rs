//! `scenes ingest`: one bag → one Delta table per topic, partitioned by bag.
//!
//! The bag's chunks are split into contiguous ranges that are decompressed and decoded in
//! parallel (each chunk exactly once); each worker writes the ranges it takes into its own
//! Parquet part files, and each table then gets one commit that replaces the bag's partition
//! (so re-ingesting never duplicates rows and readers never see half a bag).
//!
//! Files: [`plan`] (connections → variants → tables), [`range`] (a worker's ranges, decoded
//! and written), [`report`] (what the run reports and records in the store).

mod plan;
mod range;
mod report;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use arrow::datatypes::Fields;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::bag::Bag;
use crate::error::{Error, Result};
use crate::failpoint::pause_point;
use crate::lake::parquet::{ParquetOptions, PartFile};
use crate::lake::{bag_name, delta, Lake};
use crate::meta::MetaStore;
use crate::source::inputs::BagInput;
use crate::source::S3Config;
use plan::{plan_tables, table_fields, ConnCounters};
use range::{close_parts, remove_parts, split_ranges, OpenParts, RangeContext, RangeOutput};
use report::{bag_record, build_report};

pub use report::{IngestReport, TopicReport};

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
    /// Ingest bags whose source is unchanged since their last ingest too (else they are skipped).
    pub force: bool,
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
            force: false,
        }
    }
}

/// What ingest did with one input.
#[derive(Debug)]
pub enum Ingested {
    /// The bag was read and its partitions replaced.
    Done(IngestReport),
    /// The source is the version last ingested (same size and mtime, or size and ETag): nothing
    /// was read or written.
    Unchanged,
}

/// Opens and ingests one input: a local file (memory-mapped) or an object on S3 (read by
/// ranges, never downloaded whole). Unless `opts.force`, a bag whose source is unchanged since
/// its last ingest (its bag record says so, looked up by key) is skipped.
pub fn ingest_input(input: &BagInput, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<Ingested> {
    match input {
        BagInput::Local(path) => {
            if !opts.force {
                let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
                let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()).display().to_string();
                if is_unchanged(store, &key, Some(&crate::source::local_version(&meta)), lake)? {
                    return Ok(Ingested::Unchanged);
                }
            }
            ingest_bag(path, lake, store, opts, runtime).map(Ingested::Done)
        }
        BagInput::S3(uri) => ingest_s3(uri, lake, store, opts, s3, runtime),
    }
}

/// Whether the bag record under `key` was made from the source version `version`, by an ingest
/// into `lake`.
fn is_unchanged(store: &dyn MetaStore, key: &str, version: Option<&str>, lake: &Lake) -> Result<bool> {
    let Some(version) = version else { return Ok(false) };
    let lake = lake.display();
    Ok(store
        .get_bag(key)?
        .is_some_and(|record| record.source_version.as_deref() == Some(version) && record.lake.as_deref() == Some(lake.as_str())))
}

#[cfg(feature = "aws")]
fn ingest_s3(uri: &str, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<Ingested> {
    let started = Instant::now();
    let object = crate::source::s3::S3Bag::open(uri, s3, runtime.handle())?;
    let reader = object.into_reader();
    if !opts.force && is_unchanged(store, &object_key(uri), reader.version().as_deref(), lake)? {
        return Ok(Ingested::Unchanged);
    }
    let bag = Bag::open_ranged(reader)?;
    ingest_opened(bag, started, lake, store, opts, runtime).map(Ingested::Done)
}

/// The key of `s3://bucket/key`, which keys its bag record.
#[cfg(feature = "aws")]
fn object_key(uri: &str) -> String {
    uri.strip_prefix("s3://").and_then(|rest| rest.split_once('/')).map_or_else(String::new, |(_, key)| key.to_string())
}

#[cfg(not(feature = "aws"))]
fn ingest_s3(uri: &str, _lake: &Lake, _store: &dyn MetaStore, _opts: &IngestOptions, _s3: &S3Config, _runtime: &tokio::runtime::Runtime) -> Result<Ingested> {
    Err(crate::source::inputs::InputError::NoS3Support { input: uri.to_string() }.into())
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
        .map_err(|e| Error::Start { what: "worker threads", reason: e.to_string() })?;
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
        return Err(e.into());
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
        let schema = delta::TableSchema::of(&table_fields(&plan, table, &parts[i]))?;
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
    store.put_bag(&bag_record(&bag, &report, lake)?)?;
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
