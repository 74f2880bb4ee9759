//! Committing written bags: the part files of one or more bags go into each table in one Delta
//! commit per table, then each bag gets its bag record.
//!
//! Committing several bags at once is what keeps a bag's cost flat as the lake grows: a commit
//! reads the table's state and every tenth writes a checkpoint listing all its files, so one
//! commit per bag and table made each bag pay for the whole table. The bags of a group are
//! independent until their commit; if a table's group commit fails, that table is committed bag
//! by bag, so one bad bag does not fail the others.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::datatypes::Fields;
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::failpoint::pause_point;
use crate::lake::delta::{self, PartitionWrite};
use crate::lake::location::TableLocation;
use crate::lake::parquet::PartFile;
use crate::meta::{BagRecord, MetaStore};

use super::plan::GroupSchemas;
use super::{IngestOptions, IngestReport};

/// Tables committed at the same time.
const CONCURRENT_COMMITS: usize = 2;

/// One table's share of a written bag.
pub(super) struct TableWrite {
    pub(super) name: String,
    pub(super) dir: TableLocation,
    /// Every column of the bag's files in this table.
    pub(super) fields: Fields,
    pub(super) parts: Vec<PartFile>,
}

/// A bag whose part files are written and not yet committed.
pub(super) struct WrittenBag {
    pub(super) report: IngestReport,
    pub(super) record: BagRecord,
    pub(super) tables: Vec<TableWrite>,
    /// The bag's partition under an earlier key, removed by its commit.
    pub(super) replaces: Option<String>,
}

impl WrittenBag {
    /// Deletes its part files (nothing references them).
    pub(super) async fn remove_parts(&self) {
        for table in &self.tables {
            delta::discard_parts(&table.dir, &table.parts).await;
        }
    }
}

/// Written bags waiting for their commit.
#[derive(Default)]
pub(super) struct PendingBags {
    pub(super) bags: Vec<WrittenBag>,
    /// When the first of them was written.
    pub(super) since: Option<Instant>,
    /// The tables' schemas as the group's next bag is planned against.
    pub(super) schemas: GroupSchemas,
}

impl PendingBags {
    pub(super) fn push(&mut self, bag: WrittenBag) {
        self.since.get_or_insert_with(Instant::now);
        for table in &bag.tables {
            self.schemas.add_pending(&table.name, &table.fields);
        }
        self.bags.push(bag);
    }

    /// Whether the group is due: `bags_per_commit` bags, or its first bag waiting for
    /// `commit_interval`.
    pub(super) fn is_due(&self, opts: &IngestOptions) -> bool {
        self.bags.len() >= opts.bags_per_commit.max(1) || self.since.is_some_and(|t| t.elapsed() >= opts.commit_interval)
    }

    /// The bags, for their commit; the next group starts from the tables as committed then.
    pub(super) fn take(&mut self) -> Vec<WrittenBag> {
        self.since = None;
        self.schemas = GroupSchemas::default();
        std::mem::take(&mut self.bags)
    }
}

/// Commits `bags` (every table once for all of them, or bag by bag where that fails), then
/// records each committed bag in `store`. Returns each bag's report or error, in order.
pub(super) fn commit_bags(bags: Vec<WrittenBag>, store: &dyn MetaStore, opts: &IngestOptions, runtime: &tokio::runtime::Runtime) -> Vec<(String, Result<IngestReport>)> {
    if bags.is_empty() {
        return Vec::new();
    }
    let inputs: Vec<String> = bags.iter().map(|b| b.report.path.display().to_string()).collect();
    // Nothing is committed unless the bags can be recorded afterwards.
    if let Err(e) = store.ready() {
        runtime.block_on(async {
            for bag in &bags {
                bag.remove_parts().await;
            }
        });
        let message = e.to_string();
        return inputs.into_iter().map(|i| (i, Err(Error::StoreNotReady { reason: message.clone() }))).collect();
    }
    pause_point("ingest:parts-written");
    let commit_started = Instant::now();
    let failed = runtime.block_on(commit_tables(&bags, opts));
    // Each bag's time: reading and writing it, and its share of the group's commits.
    let commit_share = commit_started.elapsed().as_secs_f64() / bags.len() as f64;
    tracing::debug!(bags = bags.len(), failed = failed.len(), "committed every table");
    let mut results = Vec::with_capacity(bags.len());
    for (i, mut bag) in bags.into_iter().enumerate() {
        if let Some(e) = failed.get(&i) {
            results.push((inputs[i].clone(), Err(Error::Commit { bag: bag.report.bag_file.clone(), reason: e.clone() })));
            continue;
        }
        bag.report.seconds += commit_share;
        bag.record.ingest_seconds = bag.report.seconds;
        bag.record.ingested_at = chrono::Utc::now().to_rfc3339();
        // The bag record comes last: batches only see a bag once all its tables are written.
        let recorded = store.put_bag(&bag.record).map_err(Error::from);
        results.push((inputs[i].clone(), recorded.map(|()| bag.report)));
    }
    results
}

/// One commit per table for all `bags`; a table whose commit fails is committed bag by bag.
/// Returns the bags (by index) that could not be committed, with the reason.
async fn commit_tables(bags: &[WrittenBag], opts: &IngestOptions) -> BTreeMap<usize, String> {
    // Table name → (its location, the bags writing it and their share).
    let mut tables: BTreeMap<&str, (&TableLocation, Vec<(usize, &TableWrite)>)> = BTreeMap::new();
    for (i, bag) in bags.iter().enumerate() {
        for table in &bag.tables {
            tables.entry(table.name.as_str()).or_insert_with(|| (&table.dir, Vec::new())).1.push((i, table));
        }
    }
    let committed = std::sync::atomic::AtomicUsize::new(0);
    let commits = tables.into_iter().map(|(name, (dir, writers))| {
        let committed = &committed;
        async move {
            let failed = commit_table(dir, name, &writers, bags, opts).await;
            let n = committed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            pause_point(&format!("ingest:committed-{n}"));
            failed
        }
    });
    let outcomes: Vec<Vec<(usize, String)>> = futures::stream::iter(commits).buffer_unordered(CONCURRENT_COMMITS).collect().await;
    outcomes.into_iter().flatten().collect()
}

/// Commits one table's share of the bags `writers`; returns those that failed.
async fn commit_table(dir: &TableLocation, name: &str, writers: &[(usize, &TableWrite)], bags: &[WrittenBag], opts: &IngestOptions) -> Vec<(usize, String)> {
    let writes: Vec<(PartitionWrite, Fields)> = writers
        .iter()
        .map(|(i, table)| {
            let write = PartitionWrite {
                bag: bags[*i].report.bag_file.clone(),
                parts: table.parts.clone(),
                replaces: bags[*i].replaces.iter().cloned().collect(),
            };
            (write, table.fields.clone())
        })
        .collect();
    delta::replace_partitions_or_each(dir, name, &writes, opts.delete_replaced_files)
        .await
        .into_iter()
        .map(|(k, reason)| (writers[k].0, reason))
        .collect()
}
