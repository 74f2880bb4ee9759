//! `scenes detect`: lane assignment and person-in-lane scenes of synced bags, with an optional
//! precision/recall report against ground truth.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;

use super::output::print_scenes;
use super::{select_bags, Context, Outcome};
use crate::config::Config;
use crate::detect::{quality, DetectOutput, Rule, Scene, PERSON_IN_LANE};
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
    // Every scenario rule plans before any table changes.
    runtime.block_on(crate::detect::check_scenarios(&lake, &ctx.config.detect))?;
    let parquet = ctx.config.parquet();
    let mut reports = Vec::new();
    for bag in &bags {
        let detected = runtime.block_on(crate::detect::run_detect(&lake, store.as_ref(), bag, &ctx.config.detect, &parquet))?;
        let Some(output) = detected else {
            eprintln!("{}: not synced yet; run `scenes sync` first", bag.bag_file);
            continue;
        };
        let mut value = serde_json::to_value(&output.report)?;
        if args.report {
            let quality = quality_report(bag, args.ground_truth.as_deref(), &output, &ctx.config)?;
            value["quality"] = quality.clone();
            if !ctx.json {
                println!("{}: {}", bag.bag_file, quality);
            }
        }
        if ctx.prints_text() {
            print_scenes(&output.report.bag_file, &output.report.scenes, Some(output.report.scenes_other_rule));
        }
        reports.push(value);
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(Outcome::Done)
}

/// Precision/recall against the bag's ground truth file: the person-in-lane scenes under both
/// lane rules (`scenes`), and every other scenario against its entry of `events` (a scenario
/// the file does not list is not scored).
fn quality_report(bag: &BagRecord, dir: Option<&Path>, output: &DetectOutput, config: &Config) -> Result<serde_json::Value> {
    let beside = Path::new(&bag.bag_file_prefix).parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.map(Path::to_path_buf).unwrap_or(beside).join(format!("{}.ground_truth.json", bag.name()));
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: no ground truth for --report", path.display()))?;
    let truth: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let spans_of = |scenes: &serde_json::Value| -> Vec<(i64, i64)> {
        scenes
            .as_array()
            .map(|a| a.iter().filter_map(|s| Some((s["start_time_ns"].as_i64()?, s["end_time_ns"].as_i64()?))).collect())
            .unwrap_or_default()
    };
    let spans = |v: &[Scene]| -> Vec<(i64, i64)> { v.iter().map(|s| (s.start_time_ns, s.end_time_ns.unwrap_or(i64::MAX))).collect() };
    let person_truth = spans_of(&truth["scenes"]);
    let mut report = serde_json::json!({ "ground_truth": path.display().to_string() });
    let mut scenarios = serde_json::Map::new();
    for (name, scenes) in &output.by_scenario {
        if name == PERSON_IN_LANE {
            let (ego, reference) = match config.detect.rule {
                Rule::EgoFootprint => (scenes, &output.other_rule),
                Rule::Reference => (&output.other_rule, scenes),
            };
            report["ego_footprint"] = serde_json::to_value(quality(&spans(ego), &person_truth))?;
            report["reference"] = serde_json::to_value(quality(&spans(reference), &person_truth))?;
        } else if let Some(events) = truth["events"].get(name) {
            scenarios.insert(name.clone(), serde_json::to_value(quality(&spans(scenes), &spans_of(events)))?);
        }
    }
    report["scenarios"] = serde_json::Value::Object(scenarios);
    Ok(report)
}
