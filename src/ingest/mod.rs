//! `scenes ingest`: one bag → one Delta table per topic, partitioned by bag.
//!
//! The bag's chunks are split into contiguous ranges that are decompressed and decoded in
//! parallel (each chunk exactly once); each worker writes the ranges it takes into its own
//! Parquet part files, and each table then gets one commit that replaces the bag's partition
//! (so re-ingesting never duplicates rows and readers never see half a bag).
//!
//! Files: [`plan`] (connections → variants → tables), [`range`] (a worker's ranges, decoded
//! and written), [`report`] (what the run reports and records in the store).

mod commit;
mod plan;
mod range;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::datatypes::Fields;

use indicatif::{ProgressBar, ProgressStyle};

use crate::bag::Bag;
use crate::error::{Error, Result};
use crate::lake::parquet::{ParquetOptions, PartFile};
use crate::lake::{bag_key, bag_name, source_uri, Lake};
use crate::decode::msg_path::MsgPath;
use crate::meta::{BagRecord, MetaStore};
use crate::source::inputs::BagInput;
use crate::source::S3Config;
use commit::{commit_bags, PendingBags, TableWrite, WrittenBag};
use plan::{plan_tables, table_fields, ConnCounters, GroupSchemas};
use range::{close_parts, split_ranges, OpenParts, RangeContext, RangeOutput};
use report::{bag_record, build_report, find_record, FoundRecord};

pub use report::{IngestReport, TopicReport};

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
    /// Bags committed together (one commit per table for all of them).
    pub bags_per_commit: usize,
    /// The longest a written bag waits for the rest of its group before the group is committed.
    pub commit_interval: Duration,
    /// Where the definitions of message types a rosbag2 recording does not hold are looked for.
    pub msg_path: MsgPath,
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
            bags_per_commit: 50,
            commit_interval: Duration::from_secs(10),
            msg_path: MsgPath::new(&[]),
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

/// Ingests one bag file into the lake and records it in `store`.
pub fn ingest_bag(path: &Path, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    let started = Instant::now();
    ingest_opened(open_local(path, opts)?, started, lake, store, opts, runtime)
}

/// Opens a local bag: a file, or a rosbag2 recording (folder or `.db3`), whose missing
/// definitions come from the options' message path.
fn open_local(path: &Path, opts: &IngestOptions) -> Result<Bag> {
    let resolve = |msg_type: &str| opts.msg_path.definition(msg_type).map_err(|e| e.to_string());
    Ok(Bag::open_with_definitions(path, &resolve)?)
}

/// What identifies this version of a local source: a file's size and modification time, or
/// those of a rosbag2 folder's metadata and storage files.
fn local_source_version(path: &Path) -> Result<String> {
    if path.is_dir() {
        return Ok(crate::bag::rosbag2::source_version(path)?);
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    Ok(crate::source::local_version(&meta))
}

/// Ingests a bag that is already open (a local file, or an object read by ranges), committed on
/// its own. `started` is when opening began, for the report's duration.
pub fn ingest_opened(bag: Bag, started: Instant, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    let found = find_record(store, &bag.path, [])?;
    let written = write_bag(bag, started, lake, opts, runtime, &mut GroupSchemas::default(), found)?;
    let mut results = commit_bags(vec![written], store, opts, runtime);
    results.pop().map_or_else(|| Err(Error::Commit { bag: String::new(), reason: "nothing to commit".into() }), |(_, r)| r)
}

/// The outcome of one input of an [`IngestRun`]: the input, and what became of it.
pub type InputOutcome = (String, Result<Ingested>);

/// Ingest of many inputs: each bag is read and its part files written as it comes; the written
/// bags are committed in groups (see [`IngestOptions::bags_per_commit`]), one commit per table
/// per group. A bag is in the lake, and has its bag record, once its group is committed.
pub struct IngestRun<'a> {
    lake: &'a Lake,
    store: &'a dyn MetaStore,
    opts: &'a IngestOptions,
    s3: &'a S3Config,
    runtime: &'a tokio::runtime::Runtime,
    pending: PendingBags,
}

impl<'a> IngestRun<'a> {
    pub fn new(lake: &'a Lake, store: &'a dyn MetaStore, opts: &'a IngestOptions, s3: &'a S3Config, runtime: &'a tokio::runtime::Runtime) -> Self {
        IngestRun { lake, store, opts, s3, runtime, pending: PendingBags::default() }
    }

    /// Reads and writes one input. Returns what is decided now: the input itself when it is
    /// skipped or fails, and every bag of the group when this input completes it and the group
    /// is committed.
    pub fn add(&mut self, input: &BagInput) -> Vec<InputOutcome> {
        let mut outcomes = Vec::new();
        match self.write_input(input) {
            Ok(Some(written)) => self.pending.push(written),
            Ok(None) => outcomes.push((input.display(), Ok(Ingested::Unchanged))),
            Err(e) => outcomes.push((input.display(), Err(e))),
        }
        if self.pending.is_due(self.opts) {
            outcomes.extend(self.commit_pending());
        }
        outcomes
    }

    /// Commits the bags still waiting; returns their outcomes.
    pub fn finish(mut self) -> Vec<InputOutcome> {
        self.commit_pending()
    }

    fn commit_pending(&mut self) -> Vec<InputOutcome> {
        let bags = self.pending.take();
        commit_bags(bags, self.store, self.opts, self.runtime)
            .into_iter()
            .map(|(input, result)| (input, result.map(Ingested::Done)))
            .collect()
    }

    /// Opens `input` (a local file, memory-mapped, or an object on S3, read by ranges, never
    /// downloaded whole) and writes its part files; `None` when it is unchanged since its last
    /// ingest (its bag record, looked up by key, says so) and not `force`d.
    fn write_input(&mut self, input: &BagInput) -> Result<Option<WrittenBag>> {
        let (lake, store, opts) = (self.lake, self.store, self.opts);
        let started = Instant::now();
        let source = match input {
            BagInput::Local(path) => path.clone(),
            BagInput::S3(uri) => std::path::PathBuf::from(uri),
        };
        let pending = &mut self.pending;
        // One lookup of the bag's record: whether the source is unchanged, and where the new
        // record goes.
        let found = find_record(store, &source, pending.bags.iter().map(|b| &b.record))?;
        let bag = match input {
            BagInput::Local(path) => {
                if !opts.force && is_unchanged(found.record.as_ref(), Some(&local_source_version(path)?), lake) {
                    return Ok(None);
                }
                open_local(path, opts)?
            }
            BagInput::S3(uri) => match open_s3(uri, found.record.as_ref(), lake, opts, self.s3, self.runtime)? {
                Some(bag) => bag,
                None => return Ok(None),
            },
        };
        write_bag(bag, started, lake, opts, self.runtime, &mut pending.schemas, found).map(Some)
    }
}

/// Whether the bag's `record` was made from the source version `version`, by an ingest into `lake`.
fn is_unchanged(record: Option<&BagRecord>, version: Option<&str>, lake: &Lake) -> bool {
    let Some(version) = version else { return false };
    let lake = lake.display();
    record.is_some_and(|record| record.source_version.as_deref() == Some(version) && record.lake.as_deref() == Some(lake.as_str()))
}

/// Opens a bag on S3; `None` when its `record` says it is unchanged (see [`is_unchanged`]).
/// An indexed ROS1 bag and a closed MCAP file with a summary are read by ranged GETs, never
/// downloaded. Other bags (`.db3` files, ROS1 bags without a usable index, MCAP files without
/// footer or summary) are downloaded, streamed, into a temporary file,
/// and a rosbag2 recording (named by its `metadata.yaml`) into a temporary folder; both are
/// deleted once the bag is open (a memory-mapped file stays readable after it is deleted).
#[cfg(feature = "aws")]
fn open_s3(uri: &str, record: Option<&BagRecord>, lake: &Lake, opts: &IngestOptions, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<Option<Bag>> {
    use crate::source::s3::{S3Bag, METADATA_FILE};
    let object = S3Bag::open(uri, s3, runtime.handle())?;
    if !opts.force && is_unchanged(record, object.version().as_deref(), lake) {
        return Ok(None);
    }
    if !uri.ends_with(METADATA_FILE) && !uri.ends_with(".bag") {
        // A split of a rosbag2 recording (the deploy starts a task per uploaded object) is
        // ingested with its recording, not alone.
        if let Some(recording) = object.recording_metadata() {
            tracing::info!("{uri} is a storage file of the rosbag2 recording {recording}: skipped (ingest the recording)");
            return Ok(None);
        }
    }
    let local_copy_failed = |e: std::io::Error| Error::io(std::env::temp_dir(), e);
    let mut bag = if uri.ends_with(METADATA_FILE) {
        let dir = tempfile::tempdir().map_err(local_copy_failed)?;
        let folder = dir.path().join(crate::lake::bag_name(Path::new(uri)));
        std::fs::create_dir_all(&folder).map_err(local_copy_failed)?;
        object.download_recording(&folder)?;
        open_local(&folder, opts)?
    } else {
        if uri.ends_with(".bag") || uri.ends_with(".mcap") {
            match Bag::open_ranged(object.clone().into_reader()) {
                Ok(bag) => return Ok(Some(bag)),
                Err(crate::bag::BagError::NeedsLocalCopy { reason, .. }) => tracing::info!("{uri}: {reason}; reading a local copy"),
                Err(e) => return Err(e.into()),
            }
        }
        let mut copy = tempfile::NamedTempFile::new().map_err(local_copy_failed)?;
        object.download_to(copy.as_file_mut())?;
        open_local(copy.path(), opts)?
    };
    bag.path = std::path::PathBuf::from(uri);
    bag.source_version = object.version();
    Ok(Some(bag))
}

#[cfg(not(feature = "aws"))]
fn open_s3(uri: &str, _record: Option<&BagRecord>, _lake: &Lake, _opts: &IngestOptions, _s3: &S3Config, _runtime: &tokio::runtime::Runtime) -> Result<Option<Bag>> {
    Err(crate::source::inputs::InputError::NoS3Support { input: uri.to_string() }.into())
}

/// Reads a bag that is already open and writes its part files, ready for its commit. Its
/// tables are chosen against `schemas`: the committed ones and those of the bags written before
/// it in its commit group. `found` is where its record goes, and its record of an earlier ingest.
fn write_bag(
    bag: Bag,
    started: Instant,
    lake: &Lake,
    opts: &IngestOptions,
    runtime: &tokio::runtime::Runtime,
    schemas: &mut GroupSchemas,
    found: FoundRecord,
) -> Result<WrittenBag> {
    let bag_file = bag_key(&bag_name(&bag.path), &source_uri(&bag.path));
    // A bag ingested by an earlier version is keyed by its name: its commit removes that partition.
    let replaces = found.record.map(|old| old.bag_file).filter(|old| *old != bag_file);
    let record_key = found.key;
    tracing::debug!(bag = %bag_file, chunks = bag.chunks.len(), elapsed_s = started.elapsed().as_secs_f64(), "opened");
    let plan = runtime.block_on(plan_tables(&bag, lake, &opts.topics, schemas))?;
    tracing::debug!(tables = plan.tables.len(), elapsed_s = started.elapsed().as_secs_f64(), "planned");
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let workers = workers_for(&bag, worker_count(opts.threads));
    // One worker reads the bag front to back; several share it in ranges (see split_ranges).
    let ranges = split_ranges(&bag.chunks, if workers == 1 { 1 } else { workers * 4 });
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
                    // The bag fails: this worker's open part files go (its closed ones are in
                    // `done`, deleted by the caller).
                    for (_, writer) in parts.writers.drain() {
                        writer.discard();
                    }
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
    let mut finished = Vec::new();
    let mut failure = None;
    for (_, out) in outputs {
        match out {
            Ok(out) => finished.push(out),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        // The bag fails: no part file of it stays behind (a failing worker deleted its open ones).
        let written = finished.into_iter().flat_map(|out| out.parts.into_iter().map(|(table, part, _)| (table, part)));
        discard_parts_of(&plan, written, runtime);
        return Err(e);
    }
    let outputs = finished;
    let mut parts: Vec<Vec<(PartFile, Fields)>> = vec![Vec::new(); plan.tables.len()];
    let mut counters: HashMap<u32, ConnCounters> = HashMap::new();
    let mut damage = bag.damage.clone();
    let mut failed_tables: BTreeMap<usize, String> = BTreeMap::new();
    for out in outputs {
        for (table, reason) in out.failed_tables {
            failed_tables.entry(table).or_insert(reason);
        }
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
    for (&table, reason) in &failed_tables {
        let written = std::mem::take(&mut parts[table]).into_iter().map(|(part, _)| (table, part));
        discard_parts_of(&plan, written, runtime);
        report_failed_table(&plan, &bag, table, reason, &mut counters, &mut damage.problems);
    }
    let report = build_report(&bag, &bag_file, &plan, &counters, damage, started.elapsed().as_secs_f64());
    let mut record = bag_record(&bag, &report, lake, record_key)?;
    if !failed_tables.is_empty() {
        // Not complete: a later run over the same source ingests it again.
        record.source_version = None;
    }
    let tables = plan
        .tables
        .iter()
        .zip(parts.into_iter())
        .enumerate()
        // A failed table is left as it was: not committed, so its earlier rows stay.
        .filter(|(i, _)| !failed_tables.contains_key(i))
        .map(|(_, (table, parts))| TableWrite {
            name: table.name.clone(),
            dir: table.dir.clone(),
            fields: table_fields(&plan, table, &parts),
            parts: parts.into_iter().map(|(part, _)| part).collect(),
        })
        .collect();
    Ok(WrittenBag { report, record, tables, replaces })
}

/// Deletes part files (by table) written for a bag that will not be committed.
fn discard_parts_of(plan: &plan::Plan, written: impl IntoIterator<Item = (usize, PartFile)>, runtime: &tokio::runtime::Runtime) {
    let mut by_table: BTreeMap<usize, Vec<PartFile>> = BTreeMap::new();
    for (table, part) in written {
        by_table.entry(table).or_default().push(part);
    }
    for (table, parts) in by_table {
        runtime.block_on(crate::lake::delta::discard_parts(&plan.tables[table].dir, &parts));
    }
}

/// Makes the report say that table `table` of the bag could not be written, for each of its
/// topics: none of their messages is ingested, and the first error says why.
fn report_failed_table(plan: &plan::Plan, bag: &Bag, table: usize, reason: &str, counters: &mut HashMap<u32, ConnCounters>, problems: &mut Vec<String>) {
    let target = &plan.tables[table];
    let mut topics = Vec::new();
    for conn in &bag.connections {
        let Some(&v) = plan.conn_variant.get(&conn.id) else { continue };
        if plan.variants[v].table != table {
            continue;
        }
        let why = format!("topic {} (type {}) could not be written to table {}: {reason}", conn.topic, conn.msg_type, target.name);
        let c = counters.entry(conn.id).or_default();
        c.errors += c.ok;
        c.ok = 0;
        c.first_error = Some(why);
        if !topics.contains(&conn.topic) {
            topics.push(conn.topic.clone());
        }
    }
    problems.push(format!(
        "table {} ({}) was not written: {reason}; its part files were deleted and the table keeps what it had, the bag's other tables were written",
        target.name,
        topics.join(", ")
    ));
}

/// Stored bytes of a bag below which one more worker does not pay: each worker writes its own
/// part file per table, and a fleet of short drives would otherwise double its small files for
/// no gain in speed.
const MIN_STORED_BYTES_PER_WORKER: u64 = 4 << 20;

/// Workers for reading `bag`: up to `available`, one per [`MIN_STORED_BYTES_PER_WORKER`].
fn workers_for(bag: &Bag, available: usize) -> usize {
    let stored: u64 = bag.chunks.iter().map(|c| c.stored_len() as u64).sum();
    let useful = usize::try_from(stored.div_ceil(MIN_STORED_BYTES_PER_WORKER)).unwrap_or(usize::MAX);
    available.min(useful).max(1)
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
