//! `scenes generate`: a synthetic drive and its person-in-lane ground truth.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;

use super::split::CompressionArg;
use super::{Context, Outcome};

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

    /// Fraction (0..1) of the in-lane persons' detections the detector misses, as real
    /// detectors flicker; the ground truth keeps the real episodes
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub missed_detections: f64,

    /// Fraction (0..1) of lane messages that lack the right line of the ego lane
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub lane_dropouts: f64,

    /// No stops (hard braking, standing, pulling away) or turns; by default the drive has one
    /// every 45-90 s, listed by scenario under `events` in the ground truth
    #[arg(long)]
    pub no_maneuvers: bool,

    /// Add a CompressedImage topic at 10 Hz whose frames are real JPEGs of the road, lane lines
    /// and detected objects (for reports and viewers; --image-bytes gives noise of a set size)
    #[arg(long)]
    pub camera_jpeg: bool,
}

fn fraction(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{text}' is not a fraction between 0 and 1")),
    }
}

pub fn run(ctx: &Context, args: &GenerateArgs) -> Result<Outcome> {
    let spec = crate::generate::DriveSpec {
        duration_s: args.duration_s,
        seed: args.seed,
        compression: args.compression.into(),
        image_bytes: args.image_bytes,
        lidar_points: args.lidar_points,
        start_ns: args.start_unix_s.unwrap_or(1_700_000_000 + args.seed * 3600) * 1_000_000_000,
        missed_detections: args.missed_detections,
        lane_dropouts: args.lane_dropouts,
        maneuvers: !args.no_maneuvers,
        camera_jpeg: args.camera_jpeg,
    };
    let truth = crate::generate::generate_drive(&args.out, &spec)?;
    let gt_path = ground_truth_path(&args.out);
    std::fs::write(&gt_path, serde_json::to_string_pretty(&truth)? + "\n").with_context(|| format!("{}: cannot write ground truth", gt_path.display()))?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&truth)?);
    } else {
        let events: Vec<String> = truth.events.iter().map(|(name, e)| format!("{} {name}", e.len())).collect();
        println!(
            "{}: {} messages, {} person-in-lane scenes, {}; ground truth in {}",
            args.out.display(),
            truth.messages,
            truth.scenes.len(),
            events.join(", "),
            gt_path.display()
        );
    }
    Ok(Outcome::Done)
}

/// `drive.bag` → `drive.ground_truth.json`.
fn ground_truth_path(bag: &Path) -> PathBuf {
    let stem = crate::lake::bag_name(bag);
    bag.with_file_name(format!("{stem}.ground_truth.json"))
}
