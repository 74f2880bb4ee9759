//! `scenes batch`: claims ingested bags that no batch has processed yet, in batches of
//! `batch.batch_size`, and runs sync and detect on each. Claims are atomic in the metadata
//! store, so several `scenes batch` processes never process the same bag twice; sync and detect
//! replace partitions, so re-running never duplicates rows. A batch whose process dies is
//! noticed by the next claim (dead owner, or lease expired) and its bags are claimed again.

//!
//! Batch runs the sync and detect stages: it sits above them, not beside them.

use std::time::{Duration, Instant};

use crate::detect::{detect_output, DetectConfig, DetectOutput};
use crate::error::Result;
use crate::failpoint::pause_point;
use crate::lake::delta::{self, PartitionWrite};
use crate::lake::parquet::{write_partition_part, ParquetOptions};
use crate::lake::Lake;
use crate::meta::{BagRecord, BatchRecord, MetaStore};
use crate::sync::{write_synced, SyncOptions};

/// How to run batches.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Bags per batch.
    pub batch_size: usize,
    /// How long a running batch whose owner cannot be checked is taken to be alive.
    pub claim_lease: Duration,
    /// Also run a last batch smaller than `batch_size`.
    pub all: bool,
    pub sync: SyncOptions,
    pub detect: DetectConfig,
    /// How the derived tables' part files are written.
    pub parquet: ParquetOptions,
    /// Bags (of one or more claimed batches) processed together, each stage's tables committed
    /// once for all of them.
    pub bags_per_commit: usize,
}

/// Runs batches until no (full, or with `all` any) batch of waiting bags is left.
///
/// Batches are claimed until `bags_per_commit` bags are claimed (or none wait), then processed
/// together: each stage's tables get one commit for all their bags, which keeps a bag's cost
/// flat as the tables grow. Each batch is finished (done or failed) on its own.
pub async fn run_batches(lake: &Lake, store: &dyn MetaStore, opts: &BatchOptions) -> Result<Vec<BatchRecord>> {
    // A scenario rule that does not plan against the synced table stops before any claim.
    crate::detect::check_scenarios(lake, &opts.detect).await?;
    let mut done = Vec::new();
    loop {
        let mut claimed: Vec<BatchRecord> = Vec::new();
        while claimed.iter().map(|b| b.bags.len()).sum::<usize>() < opts.bags_per_commit.max(1) {
            match store.claim_batch(opts.batch_size, opts.all, opts.claim_lease)? {
                Some(batch) => claimed.push(batch),
                None => break,
            }
        }
        if claimed.is_empty() {
            return Ok(done);
        }
        let started = Instant::now();
        pause_point("batch:claimed");
        let outcomes = process(lake, store, opts, &claimed).await;
        pause_point("batch:processed");
        // Each batch's share of the group's time.
        let seconds = started.elapsed().as_secs_f64() / claimed.len() as f64;
        for (mut batch, outcome) in claimed.into_iter().zip(outcomes) {
            batch.seconds = Some(seconds);
            batch.finished_at = Some(chrono::Utc::now().to_rfc3339());
            match outcome {
                Ok(scenes) => {
                    batch.status = "done".into();
                    batch.scenes = Some(scenes);
                }
                Err(e) => {
                    batch.status = "failed".into();
                    batch.error = Some(e);
                }
            }
            store.finish_batch(&batch)?;
            done.push(batch);
        }
    }
}

/// One bag of the claimed batches on its way through the stages.
struct BagWork {
    /// Index of its batch.
    batch: usize,
    record: BagRecord,
    /// Its detect output, once made.
    detected: Option<DetectOutput>,
}

/// Syncs and detects every bag of `batches`, each stage's tables committed once for all of
/// them. Returns each batch's scene count, or why it failed (the first failure of one of its
/// bags; the other batches go on).
async fn process(lake: &Lake, store: &dyn MetaStore, opts: &BatchOptions, batches: &[BatchRecord]) -> Vec<std::result::Result<u64, String>> {
    let mut failed: Vec<Option<String>> = vec![None; batches.len()];
    let mut fail = |batch: usize, reason: String| {
        failed[batch].get_or_insert(reason);
    };
    let mut work = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        for prefix in &batch.bags {
            match store.get_bag(prefix) {
                Ok(Some(record)) => work.push(BagWork { batch: b, record, detected: None }),
                Ok(None) => fail(b, crate::meta::MetaError::MissingBag { bag: prefix.clone() }.to_string()),
                Err(e) => fail(b, e.to_string()),
            }
        }
    }
    // Sync: every bag's timeline written, then one commit.
    let mut synced = Vec::new();
    for (w, bag) in work.iter().enumerate() {
        match write_synced(lake, &bag.record.bag_file, &opts.sync).await {
            Ok(Some(part)) => synced.push((w, (part.write, part.fields))),
            Ok(None) => {}
            Err(e) => fail(bag.batch, format!("{}: sync: {e}", bag.record.bag_file)),
        }
    }
    let writes: Vec<_> = synced.iter().map(|(_, write)| write.clone()).collect();
    for (k, reason) in delta::replace_partitions_or_each(&lake.table("synced"), "synced", &writes, true).await {
        fail(work[synced[k].0].batch, format!("{}: sync: {reason}", work[synced[k].0].record.bag_file));
    }
    pause_point("batch:synced");
    // Detect: every bag's scenes found and its rows written, then one commit per table.
    for bag in work.iter_mut() {
        match detect_output(lake, &bag.record, &opts.detect).await {
            Ok(output) => bag.detected = output,
            Err(e) => fail(bag.batch, format!("{}: detect: {e}", bag.record.bag_file)),
        }
    }
    for table in ["enriched", "scenes"] {
        let dir = lake.table(table);
        let mut writes = Vec::new();
        for (w, bag) in work.iter().enumerate() {
            let Some(output) = &bag.detected else { continue };
            let rows = if table == "enriched" { &output.enriched } else { &output.scenes };
            match write_partition_part(&dir, &bag.record.bag_file, rows, &opts.parquet).await {
                Ok(parts) => writes.push((w, (PartitionWrite::new(&bag.record.bag_file, parts), rows.schema().fields().clone()))),
                Err(e) => fail(bag.batch, format!("{}: {table}: {e}", bag.record.bag_file)),
            }
        }
        let only: Vec<_> = writes.iter().map(|(_, write)| write.clone()).collect();
        for (k, reason) in delta::replace_partitions_or_each(&dir, table, &only, true).await {
            let bag = &mut work[writes[k].0];
            bag.detected = None;
            fail(bag.batch, format!("{}: {reason}", bag.record.bag_file));
        }
    }
    // The scene records of the bags whose tables are written.
    let mut scenes = vec![0u64; batches.len()];
    for bag in &work {
        let Some(output) = &bag.detected else { continue };
        match store.replace_scenes(&bag.record.bag_file, &output.report.scenes) {
            Ok(()) => scenes[bag.batch] += output.report.scenes.len() as u64,
            Err(e) => fail(bag.batch, e.to_string()),
        }
    }
    failed.into_iter().zip(scenes).map(|(failure, n)| failure.map_or(Ok(n), Err)).collect()
}
