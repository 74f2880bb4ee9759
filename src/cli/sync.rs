//! `scenes sync`: every topic of ingested bags on one timeline (table `synced`).

use anyhow::Result;
use clap::Args;

use super::{select_bags, usage, Context, Outcome};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this bag: its key (bag_file), its name (every bag of that name) or its source path
    /// or s3:// URI; default: every ingested bag
    #[arg(long)]
    pub bag: Option<String>,
}

pub fn run(ctx: &Context, args: &SyncArgs) -> Result<Outcome> {
    let (lake, store, runtime) = ctx.open_lake_and_store()?;
    let mut bags: Vec<String> = select_bags(store.list_bags()?, args.bag.as_deref(), &lake)?.into_iter().map(|b| b.bag_file).collect();
    bags.sort();
    bags.dedup();
    if bags.is_empty() {
        usage!("no ingested bags in {}; run `scenes ingest BAG...` first", lake.display());
    }
    let opts = ctx.config.sync.options(&ctx.config.parquet());
    let mut results = Vec::new();
    for bag in &bags {
        let started = std::time::Instant::now();
        let ticks = runtime.block_on(crate::sync::sync_bag(&lake, bag, &opts))?;
        let seconds = started.elapsed().as_secs_f64();
        if ctx.prints_text() {
            println!("{bag}: {ticks} ticks in {seconds:.2}s");
        }
        results.push(serde_json::json!({ "bag_file": bag, "ticks": ticks, "seconds": seconds }));
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(Outcome::Done)
}
