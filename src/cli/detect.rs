//! `scenes detect`: lane assignment and person-in-lane scenes of synced bags, with an optional
//! precision/recall report against ground truth.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;

use super::output::print_scenes;
use super::{select_bags, Context, Outcome};
use crate::config::Config;
use crate::detect::{quality, Rule, Scene};
use crate::lake::Lake;
use crate::meta::BagRecord;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Only this bag: its key (bag_file), its name (every bag of that name) or its source path
    /// or s3:// URI; default: every synced bag
    #[arg(long)]
    pub bag: Option<String>,

    /// Print precision and recall against ground-truth files
    #[arg(long)]
    pub report: bool,

    /// Directory of `<bag name>.ground_truth.json` files [default: beside each bag]
    #[arg(long, value_name = "DIR")]
    pub ground_truth: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: &DetectArgs) -> Result<Outcome> {
    let (lake, store, runtime) = ctx.open_lake_and_store()?;
    let bags = select_bags(store.list_bags()?, args.bag.as_deref(), &lake)?;
    let parquet = ctx.config.parquet();
    let mut reports = Vec::new();
    for bag in &bags {
        let detected = runtime.block_on(crate::detect::run_detect(&lake, store.as_ref(), bag, &ctx.config.detect, &parquet))?;
        let Some(report) = detected else {
            eprintln!("{}: not synced yet; run `scenes sync` first", bag.bag_file);
            continue;
        };
        let mut value = serde_json::to_value(&report)?;
        if args.report {
            let quality = quality_report(bag, args.ground_truth.as_deref(), &runtime, &lake, &ctx.config)?;
            value["quality"] = quality.clone();
            if !ctx.json {
                println!("{}: {}", bag.bag_file, quality);
            }
        }
        if ctx.prints_text() {
            print_scenes(&report.bag_file, &report.scenes, Some(report.scenes_other_rule));
        }
        reports.push(value);
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(Outcome::Done)
}

/// Precision/recall of both rules against the bag's ground truth file.
fn quality_report(bag: &BagRecord, dir: Option<&Path>, runtime: &tokio::runtime::Runtime, lake: &Lake, config: &Config) -> Result<serde_json::Value> {
    let beside = Path::new(&bag.bag_file_prefix).parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.map(Path::to_path_buf).unwrap_or(beside).join(format!("{}.ground_truth.json", bag.name()));
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: no ground truth for --report", path.display()))?;
    let truth: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let truth: Vec<(i64, i64)> = truth["scenes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| Some((s["start_time_ns"].as_i64()?, s["end_time_ns"].as_i64()?))).collect())
        .unwrap_or_default();
    let (chosen, other) = runtime
        .block_on(crate::detect::detect_bag(lake, &bag.bag_file, &config.detect))?
        .ok_or_else(|| anyhow::anyhow!("{}: not synced", bag.bag_file))?;
    let spans = |v: &[Scene]| -> Vec<(i64, i64)> { v.iter().map(|s| (s.start_time_ns, s.end_time_ns.unwrap_or(i64::MAX))).collect() };
    let (ego, reference) = match config.detect.rule {
        Rule::EgoFootprint => (chosen, other),
        Rule::Reference => (other, chosen),
    };
    Ok(serde_json::json!({
        "ground_truth": path.display().to_string(),
        "ego_footprint": quality(&spans(&ego), &truth),
        "reference": quality(&spans(&reference), &truth),
    }))
}
