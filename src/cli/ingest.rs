//! `scenes ingest`: bags (files, folders, globs, `s3://`) into the lake, one table per topic.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args;

use super::output::print_ingest_report;
use super::{new_runtime, Context, Outcome};
use crate::ingest::{IngestReport, Ingested, IngestRun, InputOutcome};
use crate::meta::open_store_in_background;
use crate::source::inputs::expand_inputs;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Bag files, directories, globs or s3:// URIs
    #[arg(required = true)]
    pub bags: Vec<String>,

    /// Only these topics (comma-separated), e.g. /imu/data,/vehicle/gps/fix
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,

    /// Worker threads (0 = one per core; overrides the config)
    #[arg(long)]
    pub threads: Option<usize>,

    /// No progress bar even on a terminal
    #[arg(long)]
    pub no_progress: bool,

    /// Ingest every bag again, also those whose source (size and modification time, or size
    /// and ETag on S3) is unchanged since their last ingest; without it those are skipped
    #[arg(long)]
    pub force: bool,

    /// A directory of .msg files for message types a rosbag2 recording (.db3 before ROS 2
    /// Iron) holds no definition of: <DIR>/<pkg>/msg/<Type>.msg or <DIR>/share/<pkg>/msg/...
    /// Repeatable; searched before ingest.msg_paths and the ROS environment (AMENT_PREFIX_PATH,
    /// ROS_PACKAGE_PATH). A type found nowhere is stored raw and the report says which.
    #[arg(long = "msg-path", value_name = "DIR")]
    pub msg_paths: Vec<std::path::PathBuf>,
}

pub fn run(ctx: &Context, args: &IngestArgs) -> Result<Outcome> {
    let runtime = new_runtime()?;
    let bags = expand_inputs(&args.bags, &ctx.config.s3, runtime.handle())?;
    let lake = ctx.open_lake(&runtime)?;
    // A local store that does not exist yet holds no bag to skip: no lookup then waits for the
    // store, which opens while the first bag is read.
    let new_local_store = !ctx.config.metadata_store.is_dynamodb() && lake.metadata_file().is_some_and(|file| !file.exists());
    let store = open_store_in_background(&ctx.config.metadata_store, lake.metadata_file(), &lake.display(), runtime.handle())?;
    let mut opts = ctx.config.ingest.options();
    if !args.topics.is_empty() {
        opts.topics = args.topics.clone();
    }
    opts.threads = args.threads.unwrap_or(opts.threads);
    opts.progress = !args.no_progress && ctx.prints_text() && std::io::stderr().is_terminal();
    opts.force = args.force || new_local_store;
    if !args.msg_paths.is_empty() {
        let dirs: Vec<std::path::PathBuf> = args.msg_paths.iter().chain(&ctx.config.ingest.msg_paths).cloned().collect();
        opts.msg_path = crate::decode::msg_path::MsgPath::new(&dirs);
    }
    let mut reports: Vec<IngestReport> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    let mut record = |outcomes: Vec<InputOutcome>| {
        for (input, outcome) in outcomes {
            match outcome {
                Ok(Ingested::Done(report)) => {
                    if ctx.prints_text() {
                        print_ingest_report(&report);
                    }
                    reports.push(report);
                }
                Ok(Ingested::Unchanged) => skipped.push(input),
                Err(e) => {
                    // Errors name the bag file or key already.
                    eprintln!("error: {e}");
                    failures.push(e.to_string());
                }
            }
        }
    };
    let mut run = IngestRun::new(&lake, store.as_ref(), &opts, &ctx.config.s3, &runtime);
    for (i, bag) in bags.iter().enumerate() {
        if i > 0 {
            // A store that could not be opened failed the first bag; the others would too.
            store.ready()?;
        }
        record(run.add(bag));
    }
    record(run.finish());
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ingested": reports, "skipped": skipped, "failed": failures }))?);
    } else if !ctx.quiet {
        if !skipped.is_empty() {
            println!("skipped {} unchanged bags (ingested before from the same source; --force ingests them again)", skipped.len());
        }
        println!("lake: {}", lake.display());
    }
    if failures.is_empty() {
        return Ok(Outcome::Done);
    }
    eprintln!("error: {} of {} bags failed", failures.len(), bags.len());
    Ok(Outcome::SomeFailed { failed: failures.len(), total: bags.len() })
}
