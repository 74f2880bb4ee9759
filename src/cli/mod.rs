//! The command line: the clap types of the global flags and the command list, dispatch to one
//! file per command, and what a run's outcome is. Only `main.rs` turns an outcome into an exit
//! code: 0 every input done, 1 some input failed (or a fatal error), 2 a usage or configuration
//! error found before any work.

mod batch;
mod catalog;
mod clip;
mod detect;
mod generate;
mod info;
mod ingest;
mod init_store;
mod output;
mod query;
mod report;
mod split;
mod sync;
mod optimize;
mod vacuum;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::lake::Lake;
use crate::meta::MetaStore;

/// scenes — turn ROS bags into typed, queryable lake tables.
///
/// Typical use:
///
///   scenes info drive.bag          summary of a bag, like `rosbag info`
///   scenes ingest drives/*.bag     one Delta table per topic under ./lake/topics/
///   scenes batch --all             sync + detect over every ingested bag
///   scenes query "SELECT ..."      SQL over every table of the lake
///   scenes generate out.bag        a synthetic drive with its ground truth
///
/// Settings come from ./config.json (or --config); the comments inside it explain each key.
///
/// Exit codes: 0 every input done; 1 some input failed (the others were done); 2 bad flags or
/// a config file that cannot be used (nothing was done).
#[derive(Debug, Parser)]
#[command(name = "scenes", version, about, long_about, propagate_version = true, verbatim_doc_comment)]
pub struct Cli {
    /// Configuration file [default: ./config.json when present, else built-in defaults]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Lake root: a directory or s3://bucket/prefix/ (overrides `lake` in the config)
    #[arg(long, global = true, value_name = "URI")]
    pub lake: Option<String>,

    /// More log output (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Machine-readable JSON output
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarize bags (ROS1 or MCAP): topics, types, counts, frequencies, compression, chunks,
    /// time range.
    ///
    /// Reads only the index when the bag has one, so it is fast on multi-GB bags. Unindexed or
    /// torn bags are scanned and the damage is reported.
    Info(info::InfoArgs),
    /// Ingest bags into the lake: one Delta table per topic, partitioned by bag.
    ///
    /// Every message is decoded with the definition stored in the bag. Re-ingesting a bag
    /// replaces its partition in every table (nothing is duplicated). BAG may be a ROS1 bag, an
    /// MCAP file (ROS 2, CDR or ROS1 messages), a directory (all *.bag and *.mcap inside, so a
    /// rosbag2 folder works), a quoted glob, or an object on S3: `s3://bucket/key.bag` (read by
    /// ranged GETs, never downloaded whole) or `s3://bucket/prefix/` (every .bag/.mcap below it).
    /// Credentials come from the standard AWS chain; see `s3` in config.json for endpoint and
    /// region. A bag that fails is reported and the others go on (exit code 1).
    Ingest(ingest::IngestArgs),
    /// Put every topic of ingested bags on one timeline of fixed ticks (table `synced`).
    ///
    /// At each tick (100 ms by default) a topic carries its latest message with time ≤ tick,
    /// as a struct column named after its table, plus `<table>_age_ms`. Image and point-cloud
    /// topics stay out. Settings: the `sync` section of config.json.
    Sync(sync::SyncArgs),
    /// Assign detected objects to lanes on the synced timeline and write person-in-lane scenes.
    ///
    /// Writes the tables `enriched` (per tick: objects in lane under both rules, people counts)
    /// and `scenes`, and the scene records of the metadata store. Which topics and fields hold
    /// boxes, classes and lane points: the `detect` section of config.json. With --report,
    /// compares the scenes with `<bag>.ground_truth.json` files (beside each bag, or in
    /// --ground-truth DIR) and prints precision and recall for both rules.
    Detect(detect::DetectArgs),
    /// Run sync + detect over batches of ingested bags that no batch has processed yet.
    ///
    /// Bags are claimed atomically in batches of `batch.batch_size` (config); --all also runs a
    /// last, smaller batch. Safe to run twice at once; re-runs replace, never duplicate.
    Batch(batch::BatchArgs),
    /// Run SQL over the lake: every topic table by name, plus `bags` (the metadata store).
    ///
    /// Without SQL, opens an interactive shell (statements end with `;`, \\d lists tables).
    /// Examples:
    ///
    ///   scenes query "SELECT bag_name, count(*) FROM imu_data JOIN bags USING (bag_file) GROUP BY bag_name"
    ///   scenes query --format csv --output fixes.csv "SELECT * FROM vehicle_gps_fix"
    #[command(verbatim_doc_comment)]
    Query(query::QueryArgs),
    /// Split a bag into valid smaller bags by size and/or duration.
    ///
    /// Outputs are `<name>_0000.bag`, `<name>_0001.bag`, ... (beside the input or in --out-dir),
    /// each with its own connections, chunks and index; messages keep their order and bytes.
    Split(split::SplitArgs),
    /// Cut scenes out of their bags as bag or MCAP clips a viewer opens complete.
    ///
    /// `scenes clip <scene_id>...` writes `<scene_id>.bag` (or `.mcap`) per scene into --out: every
    /// message of the source bag from the scene's start minus --pad-s to its end plus --pad-s,
    /// bytes unchanged, plus the last earlier message of each latched or static topic
    /// (clip.latched_topics: /tf_static, camera_info, maps). Sources on S3 are read by ranges,
    /// only the chunks the window needs. `--bag B --from T --to T` clips any window. With
    /// --out s3://bucket/prefix/ and --presign each clip gets a time-limited HTTPS URL, and
    /// detect.replay_url turns it into a viewer link.
    Clip(clip::ClipArgs),
    /// Write one static HTML page of the scenes, with pictures.
    ///
    /// `<out>/index.html` (no scripts, fonts or network: it opens offline and on S3 static
    /// hosting): per bag a timeline of ego speed and people in lane with the scenes marked; per
    /// scene the camera frame at its start (the JPEG as recorded) with the detected boxes and
    /// lane lines drawn over it, its numbers, and its clip (with --clips, or when
    /// <out>/clips/<scene_id>.bag exists) and replay link (detect.replay_url).
    Report(report::ReportArgs),
    /// Write a synthetic drive (GPS, IMU, speed, detections, lanes, optional images) and its
    /// person-in-lane ground truth (`<bag>.ground_truth.json` beside it).
    Generate(generate::GenerateArgs),
    /// Create the metadata store's DynamoDB tables when they are missing (metadata_store.kind =
    /// "dynamodb"; on-demand billing). The local store needs nothing.
    InitStore,
    /// Remove files no table references: part files of killed runs, replaced files that were
    /// kept.
    ///
    /// Only files last modified more than --retain-hours ago (24 by default) are removed, so a
    /// run in progress keeps the files it has not committed yet; the files of every table's
    /// current version are never touched. --dry-run lists them without removing anything.
    Vacuum(vacuum::VacuumArgs),
    /// Compact each bag's small part files into fewer, larger ones (Delta OPTIMIZE).
    ///
    /// Per table and bag partition, consecutive files smaller than --target-mb are rewritten
    /// into one, with the table's exact column types, and swapped in by one OPTIMIZE commit per
    /// table (no data change: readers, and writers of other bags, carry on). The old files stay
    /// for readers of older versions until `scenes vacuum` removes them.
    Optimize(optimize::OptimizeArgs),
    /// Register the lake for Athena: every Delta table, the bag records and the views.
    ///
    /// First writes the metadata store's bag records to the lake (`catalog/bags`, registered as
    /// `bags`). `scenes catalog glue --lake s3://my-lake/` then creates or updates every table
    /// (topic tables, synced, enriched, scenes, bags) and view (scene_bags, scene_timeline) in
    /// the Glue Data Catalog; `scenes catalog athena` prints the same as DDL, to run in the
    /// Athena console, for people without Glue rights.
    Catalog {
        #[command(subcommand)]
        target: catalog::CatalogTarget,
    },
}

/// How a run ended when it did not stop on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every input was done.
    Done,
    /// Some inputs failed (each was reported when it failed); the others were done.
    SomeFailed { failed: usize, total: usize },
}

/// A mistake in how the command was called (flags, arguments), found before any work: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Fails the command with a [`UsageError`].
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// The bags `--bag` names, by key (`bag_file`), by name (every bag of that name) or by source
/// (its path or `s3://` URI); all of `bags` without `--bag`.
pub fn select_bags(bags: Vec<crate::meta::BagRecord>, only: Option<&str>, lake: &crate::lake::Lake) -> Result<Vec<crate::meta::BagRecord>> {
    let Some(only) = only else { return Ok(bags) };
    let selects = |b: &crate::meta::BagRecord| b.bag_file == only || b.name() == only || b.source_uri.as_deref() == Some(only) || b.bag_file_prefix == only;
    if bags.iter().any(selects) {
        return Ok(bags.into_iter().filter(|b| selects(b)).collect());
    }
    let mut known: Vec<&str> = bags.iter().map(|b| b.bag_file.as_str()).collect();
    known.sort();
    known.truncate(20);
    usage!(
        "no ingested bag in {} has the key, name or source '{only}' (give a bag_file key, a bag name or the bag's path); some ingested: {}",
        lake.display(),
        known.join(", ")
    )
}

/// What every command handler gets: the global flags and the loaded configuration.
pub struct Context {
    pub config: Config,
    /// `--lake`, when given.
    pub lake_override: Option<String>,
    pub json: bool,
    pub quiet: bool,
}

impl Context {
    /// Whether human-readable results are printed (not with `--json` or `-q`).
    pub fn prints_text(&self) -> bool {
        !self.json && !self.quiet
    }

    /// The lake URI from `--lake` or the config.
    pub fn lake_uri(&self) -> String {
        self.lake_override.clone().unwrap_or_else(|| self.config.lake.clone())
    }

    /// The lake named by `--lake` or the config: a directory or `s3://bucket/prefix/`.
    pub fn open_lake(&self, runtime: &tokio::runtime::Runtime) -> Result<Lake> {
        Ok(Lake::open_with(&self.lake_uri(), &self.config.s3, runtime.handle())?)
    }

    /// The lake, its metadata store and a runtime for their I/O.
    pub fn open_lake_and_store(&self) -> Result<(Lake, Box<dyn MetaStore>, tokio::runtime::Runtime)> {
        let runtime = new_runtime()?;
        let lake = self.open_lake(&runtime)?;
        let store = crate::meta::open_store(&self.config.metadata_store, lake.metadata_file(), &lake.display())?;
        Ok((lake, store, runtime))
    }
}

/// The async runtime for lake and AWS I/O (two threads: the work itself runs on rayon's).
pub fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    init_logging(cli.verbose, cli.quiet);
    let config = Config::load(cli.config.as_deref())?;
    let ctx = Context { config, lake_override: cli.lake, json: cli.json, quiet: cli.quiet };
    match cli.command {
        Command::Info(args) => info::run(&ctx, &args),
        Command::Ingest(args) => ingest::run(&ctx, &args),
        Command::Sync(args) => sync::run(&ctx, &args),
        Command::Detect(args) => detect::run(&ctx, &args),
        Command::Batch(args) => batch::run(&ctx, &args),
        Command::Query(args) => query::run(&ctx, &args),
        Command::Split(args) => split::run(&ctx, &args),
        Command::Clip(args) => clip::run(&ctx, &args),
        Command::Report(args) => report::run(&ctx, &args),
        Command::Generate(args) => generate::run(&ctx, &args),
        Command::InitStore => init_store::run(&ctx),
        Command::Vacuum(args) => vacuum::run(&ctx, &args),
        Command::Optimize(args) => optimize::run(&ctx, &args),
        Command::Catalog { target } => catalog::run(&ctx, &target),
    }
}

/// The exit code for an error that stopped a run: 2 when it is the caller's to fix before any
/// work (flags, arguments, the config file), 1 otherwise.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let usage = error.downcast_ref::<UsageError>().is_some() || error.downcast_ref::<crate::config::ConfigError>().is_some();
    if usage {
        2
    } else {
        1
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("scenes").chain(args.iter().copied()))
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let before = parse(&["--lake", "/tmp/l", "--json", "ingest", "a.bag"]).unwrap();
        let after = parse(&["ingest", "a.bag", "--lake", "/tmp/l", "--json"]).unwrap();
        for cli in [before, after] {
            assert_eq!(cli.lake.as_deref(), Some("/tmp/l"));
            assert!(cli.json);
            let Command::Ingest(args) = cli.command else { panic!("not ingest") };
            assert_eq!(args.bags, vec!["a.bag".to_string()]);
        }
    }

    #[test]
    fn ingest_needs_a_bag_and_splits_topics_on_commas() {
        assert!(parse(&["ingest"]).is_err());
        let cli = parse(&["ingest", "a.bag", "--topics", "/imu/data,/gps/fix", "--threads", "3"]).unwrap();
        let Command::Ingest(args) = cli.command else { panic!("not ingest") };
        assert_eq!(args.topics, vec!["/imu/data".to_string(), "/gps/fix".to_string()]);
        assert_eq!(args.threads, Some(3));
    }

    #[test]
    fn defaults_of_generate_and_query() {
        let Command::Generate(g) = parse(&["generate", "out.bag"]).unwrap().command else { panic!("not generate") };
        assert_eq!((g.duration_s, g.seed, g.image_bytes), (40, 1, 0));
        let Command::Query(q) = parse(&["query"]).unwrap().command else { panic!("not query") };
        assert!(q.sql.is_none());
        assert_eq!(q.format, crate::query::Format::Table);
    }

    #[test]
    fn unknown_commands_flags_and_values_are_usage_errors() {
        for args in [&["frobnicate"][..], &["ingest", "a.bag", "--no-such-flag"], &["generate", "o.bag", "--compression", "gzip"]] {
            let err = parse(args).err().map(|e| e.exit_code());
            assert_eq!(err, Some(2), "{args:?}");
        }
    }

    #[test]
    fn config_and_usage_errors_exit_2_and_others_1() {
        let usage = anyhow::Error::new(UsageError("bad".into()));
        let config = anyhow::Error::new(crate::config::Config::parse("{").unwrap_err());
        let other = anyhow::anyhow!("disk full");
        assert_eq!((exit_code_for(&usage), exit_code_for(&config), exit_code_for(&other)), (2, 2, 1));
    }

    #[test]
    fn help_lists_every_command() {
        let help = <Cli as clap::CommandFactory>::command().render_long_help().to_string();
        for command in ["info", "ingest", "sync", "detect", "batch", "query", "split", "clip", "report", "generate", "init-store", "vacuum", "optimize", "catalog"] {
            assert!(help.contains(command), "{command} missing from --help");
        }
    }
}
