//! `scenes batch`: sync + detect over claimed batches of ingested bags.

use anyhow::Result;
use clap::Args;

use super::output::print_scenes;
use super::{Context, Outcome};
use crate::batch::BatchOptions;

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Also run a last batch smaller than batch_size
    #[arg(long)]
    pub all: bool,

    /// First put the bags of failed batches back in the queue
    #[arg(long)]
    pub retry_failed: bool,

    /// Bags per batch (overrides the config's batch.batch_size)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
}

pub fn run(ctx: &Context, args: &BatchArgs) -> Result<Outcome> {
    let (lake, store, runtime) = ctx.open_lake_and_store()?;
    let started = std::time::Instant::now();
    if args.retry_failed {
        let released = store.release_failed()?;
        if ctx.prints_text() {
            println!("{released} bags of failed batches wait again");
        }
    }
    let config = &ctx.config;
    let parquet = config.parquet();
    let opts = BatchOptions {
        batch_size: args.batch_size.map_or(config.batch.batch_size, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        claim_lease: std::time::Duration::from_secs(config.batch.claim_lease_s),
        all: args.all,
        sync: config.sync.options(&parquet),
        detect: config.detect.clone(),
        parquet,
        bags_per_commit: config.batch.bags_per_commit,
    };
    let batches = runtime.block_on(crate::batch::run_batches(&lake, store.as_ref(), &opts))?;
    let failed = batches.iter().filter(|b| b.status != "done").count();
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&batches)?);
    } else if !ctx.quiet {
        if batches.is_empty() {
            if args.all {
                println!("nothing to do: every ingested bag has been processed");
            } else {
                println!("nothing to do: no full batch of waiting bags (--all also runs a smaller last batch)");
            }
        }
        for b in &batches {
            println!("batch {}: {} bags, {}, {} scenes in {:.2}s{}", b.batch_id, b.bags.len(), b.status, b.scenes.unwrap_or(0), b.seconds.unwrap_or(0.0), b.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default());
        }
        let processed: std::collections::HashSet<String> = batches.iter().flat_map(|b| b.bags.iter().cloned()).collect();
        let scenes = store.list_scenes()?;
        for bag in store.list_bags()?.iter().filter(|b| processed.contains(&b.bag_file_prefix)) {
            let mine: Vec<crate::meta::SceneRecord> = scenes.iter().filter(|s| s.bag_file == bag.bag_file).cloned().collect();
            print_scenes(&bag.bag_file, &mine, None);
        }
        println!("{} batches in {:.2}s", batches.len(), started.elapsed().as_secs_f64());
    }
    if failed > 0 {
        eprintln!("error: {failed} of {} batches failed", batches.len());
        return Ok(Outcome::SomeFailed { failed, total: batches.len() });
    }
    Ok(Outcome::Done)
}
