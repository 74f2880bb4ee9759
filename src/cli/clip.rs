//! `scenes clip`: the window of each named scene (or of `--bag --from --to`) cut out of its
//! source bag as a bag or MCAP file, with a URL and a viewer link on request.

use anyhow::Result;
use clap::Args;

use super::split::CompressionArg;
use super::{usage, Context, Outcome};
use crate::clip::{ClipFormat, ClipOptions, ClipTarget};
use crate::meta::{BagRecord, MetaStore};

#[derive(Debug, Args)]
pub struct ClipArgs {
    /// Scene ids (the `scene_id` column of `scenes`), one clip each
    pub scene_ids: Vec<String>,

    /// A window of this bag instead of scenes: its key, name or source (as ingested), or a
    /// bag path or s3:// URI; needs --from and --to
    #[arg(long, requires_all = ["from", "to"])]
    pub bag: Option<String>,

    /// Start of the --bag window: Unix seconds (1700000012.5) or RFC 3339 (2023-11-14T22:13:32Z)
    #[arg(long, requires = "bag")]
    pub from: Option<String>,

    /// End of the --bag window (included), as --from
    #[arg(long, requires = "bag")]
    pub to: Option<String>,

    /// Seconds added before and after each scene [default: clip.pad_s]
    #[arg(long, value_name = "SECONDS")]
    pub pad_s: Option<f64>,

    /// Container of the clips [default: the source's; MCAP for MCAP files and rosbag2]
    #[arg(long, value_enum)]
    pub format: Option<ClipFormat>,

    /// Chunk compression of bag clips
    #[arg(long, value_enum, default_value_t = CompressionArg::Lz4)]
    pub compression: CompressionArg,

    /// Directory or s3://bucket/prefix/ for the clips
    #[arg(long, default_value = "clips")]
    pub out: String,

    /// Print a time-limited HTTPS URL of each clip (clips on S3; lifetime clip.presign_expires_s)
    #[arg(long)]
    pub presign: bool,
}

pub fn run(ctx: &Context, args: &ClipArgs) -> Result<Outcome> {
    if args.scene_ids.is_empty() && args.bag.is_none() {
        usage!("name scene ids (`scenes query \"SELECT scene_id FROM scenes\"`), or a window: --bag B --from T --to T");
    }
    let pad_s = args.pad_s.unwrap_or(ctx.config.clip.pad_s);
    if !pad_s.is_finite() || pad_s < 0.0 {
        usage!("--pad-s {pad_s}: give a number of seconds, 0 or more");
    }
    let (_lake, store, runtime) = ctx.open_lake_and_store()?;
    let bags = store.list_bags()?;
    // Every request becomes a target or one line saying what is missing.
    let mut targets: Vec<std::result::Result<ClipTarget, String>> = Vec::new();
    if !args.scene_ids.is_empty() {
        targets.extend(scene_targets(store.as_ref(), &bags, &args.scene_ids, (pad_s * 1e9) as u64)?);
    }
    if let (Some(bag), Some(from), Some(to)) = (&args.bag, &args.from, &args.to) {
        targets.push(window_target(&bags, bag, from, to));
    }
    let opts = ClipOptions {
        format: args.format,
        compression: args.compression.into(),
        out: args.out.clone(),
        latched_topics: ctx.config.clip.latched_topics.clone(),
        presign: args.presign.then(|| std::time::Duration::from_secs(ctx.config.clip.presign_expires_s)),
        replay_url: ctx.config.detect.replay_url.clone(),
        s3: ctx.config.s3.clone(),
    };
    let total = targets.len();
    let mut failed = 0;
    let mut written = Vec::new();
    for target in targets {
        let result = target.and_then(|t| crate::clip::clip(&t, &opts, &runtime).map_err(|e| format!("{}: {e}", t.name)));
        match result {
            Ok(clip) => {
                if ctx.prints_text() {
                    println!("{}: {} messages ({} latched from before), {} of {} chunks read", clip.location, clip.messages, clip.latched, clip.chunks_read, clip.chunks_total);
                    for link in [&clip.url, &clip.replay_url].into_iter().flatten() {
                        println!("  {link}");
                    }
                }
                written.push(clip);
            }
            Err(line) => {
                eprintln!("error: {line}");
                failed += 1;
            }
        }
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    }
    Ok(if failed == 0 { Outcome::Done } else { Outcome::SomeFailed { failed, total } })
}

/// The clip of each scene id: its bag's source and its window, padded.
pub(super) fn scene_targets(store: &dyn MetaStore, bags: &[BagRecord], ids: &[String], pad_ns: u64) -> Result<Vec<std::result::Result<ClipTarget, String>>> {
    let scenes = store.list_scenes()?;
    Ok(ids
        .iter()
        .map(|id| {
            let scene = scenes.iter().find(|s| &s.scene_id == id).ok_or_else(|| format!("scene {id}: no such scene in the metadata store"))?;
            let bag = bags.iter().find(|b| b.bag_file == scene.bag_file).ok_or_else(|| format!("scene {id}: its bag {} has no record", scene.bag_file))?;
            let source = source_of(bag).ok_or_else(|| format!("scene {id}: its bag {} records no source", bag.bag_file))?;
            let start = seconds_to_ns(scene.start_time);
            let end = scene.end_time.map(seconds_to_ns).or(bag.end_time_ns).unwrap_or(start);
            Ok(ClipTarget { name: id.clone(), source, from_ns: start.saturating_sub(pad_ns), to_ns: end.saturating_add(pad_ns) })
        })
        .collect())
}

/// The clip of `--bag B --from T --to T`.
fn window_target(bags: &[BagRecord], bag: &str, from: &str, to: &str) -> std::result::Result<ClipTarget, String> {
    let (from_ns, to_ns) = (parse_time(from)?, parse_time(to)?);
    if to_ns < from_ns {
        return Err(format!("--from {from} --to {to}: the window ends before it starts"));
    }
    let record = bags.iter().find(|b| b.bag_file == bag || b.name() == bag || b.source_uri.as_deref() == Some(bag) || b.bag_file_prefix == bag);
    let source = match record {
        Some(r) => source_of(r).ok_or_else(|| format!("bag {bag}: its record names no source"))?,
        None => bag.to_string(),
    };
    let stem = record.map_or_else(|| crate::lake::bag_name(std::path::Path::new(bag)), |r| r.name().to_string());
    Ok(ClipTarget { name: format!("{stem}_{}_{}", from_ns / 1_000_000, to_ns / 1_000_000), source, from_ns, to_ns })
}

fn source_of(bag: &BagRecord) -> Option<String> {
    bag.source_uri.clone().or_else(|| (!bag.bag_file_prefix.is_empty()).then(|| bag.bag_file_prefix.clone()))
}

fn seconds_to_ns(s: f64) -> u64 {
    (s * 1e9).round().max(0.0) as u64
}

/// Unix seconds or an RFC 3339 time, as ns since the epoch.
fn parse_time(text: &str) -> std::result::Result<u64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        // Bag times are u64 ns; ROS tools read them as i64 (until the year 2262).
        if seconds.is_finite() && seconds >= 0.0 && seconds * 1e9 <= i64::MAX as f64 {
            return Ok(seconds_to_ns(seconds));
        }
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|ns| u64::try_from(ns).ok())
        .ok_or_else(|| format!("'{text}' is not a time: give Unix seconds (1700000012.5) or RFC 3339 (2023-11-14T22:13:32Z), before the year 2262"))
}
