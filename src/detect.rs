//! `scenes detect`: lane assignment of detected objects on the `synced` timeline and
//! person-in-lane scenes. Which table and which fields hold boxes, classes and lane points is
//! configuration (dotted field paths), so other message types need no code.
//!
//! Both rules of [`crate::lanes`] are evaluated for every object; the configured rule decides
//! the scenes. A scene is a maximal run of ticks with at least one object of the target class
//! in lane: `start` = its first tick, `end` = the first tick back at zero (exclusive).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lake::{delta, Lake};
use crate::lanes::{ego_footprint, reference_rule, BBox, Point};

/// Lane assignment rule that decides the scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    EgoFootprint,
    Reference,
}

/// Where detections and lanes are, and the thresholds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub rule: Rule,
    /// Synced column (topic table) holding the detections message.
    pub detections_table: String,
    /// List field of the detections message holding the objects.
    pub objects_field: String,
    /// Paths inside one object.
    pub class_field: String,
    pub confidence_field: String,
    pub center_x_field: String,
    pub center_y_field: String,
    pub width_field: String,
    pub height_field: String,
    /// Synced column holding the lanes message, its list of lane lines, the list of points of a
    /// line, and the point coordinates.
    pub lanes_table: String,
    pub lanes_field: String,
    pub points_field: String,
    pub point_x_field: String,
    pub point_y_field: String,
    /// Image column of the ego vehicle's centre (default: half of `image_width_px`).
    pub ego_x_px: Option<f64>,
    pub image_width_px: f64,
    pub target_class: String,
    pub max_point_distance_px: f64,
    pub min_corners_in_lane: u32,
    /// Scenes shorter than this are dropped (0 = keep all).
    pub min_scene_duration_ms: u64,
    /// Scenes separated by a gap of at most this are merged (0 = never).
    pub max_gap_ms: u64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            rule: Rule::EgoFootprint,
            detections_table: "perception_rgb_front_detections".into(),
            objects_field: "detections".into(),
            class_field: "class_label".into(),
            confidence_field: "confidence".into(),
            center_x_field: "bbox.center_x".into(),
            center_y_field: "bbox.center_y".into(),
            width_field: "bbox.width".into(),
            height_field: "bbox.height".into(),
            lanes_table: "perception_rgb_front_lane_points".into(),
            lanes_field: "lanes".into(),
            points_field: "points".into(),
            point_x_field: "x".into(),
            point_y_field: "y".into(),
            ego_x_px: None,
            image_width_px: 1280.0,
            target_class: "person".into(),
            max_point_distance_px: 1000.0,
            min_corners_in_lane: 1,
            min_scene_duration_ms: 0,
            max_gap_ms: 0,
        }
    }
}

/// One detected scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scene {
    pub start_time_ns: i64,
    /// First tick back at zero; `None` when the bag ends during the scene.
    pub end_time_ns: Option<i64>,
    pub num_people_in_scene_start: u32,
    pub max_people_in_scene: u32,
    /// The scene was already under way at the bag's first tick.
    pub open_at_start: bool,
    pub open_at_end: bool,
}

/// Child array at a dotted path inside a struct array (`bbox.center_x`).
fn field_at(array: &StructArray, path: &str) -> Result<ArrayRef> {
    let mut current: ArrayRef = Arc::new(array.clone());
    for part in path.split('.') {
        let s = current.as_struct_opt().ok_or_else(|| path_error(path, "is not inside a struct"))?;
        current = s
            .column_by_name(part)
            .cloned()
            .ok_or_else(|| path_error(path, &format!("has no field '{part}'")))?;
    }
    Ok(current)
}

fn path_error(path: &str, problem: &str) -> Error {
    Error::Config {
        key: format!("detect field path '{path}'"),
        problem: problem.to_string(),
    }
}

fn as_f64(array: &ArrayRef, path: &str) -> Result<Float64Array> {
    let cast = arrow::compute::cast(array, &DataType::Float64).map_err(|_| path_error(path, "is not numeric"))?;
    Ok(cast.as_primitive::<Float64Type>().clone())
}

fn as_list<'a>(array: &'a ArrayRef, path: &str) -> Result<&'a ListArray> {
    array.as_list_opt::<i32>().ok_or_else(|| path_error(path, "is not a list"))
}

/// Per tick: the number of target-class objects in lane under each rule.
#[derive(Debug, Clone, Default)]
pub struct TickCounts {
    pub ego_footprint: Vec<u32>,
    pub reference: Vec<u32>,
}

/// Evaluates both rules on every tick of a synced batch.
pub fn count_people(batch: &RecordBatch, cfg: &DetectConfig) -> Result<TickCounts> {
    let rows = batch.num_rows();
    let mut counts = TickCounts {
        ego_footprint: vec![0; rows],
        reference: vec![0; rows],
    };
    let missing = |t: &str| path_error(t, "is not a column of the synced table");
    let det = batch.column_by_name(&cfg.detections_table).ok_or_else(|| missing(&cfg.detections_table))?.as_struct();
    let lanes = batch.column_by_name(&cfg.lanes_table).ok_or_else(|| missing(&cfg.lanes_table))?.as_struct();
    let objects_col = field_at(det, &cfg.objects_field)?;
    let objects = as_list(&objects_col, &cfg.objects_field)?;
    let obj = objects.values().as_struct();
    let class = arrow::compute::cast(&field_at(obj, &cfg.class_field)?, &DataType::Utf8)?;
    let class = class.as_string::<i32>();
    let cx = as_f64(&field_at(obj, &cfg.center_x_field)?, &cfg.center_x_field)?;
    let cy = as_f64(&field_at(obj, &cfg.center_y_field)?, &cfg.center_y_field)?;
    let w = as_f64(&field_at(obj, &cfg.width_field)?, &cfg.width_field)?;
    let h = as_f64(&field_at(obj, &cfg.height_field)?, &cfg.height_field)?;
    let lines_col = field_at(lanes, &cfg.lanes_field)?;
    let lines = as_list(&lines_col, &cfg.lanes_field)?;
    let points_col = field_at(lines.values().as_struct(), &cfg.points_field)?;
    let points = as_list(&points_col, &cfg.points_field)?;
    let px = as_f64(&field_at(points.values().as_struct(), &cfg.point_x_field)?, &cfg.point_x_field)?;
    let py = as_f64(&field_at(points.values().as_struct(), &cfg.point_y_field)?, &cfg.point_y_field)?;
    let ego_x = cfg.ego_x_px.unwrap_or(cfg.image_width_px / 2.0);
    for row in 0..rows {
        // Both messages must be present at the tick (null before their first message).
        if det.is_null(row) || lanes.is_null(row) || objects.is_null(row) || lines.is_null(row) {
            continue;
        }
        let tick_lines: Vec<Vec<Point>> = (lines.value_offsets()[row] as usize..lines.value_offsets()[row + 1] as usize)
            .map(|l| {
                if points.is_null(l) {
                    return Vec::new();
                }
                let (a, b) = (points.value_offsets()[l] as usize, points.value_offsets()[l + 1] as usize);
                (a..b).map(|p| Point { x: px.value(p), y: py.value(p) }).collect()
            })
            .collect();
        for o in objects.value_offsets()[row] as usize..objects.value_offsets()[row + 1] as usize {
            if class.is_null(o) || class.value(o) != cfg.target_class {
                continue;
            }
            let bbox = BBox {
                center_x: cx.value(o),
                center_y: cy.value(o),
                width: w.value(o),
                height: h.value(o),
            };
            if ego_footprint(&bbox, &tick_lines, ego_x).in_ego_lane {
                counts.ego_footprint[row] += 1;
            }
            if reference_rule(&bbox, &tick_lines, cfg.max_point_distance_px).in_lane(cfg.min_corners_in_lane) {
                counts.reference[row] += 1;
            }
        }
    }
    Ok(counts)
}

/// Maximal runs of ticks with a positive count, then gap merging and the minimum duration.
pub fn scenes_from_counts(ticks: &[i64], counts: &[u32], min_duration_ms: u64, max_gap_ms: u64) -> Vec<Scene> {
    let mut scenes: Vec<Scene> = Vec::new();
    let mut i = 0;
    while i < counts.len() {
        if counts[i] == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut max = 0;
        while i < counts.len() && counts[i] > 0 {
            max = max.max(counts[i]);
            i += 1;
        }
        scenes.push(Scene {
            start_time_ns: ticks[start],
            end_time_ns: ticks.get(i).copied(),
            num_people_in_scene_start: counts[start],
            max_people_in_scene: max,
            open_at_start: start == 0,
            open_at_end: i == counts.len(),
        });
    }
    let max_gap = max_gap_ms as i64 * 1_000_000;
    let mut merged: Vec<Scene> = Vec::new();
    for s in scenes {
        match merged.last_mut() {
            Some(prev) if max_gap > 0 && prev.end_time_ns.is_some_and(|e| s.start_time_ns - e <= max_gap) => {
                prev.end_time_ns = s.end_time_ns;
                prev.max_people_in_scene = prev.max_people_in_scene.max(s.max_people_in_scene);
                prev.open_at_end = s.open_at_end;
            }
            _ => merged.push(s),
        }
    }
    let min = min_duration_ms as i64 * 1_000_000;
    merged.retain(|s| s.end_time_ns.is_none_or(|e| e - s.start_time_ns >= min));
    merged
}

/// Reads the synced rows of one bag (in tick order).
pub async fn read_synced(lake: &Lake, bag_file: &str) -> Result<Option<RecordBatch>> {
    let mut files: Vec<PathBuf> = delta::active_files(&lake.table_dir("synced"))
        .await?
        .into_iter()
        .filter(|(_, bag)| bag.as_deref() == Some(bag_file))
        .map(|(p, _)| p)
        .collect();
    files.sort();
    let mut batches = Vec::new();
    for path in &files {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
            batches.push(batch?);
        }
    }
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    Ok(Some(arrow::compute::concat_batches(&first.schema(), &batches)?))
}

/// Scenes of one bag: (under the configured rule, under the other rule for comparison).
pub async fn detect_bag(lake: &Lake, bag_file: &str, cfg: &DetectConfig) -> Result<Option<(Vec<Scene>, Vec<Scene>)>> {
    let Some(batch) = read_synced(lake, bag_file).await? else {
        return Ok(None);
    };
    let ticks: Vec<i64> = batch
        .column_by_name("tick")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| Error::Lake { location: "synced".into(), problem: "no tick column".into() })?
        .values()
        .to_vec();
    let counts = count_people(&batch, cfg)?;
    let ego = scenes_from_counts(&ticks, &counts.ego_footprint, cfg.min_scene_duration_ms, cfg.max_gap_ms);
    let reference = scenes_from_counts(&ticks, &counts.reference, cfg.min_scene_duration_ms, cfg.max_gap_ms);
    Ok(Some(match cfg.rule {
        Rule::EgoFootprint => (ego, reference),
        Rule::Reference => (reference, ego),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_runs_with_exclusive_ends_and_open_flags() {
        let t: Vec<i64> = (0..8).map(|k| k * 100).collect();
        let s = scenes_from_counts(&t, &[1, 0, 2, 3, 0, 0, 1, 1], 0, 0);
        assert_eq!(s.len(), 3);
        assert!(s[0].open_at_start && s[0].end_time_ns == Some(100));
        assert_eq!((s[1].start_time_ns, s[1].end_time_ns, s[1].num_people_in_scene_start, s[1].max_people_in_scene), (200, Some(400), 2, 3));
        assert!(s[2].open_at_end && s[2].end_time_ns.is_none());
    }

    #[test]
    fn gaps_merge_and_short_scenes_drop() {
        let t: Vec<i64> = (0..10).map(|k| k * 100_000_000).collect();
        let c = [0, 1, 0, 1, 1, 0, 0, 0, 1, 0];
        let merged = scenes_from_counts(&t, &c, 0, 100);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].start_time_ns, merged[0].end_time_ns), (100_000_000, Some(500_000_000)));
        let long_only = scenes_from_counts(&t, &c, 200, 0);
        assert_eq!(long_only.len(), 1);
        assert_eq!(long_only[0].start_time_ns, 300_000_000);
    }
}
