//! `scenes batch`: claims ingested bags that no batch has processed yet, in batches of
//! `batch.batch_size`, and runs sync and detect on each. Claims are atomic in the metadata
//! store, so several `scenes batch` processes never process the same bag twice; sync and detect
//! replace partitions, so re-running never duplicates rows. A batch whose process dies is
//! noticed by the next claim (dead owner, or lease expired) and its bags are claimed again.

//!
//! Batch runs the sync and detect stages: it sits above them, not beside them.

use std::time::{Duration, Instant};

use crate::detect::{run_detect, DetectConfig};
use crate::error::Result;
use crate::failpoint::pause_point;
use crate::lake::parquet::ParquetOptions;
use crate::lake::Lake;
use crate::meta::{BatchRecord, MetaStore};
use crate::sync::{sync_bag, SyncOptions};

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
}

/// Runs batches until no (full, or with `all` any) batch of waiting bags is left.
pub async fn run_batches(lake: &Lake, store: &dyn MetaStore, opts: &BatchOptions) -> Result<Vec<BatchRecord>> {
    let mut done = Vec::new();
    while let Some(mut batch) = store.claim_batch(opts.batch_size, opts.all, opts.claim_lease)? {
        let started = Instant::now();
        pause_point("batch:claimed");
        let outcome = process(lake, store, opts, &batch).await;
        pause_point("batch:processed");
        batch.seconds = Some(started.elapsed().as_secs_f64());
        batch.finished_at = Some(chrono::Utc::now().to_rfc3339());
        match outcome {
            Ok(scenes) => {
                batch.status = "done".into();
                batch.scenes = Some(scenes);
            }
            Err(e) => {
                batch.status = "failed".into();
                batch.error = Some(e.to_string());
            }
        }
        store.finish_batch(&batch)?;
        done.push(batch);
    }
    Ok(done)
}

async fn process(lake: &Lake, store: &dyn MetaStore, opts: &BatchOptions, batch: &BatchRecord) -> Result<u64> {
    let mut scenes = 0;
    for prefix in &batch.bags {
        let bag = store
            .get_bag(prefix)?
            .ok_or_else(|| crate::meta::MetaError::MissingBag { bag: prefix.clone() })?;
        sync_bag(lake, &bag.bag_file, &opts.sync).await?;
        pause_point("batch:synced");
        if let Some(report) = run_detect(lake, store, &bag, &opts.detect, &opts.parquet).await? {
            scenes += report.scenes.len() as u64;
        }
    }
    Ok(scenes)
}
