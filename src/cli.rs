//! Command-line interface: argument definitions (clap derive) and dispatch to the library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bag::Compression;
use crate::config::Config;
use crate::ingest::{ingest_bag, IngestOptions, IngestReport};
use crate::lake::parts::ParquetOptions;
use crate::lake::Lake;
use crate::meta::sqlite::SqliteStore;
use crate::meta::MetaStore;

/// scenes — turn ROS bags into typed, queryable lake tables.
///
/// Typical use:
///
///   scenes info drive.bag          summary of a bag, like `rosbag info`
///   scenes ingest drives/*.bag     one Delta table per topic under ./lake/topics/
///   scenes query "SELECT ..."      SQL over every table of the lake
///   scenes generate out.bag        a synthetic drive with its ground truth
///
/// Settings come from ./config.json (or --config); the comments inside it explain each key.
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
    Info {
        /// Bag files
        #[arg(required = true)]
        bags: Vec<PathBuf>,
    },
    /// Ingest bags into the lake: one Delta table per topic, partitioned by bag.
    ///
    /// Every message is decoded with the definition stored in the bag. Re-ingesting a bag
    /// replaces its partition in every table (nothing is duplicated). BAG may be a ROS1 bag, an
    /// MCAP file (ROS 2, CDR or ROS1 messages), a directory (all *.bag and *.mcap inside, so a
    /// rosbag2 folder works), a quoted glob, or an object on S3: `s3://bucket/key.bag` (read by
    /// ranged GETs, never downloaded whole) or `s3://bucket/prefix/` (every .bag/.mcap below it).
    /// Credentials come from the standard AWS chain; see `s3` in config.json for endpoint and
    /// region.
    Ingest(IngestArgs),
    /// Put every topic of ingested bags on one timeline of fixed ticks (table `synced`).
    ///
    /// At each tick (100 ms by default) a topic carries its latest message with time ≤ tick,
    /// as a struct column named after its table, plus `<table>_age_ms`. Image and point-cloud
    /// topics stay out. Settings: the `sync` section of config.json.
    Sync(SyncArgs),
    /// Assign detected objects to lanes on the synced timeline and write person-in-lane scenes.
    ///
    /// Writes the tables `enriched` (per tick: objects in lane under both rules, people counts)
    /// and `scenes`, and the scene records of the metadata store. Which topics and fields hold
    /// boxes, classes and lane points: the `detect` section of config.json. With --report,
    /// compares the scenes with `<bag>.ground_truth.json` files (beside each bag, or in
    /// --ground-truth DIR) and prints precision and recall for both rules.
    Detect(DetectArgs),
    /// Run sync + detect over batches of ingested bags that no batch has processed yet.
    ///
    /// Bags are claimed atomically in batches of `batch.batch_size` (config); --all also runs a
    /// last, smaller batch. Safe to run twice at once; re-runs replace, never duplicate.
    Batch(BatchArgs),
    /// Run SQL over the lake: every topic table by name, plus `bags` (the metadata store).
    ///
    /// Without SQL, opens an interactive shell (statements end with `;`, \\d lists tables).
    /// Examples:
    ///
    ///   scenes query "SELECT bag_file, count(*) FROM imu_data GROUP BY bag_file"
    ///   scenes query --format csv --output fixes.csv "SELECT * FROM vehicle_gps_fix"
    #[command(verbatim_doc_comment)]
    Query(QueryArgs),
    /// Split a bag into valid smaller bags by size and/or duration.
    ///
    /// Outputs are `<name>_0000.bag`, `<name>_0001.bag`, ... (beside the input or in --out-dir),
    /// each with its own connections, chunks and index; messages keep their order and bytes.
    Split(SplitArgs),
    /// Write a synthetic drive (GPS, IMU, speed, detections, lanes, optional images) and its
    /// person-in-lane ground truth (`<bag>.ground_truth.json` beside it).
    Generate(GenerateArgs),
    /// Create the metadata store's DynamoDB tables when they are missing (metadata_store.kind =
    /// "dynamodb"; on-demand billing). The local store needs nothing.
    InitStore,
    /// Print catalog DDL for the lake's tables.
    ///
    /// `scenes catalog athena --lake s3://my-lake/` prints CREATE DATABASE and one
    /// CREATE EXTERNAL TABLE per Delta table (topic tables, synced, enriched, scenes) for Amazon
    /// Athena / Glue; run it in the Athena console or with `aws athena start-query-execution`.
    Catalog {
        #[command(subcommand)]
        target: CatalogTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogTarget {
    /// DDL for Amazon Athena (Delta tables: TBLPROPERTIES ('table_type'='DELTA'))
    Athena(AthenaArgs),
}

#[derive(Debug, Args)]
pub struct AthenaArgs {
    /// S3 URI of the lake (where its tables are, or will be copied to) [default: the lake, when it is s3://]
    #[arg(long)]
    pub location: Option<String>,

    /// Glue database to create the tables in
    #[arg(long, default_value = "scenes")]
    pub database: String,
}

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
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this bag (its bag_file name); default: every ingested bag
    #[arg(long)]
    pub bag: Option<String>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Only this bag (its bag_file name); default: every synced bag
    #[arg(long)]
    pub bag: Option<String>,

    /// Print precision and recall against ground-truth files
    #[arg(long)]
    pub report: bool,

    /// Directory of `<bag>.ground_truth.json` files [default: beside each bag]
    #[arg(long, value_name = "DIR")]
    pub ground_truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Also run a last batch smaller than batch_size
    #[arg(long)]
    pub all: bool,

    /// First put the bags of failed batches back in the queue
    #[arg(long)]
    pub retry_failed: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL statement (omit for an interactive shell)
    pub sql: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = crate::query::Format::Table)]
    pub format: crate::query::Format,

    /// Write the result to this file instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Bag to split
    pub bag: PathBuf,

    /// Largest message payload per output, e.g. 10GiB, 500MB
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,

    /// Longest time span per output, in seconds
    #[arg(long, value_name = "SECONDS")]
    pub max_duration: Option<f64>,

    /// Directory for the outputs [default: beside the input]
    #[arg(long)]
    pub out_dir: Option<PathBuf>,

    /// Chunk compression of the outputs [default: the input's]
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output bag path
    pub out: PathBuf,

    /// Length of the drive in seconds
    #[arg(long, default_value_t = 40)]
    pub duration_s: u32,

    /// Random seed (same seed, same drive)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Chunk compression
    #[arg(long, value_enum, default_value_t = CompressionArg::Lz4)]
    pub compression: CompressionArg,

    /// Add a CompressedImage topic at 10 Hz with payloads of this many bytes (0 = none)
    #[arg(long, default_value_t = 0)]
    pub image_bytes: usize,

    /// Add a PointCloud2 topic at 10 Hz with this many points per scan, 16 bytes each (0 = none)
    #[arg(long, default_value_t = 0)]
    pub lidar_points: usize,

    /// Start of the drive in Unix seconds [default: 1700000000 + seed hours]
    #[arg(long)]
    pub start_unix_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    None,
    Bz2,
    Lz4,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Bz2 => Compression::Bz2,
            CompressionArg::Lz4 => Compression::Lz4,
        }
    }
}

/// [`open_store`] for ingest: the lake's own SQLite store is opened on another thread while
/// the first bag is read (ingest waits for it before committing); DynamoDB is connected to
/// here, so a wrong endpoint or table stops the run before any bag is read.
fn open_store_while_ingesting(config: &Config, lake: &Lake, runtime: &tokio::runtime::Runtime) -> Result<Box<dyn MetaStore>> {
    match (config.metadata_store.kind.as_str(), lake.metadata_file()) {
        ("dynamodb", _) | (_, None) => open_store(config, lake),
        (_, Some(file)) => Ok(Box::new(crate::meta::pending::PendingStore::open_in_background(runtime.handle(), move || {
            SqliteStore::open(&file).map(|store| Box::new(store) as Box<dyn MetaStore>).map_err(|e| e.to_string())
        }))),
    }
}

/// The metadata store the config names: SQLite inside the lake, or DynamoDB.
fn open_store(config: &Config, lake: &Lake) -> Result<Box<dyn MetaStore>> {
    match config.metadata_store.kind.as_str() {
        "dynamodb" => dynamo_store(config),
        _ => match lake.metadata_file() {
            Some(file) => Ok(Box::new(SqliteStore::open(&file)?)),
            None => bail!(
                "{}: a lake on S3 needs the DynamoDB metadata store (the local one is a file inside a local lake); set metadata_store.kind to \"dynamodb\" in the config",
                lake.display()
            ),
        },
    }
}

#[cfg(feature = "aws")]
fn connect_dynamo(config: &Config) -> Result<crate::meta::dynamo::DynamoStore> {
    let m = &config.metadata_store;
    Ok(crate::meta::dynamo::DynamoStore::connect(crate::meta::dynamo::DynamoSettings {
        bags_table: m.bags_table.clone(),
        batches_table: m.batches_table.clone(),
        scenes_table: m.scenes_table.clone(),
        endpoint_url: m.endpoint_url.clone(),
        region: m.region.clone(),
        max_attempts: m.max_attempts,
    })?)
}

#[cfg(feature = "aws")]
fn dynamo_store(config: &Config) -> Result<Box<dyn MetaStore>> {
    Ok(Box::new(connect_dynamo(config)?))
}

#[cfg(not(feature = "aws"))]
fn dynamo_store(_config: &Config) -> Result<Box<dyn MetaStore>> {
    bail!("metadata_store.kind \"dynamodb\" needs a build with the `aws` feature (the default)")
}

/// `scenes init-store`: creates missing DynamoDB tables.
fn init_store(config: &Config) -> Result<()> {
    if config.metadata_store.kind != "dynamodb" {
        println!("metadata_store.kind is \"{}\": the store is created on first use, nothing to do", config.metadata_store.kind);
        return Ok(());
    }
    #[cfg(feature = "aws")]
    {
        let created = connect_dynamo(config)?.create_missing_tables()?;
        if created.is_empty() {
            println!("all three DynamoDB tables exist");
        } else {
            println!("created {}", created.join(", "));
        }
        Ok(())
    }
    #[cfg(not(feature = "aws"))]
    {
        dynamo_store(config).map(|_| ())
    }
}

fn catalog_athena(cli: &Cli, config: &Config, args: &AthenaArgs) -> Result<()> {
    let lake_uri = cli.lake.clone().unwrap_or_else(|| config.lake.clone());
    let location = match &args.location {
        Some(l) => l.clone(),
        None if lake_uri.starts_with("s3://") => lake_uri.clone(),
        None => bail!("{lake_uri} is a local lake: pass --location s3://bucket/prefix/ naming where its tables are on S3"),
    };
    let runtime = new_runtime()?;
    let lake = lake_at(cli, config, &runtime)?;
    let tables = runtime.block_on(crate::catalog::lake_tables(&lake))?;
    if tables.is_empty() {
        bail!("{}: no tables yet; run `scenes ingest` first", lake.display());
    }
    print!("{}", crate::catalog::athena_ddl(&tables, &location, &args.database)?);
    Ok(())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    init_logging(cli.verbose, cli.quiet);
    let config = Config::load(cli.config.as_deref())?;
    match &cli.command {
        Command::Info { bags } => info(bags, cli.json),
        Command::Ingest(args) => ingest(&cli, &config, args),
        Command::Sync(args) => sync(&cli, &config, args),
        Command::Detect(args) => detect(&cli, &config, args),
        Command::Batch(args) => batch(&cli, &config, args),
        Command::Query(args) => query(&cli, &config, args),
        Command::Split(args) => split(args, cli.json),
        Command::Generate(args) => generate(args, cli.json),
        Command::InitStore => init_store(&config),
        Command::Catalog { target: CatalogTarget::Athena(args) } => catalog_athena(&cli, &config, args),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn info(bags: &[PathBuf], json: bool) -> Result<()> {
    let mut infos = Vec::new();
    for bag in bags {
        let info = crate::info::bag_info(bag)?;
        if !json {
            if bags.len() > 1 {
                println!("== {}", bag.display());
            }
            print!("{}", crate::info::render(&info));
        }
        infos.push(info);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
    }
    Ok(())
}

/// A bag to ingest: a local file, or an object on S3 (read by ranges, never downloaded whole).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BagInput {
    Local(PathBuf),
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    S3(String),
}

/// Opens and ingests one input.
fn ingest_input(input: &BagInput, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, config: &Config, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    match input {
        BagInput::Local(path) => Ok(ingest_bag(path, lake, store, opts, runtime)?),
        BagInput::S3(uri) => open_s3_bag(uri, lake, store, opts, config, runtime),
    }
}

#[cfg(feature = "aws")]
fn open_s3_bag(uri: &str, lake: &Lake, store: &dyn MetaStore, opts: &IngestOptions, config: &Config, runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    let started = std::time::Instant::now();
    let reader = crate::lake::s3::S3Bag::open(uri, &config.s3, runtime.handle())?.into_reader();
    let bag = crate::bag::Bag::open_ranged(reader)?;
    Ok(crate::ingest::ingest_opened(bag, started, lake, store, opts, runtime)?)
}

#[cfg(not(feature = "aws"))]
fn open_s3_bag(uri: &str, _lake: &Lake, _store: &dyn MetaStore, _opts: &IngestOptions, _config: &Config, _runtime: &tokio::runtime::Runtime) -> Result<IngestReport> {
    bail!("{uri}: this build has no S3 support (build with the `aws` feature, the default)")
}

/// `s3://bucket/key.bag` as is; `s3://bucket/prefix/` as every `.bag`/`.mcap` object below it.
#[cfg(feature = "aws")]
fn expand_s3(input: &str, config: &Config, runtime: &tokio::runtime::Runtime) -> Result<Vec<BagInput>> {
    if !input.ends_with('/') {
        return Ok(vec![BagInput::S3(input.to_string())]);
    }
    let found = crate::lake::s3::S3Bag::list(input, &config.s3, runtime.handle())?;
    if found.is_empty() {
        bail!("{input}: no .bag or .mcap objects under this prefix");
    }
    Ok(found.into_iter().map(BagInput::S3).collect())
}

#[cfg(not(feature = "aws"))]
fn expand_s3(input: &str, _config: &Config, _runtime: &tokio::runtime::Runtime) -> Result<Vec<BagInput>> {
    bail!("{input}: this build has no S3 support (build with the `aws` feature, the default)")
}

/// Expands files, directories, globs and S3 URIs into a de-duplicated list of bags.
fn expand_bags(inputs: &[String], config: &Config, runtime: &tokio::runtime::Runtime) -> Result<Vec<BagInput>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("s3://") {
            out.extend(expand_s3(input, config, runtime)?);
            continue;
        }
        if input.contains("://") {
            bail!("{input}: only local paths and s3:// URIs can be ingested; copy the bag to local disk and ingest the copy");
        }
        let path = Path::new(input);
        if path.is_dir() {
            let entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{input}: cannot list directory"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            let has_ext = |p: &PathBuf, ext: &str| p.extension().is_some_and(|x| x == ext);
            // A ROS1 drive folder (*.bag) or a rosbag2 folder (metadata.yaml + *.mcap files).
            let mut found: Vec<PathBuf> = entries.iter().filter(|p| has_ext(p, "bag") || has_ext(p, "mcap")).cloned().collect();
            if found.is_empty() {
                if entries.iter().any(|p| has_ext(p, "db3")) {
                    bail!("{input}: a rosbag2 folder with SQLite (.db3) storage; convert it to MCAP with `ros2 bag convert` first");
                }
                bail!("{input}: directory holds no .bag or .mcap files");
            }
            found.sort();
            out.extend(found.into_iter().map(BagInput::Local));
        } else if path.exists() {
            out.push(BagInput::Local(path.to_path_buf()));
        } else if input.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(input)
                .with_context(|| format!("{input}: bad glob pattern"))?
                .filter_map(|m| m.ok())
                .collect();
            if matches.is_empty() {
                bail!("{input}: no file matches this pattern");
            }
            out.extend(matches.into_iter().map(BagInput::Local));
        } else {
            bail!("{input}: no such file");
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

fn ingest(cli: &Cli, config: &Config, args: &IngestArgs) -> Result<()> {
    let runtime = new_runtime()?;
    let bags = expand_bags(&args.bags, config, &runtime)?;
    let lake = lake_at(cli, config, &runtime)?;
    let store = open_store_while_ingesting(config, &lake, &runtime)?;
    let parquet = ParquetOptions::from_config(&config.ingest)
        .map_err(|e| anyhow::anyhow!("config ingest.parquet_compression: {e}"))?;
    let opts = IngestOptions {
        topics: if args.topics.is_empty() { config.ingest.topics.clone() } else { args.topics.clone() },
        threads: args.threads.unwrap_or(config.ingest.threads),
        parquet,
        flush_bytes: config.ingest.flush_bytes,
        part_file_bytes: config.ingest.part_file_bytes,
        delete_replaced_files: config.ingest.delete_replaced_files,
        progress: !args.no_progress && !cli.quiet && !cli.json && std::io::stderr().is_terminal(),
    };
    let mut reports: Vec<IngestReport> = Vec::new();
    let mut failures = Vec::new();
    for (i, bag) in bags.iter().enumerate() {
        if i > 0 {
            // A store that could not be opened failed the first bag; the others would too.
            store.ready()?;
        }
        match ingest_input(bag, &lake, store.as_ref(), &opts, config, &runtime) {
            Ok(report) => {
                if !cli.json && !cli.quiet {
                    print_report(&report);
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failures.push(format!("{e}"));
            }
        }
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ingested": reports, "failed": failures }))?);
    } else if !cli.quiet {
        println!("lake: {}", lake.display());
    }
    if !failures.is_empty() {
        bail!("{} of {} bags failed", failures.len(), bags.len());
    }
    Ok(())
}

fn print_report(r: &IngestReport) {
    let rate = r.messages_ingested as f64 / r.seconds.max(1e-9);
    let mb_s = r.bytes as f64 / 1e6 / r.seconds.max(1e-9);
    println!(
        "{}: {} messages, {} tables, {} chunks in {:.2}s ({:.0} msg/s, {:.1} MB/s)",
        r.bag_file,
        r.messages_ingested,
        r.tables.len(),
        r.chunks,
        r.seconds,
        rate,
        mb_s
    );
    if let crate::bag::IndexState::Scanned(reason) = &r.index {
        println!("  recovered by scanning: {reason}");
    }
    for p in &r.damage.problems {
        println!("  damage: {p}");
    }
    if let crate::bag::IndexState::Scanned(_) = &r.index {
        if let Some(cut) = &r.damage.cut_chunk {
            println!(
                "  cut chunk at byte {}: {} of {} bytes present; messages in the missing part are unknown",
                cut.pos, cut.present_bytes, cut.declared_bytes
            );
        }
        for t in &r.topics {
            let from_cut = if t.recovered_from_cut_chunk > 0 {
                format!(" ({} from the cut chunk)", t.recovered_from_cut_chunk)
            } else {
                String::new()
            };
            println!("  {}: recovered {}, lost {}{from_cut}", t.topic, t.messages_in_bag, t.messages_lost);
        }
    }
    for t in &r.topics {
        if t.decode_errors > 0 || t.first_error.is_some() {
            println!(
                "  {}: {} of {} messages ingested, {} did not match the definition{}",
                t.topic,
                t.messages_ingested,
                t.messages_in_bag,
                t.decode_errors,
                t.first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default()
            );
        }
        if t.lossy_utf8 > 0 {
            println!("  {}: {} messages had non-UTF-8 strings (raw bytes kept in _raw_message)", t.topic, t.lossy_utf8);
        }
    }
}

fn sync(cli: &Cli, config: &Config, args: &SyncArgs) -> Result<()> {
    let (lake, store, runtime) = open_lake(cli, config)?;
    let mut bags: Vec<String> = store.list_bags()?.into_iter().map(|b| b.bag_file).collect();
    bags.sort();
    bags.dedup();
    if let Some(only) = &args.bag {
        if !bags.contains(only) {
            bail!("bag '{only}' has not been ingested into {}; ingested: {}", lake.display(), bags.join(", "));
        }
        bags = vec![only.clone()];
    }
    if bags.is_empty() {
        bail!("no ingested bags in {}; run `scenes ingest BAG...` first", lake.display());
    }
    let opts = config.sync.options();
    let mut results = Vec::new();
    for bag in &bags {
        let started = std::time::Instant::now();
        let ticks = runtime.block_on(crate::sync::sync_bag(&lake, bag, &opts))?;
        let seconds = started.elapsed().as_secs_f64();
        if !cli.json && !cli.quiet {
            println!("{bag}: {ticks} ticks in {seconds:.2}s");
        }
        results.push(serde_json::json!({ "bag_file": bag, "ticks": ticks, "seconds": seconds }));
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}

fn open_lake(cli: &Cli, config: &Config) -> Result<(Lake, Box<dyn MetaStore>, tokio::runtime::Runtime)> {
    let runtime = new_runtime()?;
    let lake = lake_at(cli, config, &runtime)?;
    let store = open_store(config, &lake)?;
    Ok((lake, store, runtime))
}

/// The async runtime for lake and AWS I/O (two threads: the work itself runs on rayon's).
fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The lake named by --lake or the config: a directory or `s3://bucket/prefix/`.
fn lake_at(cli: &Cli, config: &Config, runtime: &tokio::runtime::Runtime) -> Result<Lake> {
    let lake_uri = cli.lake.clone().unwrap_or_else(|| config.lake.clone());
    Ok(Lake::open_with(&lake_uri, &config.s3, runtime.handle())?)
}

fn detect(cli: &Cli, config: &Config, args: &DetectArgs) -> Result<()> {
    let (lake, store, runtime) = open_lake(cli, config)?;
    let mut bags = store.list_bags()?;
    if let Some(only) = &args.bag {
        bags.retain(|b| &b.bag_file == only);
        if bags.is_empty() {
            bail!("bag '{only}' has not been ingested into {}", lake.display());
        }
    }
    let mut reports = Vec::new();
    for bag in &bags {
        let Some(report) = runtime.block_on(crate::detect::run_detect(&lake, store.as_ref(), bag, &config.detect))? else {
            eprintln!("{}: not synced yet; run `scenes sync` first", bag.bag_file);
            continue;
        };
        let mut value = serde_json::to_value(&report)?;
        if args.report {
            let quality = quality_report(bag, args.ground_truth.as_deref(), &runtime, &lake, config)?;
            value["quality"] = quality.clone();
            if !cli.json {
                println!("{}: {}", bag.bag_file, quality);
            }
        }
        if !cli.json && !cli.quiet {
            print_scenes(&report.bag_file, &report.scenes, Some(report.scenes_other_rule));
        }
        reports.push(value);
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn print_scenes(bag: &str, scenes: &[crate::meta::SceneRecord], other_rule: Option<usize>) {
    match other_rule {
        Some(n) => println!("{bag}: {} scenes ({n} under the other rule)", scenes.len()),
        None => println!("{bag}: {} scenes", scenes.len()),
    }
    for s in scenes {
        println!(
            "  {}  {:.1}s  people {} (max {}){}{}",
            s.scene_id,
            s.scene_length.unwrap_or(f64::NAN),
            s.num_people_in_scene_start,
            s.max_people_in_scene,
            s.ego_speed_max.map(|v| format!("  ego speed {:.1}-{:.1} m/s", s.ego_speed_min.unwrap_or(v), v)).unwrap_or_default(),
            if s.open_at_start || s.open_at_end { "  (open at the bag's edge)" } else { "" }
        );
    }
}

/// Precision/recall of both rules against the bag's ground truth file.
fn quality_report(bag: &crate::meta::BagRecord, dir: Option<&Path>, runtime: &tokio::runtime::Runtime, lake: &Lake, config: &Config) -> Result<serde_json::Value> {
    let beside = Path::new(&bag.bag_file_prefix).parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.map(Path::to_path_buf).unwrap_or(beside).join(format!("{}.ground_truth.json", bag.bag_file));
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: no ground truth for --report", path.display()))?;
    let truth: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let truth: Vec<(i64, i64)> = truth["scenes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| Some((s["start_time_ns"].as_i64()?, s["end_time_ns"].as_i64()?))).collect())
        .unwrap_or_default();
    let (chosen, other) = runtime
        .block_on(crate::detect::detect_bag(lake, &bag.bag_file, &config.detect))?
        .ok_or_else(|| anyhow::anyhow!("{}: not synced", bag.bag_file))?;
    let spans = |v: &[crate::detect::Scene]| -> Vec<(i64, i64)> { v.iter().map(|s| (s.start_time_ns, s.end_time_ns.unwrap_or(i64::MAX))).collect() };
    let (ego, reference) = match config.detect.rule {
        crate::detect::Rule::EgoFootprint => (chosen, other),
        crate::detect::Rule::Reference => (other, chosen),
    };
    Ok(serde_json::json!({
        "ground_truth": path.display().to_string(),
        "ego_footprint": crate::detect::quality(&spans(&ego), &truth),
        "reference": crate::detect::quality(&spans(&reference), &truth),
    }))
}

fn batch(cli: &Cli, config: &Config, args: &BatchArgs) -> Result<()> {
    let (lake, store, runtime) = open_lake(cli, config)?;
    let started = std::time::Instant::now();
    if args.retry_failed {
        let released = store.release_failed()?;
        if !cli.quiet && !cli.json {
            println!("{released} bags of failed batches wait again");
        }
    }
    let batches = runtime.block_on(crate::batch::run_batches(&lake, store.as_ref(), config, args.all))?;
    let failed = batches.iter().filter(|b| b.status != "done").count();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&batches)?);
    } else if !cli.quiet {
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
        bail!("{failed} batches failed");
    }
    Ok(())
}

fn query(cli: &Cli, config: &Config, args: &QueryArgs) -> Result<()> {
    let lake_uri = cli.lake.clone().unwrap_or_else(|| config.lake.clone());
    if !lake_uri.starts_with("s3://") && !Path::new(&lake_uri).join("topics").is_dir() && !Path::new(&lake_uri).join("_scenes").is_dir() {
        bail!("{lake_uri}: no lake here yet; run `scenes ingest BAG...` first or pass --lake");
    }
    let (lake, store, runtime) = open_lake(cli, config)?;
    let ctx = runtime.block_on(crate::query::lake_context(&lake, store.as_ref()))?;
    let Some(sql) = &args.sql else {
        return Ok(crate::query::shell(&runtime, &ctx, &history_file(&lake))?);
    };
    let format = if cli.json && args.format == crate::query::Format::Table { crate::query::Format::Json } else { args.format };
    if format == crate::query::Format::Parquet && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("--format parquet writes binary data; add --output FILE");
    }
    let batches = runtime.block_on(crate::query::run_sql(&ctx, sql))?;
    let bytes = crate::query::render(&batches, format)?;
    match &args.output {
        Some(path) => std::fs::write(path, bytes).with_context(|| format!("{}: cannot write the result", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

/// The query shell's history: inside a local lake, else in the user's home directory.
fn history_file(lake: &Lake) -> PathBuf {
    match lake.local_root() {
        Some(root) => root.join("_scenes/query_history"),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".scenes_query_history"),
    }
}

fn split(args: &SplitArgs, json: bool) -> Result<()> {
    let max_duration_ns = match args.max_duration {
        Some(s) if s.is_finite() && s > 0.0 => Some((s * 1e9) as u64),
        Some(s) => bail!("--max-duration {s}: give a positive number of seconds"),
        None => None,
    };
    let opts = crate::split::SplitOptions {
        max_bytes: args.max_size.as_deref().map(crate::split::parse_size).transpose()?,
        max_duration_ns,
        compression: args.compression.map(Into::into),
        out_dir: args.out_dir.clone(),
    };
    let parts = crate::split::split_bag(&args.bag, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&parts)?);
    } else {
        for p in &parts {
            println!("{}: {} messages, {}", p.path.display(), p.messages, crate::info::human_bytes(p.payload_bytes));
        }
    }
    Ok(())
}

fn generate(args: &GenerateArgs, json: bool) -> Result<()> {
    let spec = crate::generate::DriveSpec {
        duration_s: args.duration_s,
        seed: args.seed,
        compression: args.compression.into(),
        image_bytes: args.image_bytes,
        lidar_points: args.lidar_points,
        start_ns: args.start_unix_s.unwrap_or(1_700_000_000 + args.seed * 3600) * 1_000_000_000,
    };
    let truth = crate::generate::generate_drive(&args.out, &spec)?;
    let gt_path = ground_truth_path(&args.out);
    std::fs::write(&gt_path, serde_json::to_string_pretty(&truth)? + "\n")
        .with_context(|| format!("{}: cannot write ground truth", gt_path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&truth)?);
    } else {
        println!(
            "{}: {} messages, {} person-in-lane scenes; ground truth in {}",
            args.out.display(),
            truth.messages,
            truth.scenes.len(),
            gt_path.display()
        );
    }
    Ok(())
}

/// `drive.bag` → `drive.ground_truth.json`.
pub fn ground_truth_path(bag: &Path) -> PathBuf {
    let stem = crate::lake::bag_name(bag);
    bag.with_file_name(format!("{stem}.ground_truth.json"))
}
