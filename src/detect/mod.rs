//! `scenes detect`: lane assignment of detected objects on the `synced` timeline and
//! person-in-lane scenes. Which table and which fields hold boxes, classes and lane points is
//! configuration (dotted field paths), so other message types need no code.
//!
//! Both rules of [`crate::detect::lanes`] are evaluated for every object; the configured rule decides
//! the scenes. A scene is a maximal run of ticks with at least one object of the target class
//! in lane: `start` = its first tick, `end` = the first tick back at zero (exclusive).

mod assign;
mod config;
mod frame;
pub mod lanes;
pub mod output;
mod quality;
mod scenarios;
mod scenes;
pub mod udf;

use arrow::array::RecordBatch;
use serde::Serialize;

pub use assign::{assign, count_people, LaneLines, ObjectLane, TickCounts};
pub use config::{default_scenarios, DetectConfig, Rule, Scenario, PERSON_IN_LANE};
pub use scenarios::check as check_scenarios;
pub use frame::{detect_frame, quote_ident, sql_path, Frame};
pub use quality::{quality, Quality};
pub use scenes::{scenes_from_counts, Scene};

use crate::error::Result;
use crate::lake::parquet::ParquetOptions;
use crate::lake::{delta, Lake};
use crate::meta::{BagRecord, MetaStore, SceneRecord};

/// Scenes of one bag: (under the configured rule, under the other rule for comparison).
pub async fn detect_bag(lake: &Lake, bag_file: &str, cfg: &DetectConfig) -> Result<Option<(Vec<Scene>, Vec<Scene>)>> {
    let Some(frame) = detect_frame(lake, bag_file, cfg).await? else {
        return Ok(None);
    };
    let (min_duration, max_gap) = cfg.person_limits();
    let ego = scenes_from_counts(&frame.ticks, &frame.counts.ego_footprint, min_duration, max_gap);
    let reference = scenes_from_counts(&frame.ticks, &frame.counts.reference, min_duration, max_gap);
    Ok(Some(match cfg.rule {
        Rule::EgoFootprint => (ego, reference),
        Rule::Reference => (reference, ego),
    }))
}

/// What `scenes detect` did for one bag.
#[derive(Debug, Clone, Serialize)]
pub struct DetectReport {
    pub bag_file: String,
    pub ticks: usize,
    pub rule: Rule,
    pub scenes: Vec<SceneRecord>,
    /// Scene count under the other rule, for comparison.
    pub scenes_other_rule: usize,
}

fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::EgoFootprint => "ego_footprint",
        Rule::Reference => "reference",
    }
}

/// Runs detect on one synced bag: writes `enriched` and `scenes` and the scene records.
pub async fn run_detect(lake: &Lake, store: &dyn MetaStore, bag: &BagRecord, cfg: &DetectConfig, parquet: &ParquetOptions) -> Result<Option<DetectOutput>> {
    let Some(output) = detect_output(lake, bag, cfg).await? else {
        return Ok(None);
    };
    for (table, batch) in [("enriched", &output.enriched), ("scenes", &output.scenes)] {
        let dir = lake.table(table);
        let parts = crate::lake::parquet::write_partition_part(&dir, &bag.bag_file, batch, parquet).await?;
        let schema = delta::TableSchema::of(batch.schema().fields())?;
        delta::replace_partition(&dir, table, &schema, &bag.bag_file, &parts, true).await?;
    }
    store.replace_scenes(&bag.bag_file, &output.report.scenes)?;
    Ok(Some(output))
}

/// What detect makes of one bag: its report (with the scene records), its rows of the
/// `enriched` and `scenes` tables, and the scenes of each scenario.
pub struct DetectOutput {
    pub report: DetectReport,
    pub enriched: RecordBatch,
    pub scenes: RecordBatch,
    /// Each scenario's scenes, in configuration order.
    pub by_scenario: Vec<(String, Vec<Scene>)>,
    /// Person-in-lane scenes under the lane rule not configured, for comparison.
    pub other_rule: Vec<Scene>,
}

/// Detects the scenes of one synced bag, writing nothing; `None` when it is not synced.
pub async fn detect_output(lake: &Lake, bag: &BagRecord, cfg: &DetectConfig) -> Result<Option<DetectOutput>> {
    let Some(frame) = detect_frame(lake, &bag.bag_file, cfg).await? else {
        return Ok(None);
    };
    let ticks = &frame.ticks;
    let counts = &frame.counts;
    let (people, other) = match cfg.rule {
        Rule::EgoFootprint => (&counts.ego_footprint, &counts.reference),
        Rule::Reference => (&counts.reference, &counts.ego_footprint),
    };
    let enriched = output::enriched_batch(ticks, frame.objects_in_lane.clone(), counts, cfg)?;
    let flags = scenarios::evaluate(lake, &bag.bag_file, &enriched, &cfg.scenarios).await?;
    let mut records = Vec::new();
    let mut by_scenario = Vec::new();
    for (scenario, holds) in cfg.scenarios.iter().zip(flags) {
        let (min_duration, max_gap) = cfg.limits(scenario);
        let as_counts: Vec<u32> = holds.iter().map(|h| u32::from(*h)).collect();
        let mut scenes = scenes_from_counts(ticks, &as_counts, min_duration, max_gap);
        for scene in &mut scenes {
            count_people_in(scene, ticks, people);
        }
        records.extend(scenes.iter().map(|s| scene_record(bag, cfg, &scenario.name, s, ticks, frame.speeds.as_deref())));
        by_scenario.push((scenario.name.clone(), scenes));
    }
    let (min_duration, max_gap) = cfg.person_limits();
    let other_rule = scenes_from_counts(ticks, other, min_duration, max_gap);
    let scenes_batch = output::scenes_batch(&records)?;
    Ok(Some(DetectOutput {
        report: DetectReport {
            bag_file: bag.bag_file.clone(),
            ticks: ticks.len(),
            rule: cfg.rule,
            scenes: records,
            scenes_other_rule: other_rule.len(),
        },
        enriched,
        scenes: scenes_batch,
        by_scenario,
        other_rule,
    }))
}

/// The people in lane at the scene's first tick, and the most at any of its ticks.
fn count_people_in(scene: &mut Scene, ticks: &[i64], people: &[u32]) {
    let inside = |i: &usize| ticks[*i] >= scene.start_time_ns && scene.end_time_ns.is_none_or(|e| ticks[*i] < e);
    let indexes: Vec<usize> = (0..ticks.len()).filter(inside).collect();
    scene.num_people_in_scene_start = indexes.first().and_then(|&i| people.get(i)).copied().unwrap_or(0);
    scene.max_people_in_scene = indexes.iter().filter_map(|&i| people.get(i)).copied().max().unwrap_or(0);
}

/// The record of one scene of `scenario`: id `<bag>_<scenario>_<start s>`, times, people and
/// the ego speed range.
fn scene_record(bag: &BagRecord, cfg: &DetectConfig, scenario: &str, s: &Scene, ticks: &[i64], speeds: Option<&[Option<f64>]>) -> SceneRecord {
    let start = s.start_time_ns as f64 / 1e9;
    let end = s.end_time_ns.map(|e| e as f64 / 1e9);
    let in_scene = |i: &usize| ticks[*i] >= s.start_time_ns && s.end_time_ns.is_none_or(|e| ticks[*i] < e);
    let scene_speeds: Vec<f64> = speeds.map(|v| (0..ticks.len()).filter(in_scene).filter_map(|i| v[i]).collect()).unwrap_or_default();
    SceneRecord {
        bag_file: bag.bag_file.clone(),
        scene_id: format!("{}_{}_{:.1}", bag.bag_file, scenario, start),
        scenario: scenario.to_string(),
        bag_file_prefix: bag.bag_file_prefix.clone(),
        bag_file_bucket: bag.bag_file_bucket.clone(),
        start_time: start,
        end_time: end,
        scene_length: s.end_time_ns.map(|e| (e - s.start_time_ns) as f64 / 1e9),
        num_people_in_scene_start: s.num_people_in_scene_start,
        max_people_in_scene: s.max_people_in_scene,
        topics_analyzed: format!("{},{}", cfg.detections_table, cfg.lanes_table),
        rule: rule_name(cfg.rule).into(),
        open_at_start: s.open_at_start,
        open_at_end: s.open_at_end,
        ego_speed_min: scene_speeds.iter().copied().reduce(f64::min),
        ego_speed_max: scene_speeds.iter().copied().reduce(f64::max),
    }
}
