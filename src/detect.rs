//! `scenes detect`: lane assignment of detected objects on the `synced` timeline and
//! person-in-lane scenes. Which table and which fields hold boxes, classes and lane points is
//! configuration (dotted field paths), so other message types need no code.
//!
//! Both rules of [`crate::lanes`] are evaluated for every object; the configured rule decides
//! the scenes. A scene is a maximal run of ticks with at least one object of the target class
//! in lane: `start` = its first tick, `end` = the first tick back at zero (exclusive).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lake::{delta, Lake};
use crate::lanes::{ego_footprint, ego_footprint_by_roles, reference_rule, BBox, Point};

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
    /// Field of a lane line that says its role; when set, the ego lane is between the lines
    /// whose role is `ego_left_role` and `ego_right_role` instead of those straddling `ego_x_px`.
    pub lane_role_field: Option<String>,
    pub ego_left_role: i64,
    pub ego_right_role: i64,
    pub image_width_px: f64,
    pub target_class: String,
    pub max_point_distance_px: f64,
    pub min_corners_in_lane: u32,
    /// Scenes shorter than this are dropped (0 = keep all).
    pub min_scene_duration_ms: u64,
    /// Scenes separated by a gap of at most this are merged (0 = never).
    pub max_gap_ms: u64,
    /// Synced column and field path of the ego speed (m/s), for speed min/max per scene;
    /// empty table name = none.
    pub speed_table: String,
    pub speed_field: String,
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
            lane_role_field: None,
            ego_left_role: 1,
            ego_right_role: 2,
            image_width_px: 1280.0,
            target_class: "person".into(),
            max_point_distance_px: 1000.0,
            min_corners_in_lane: 1,
            min_scene_duration_ms: 0,
            max_gap_ms: 0,
            speed_table: "vehicle_twist".into(),
            speed_field: "twist.linear.x".into(),
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

/// One detected object with both rules' verdicts.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectLane {
    pub class: String,
    pub confidence: f64,
    pub bbox: BBox,
    /// Ego-footprint rule.
    pub in_ego_lane: bool,
    pub lane_region: Option<String>,
    /// Reference rule.
    pub corners_in_lane: u32,
    pub lanes: Vec<String>,
    pub in_lane_reference: bool,
}

/// Per tick: the objects of the detection message with their lane verdicts, or `None` when the
/// detections or the lanes are missing at that tick.
pub fn assign(batch: &RecordBatch, cfg: &DetectConfig) -> Result<Vec<Option<Vec<ObjectLane>>>> {
    let rows = batch.num_rows();
    let missing = |t: &str| path_error(t, "is not a column of the synced table");
    let det = batch.column_by_name(&cfg.detections_table).ok_or_else(|| missing(&cfg.detections_table))?.as_struct();
    let lanes = batch.column_by_name(&cfg.lanes_table).ok_or_else(|| missing(&cfg.lanes_table))?.as_struct();
    let objects_col = field_at(det, &cfg.objects_field)?;
    let objects = as_list(&objects_col, &cfg.objects_field)?;
    let obj = objects.values().as_struct();
    let class = arrow::compute::cast(&field_at(obj, &cfg.class_field)?, &DataType::Utf8)?;
    let class = class.as_string::<i32>();
    let conf = as_f64(&field_at(obj, &cfg.confidence_field)?, &cfg.confidence_field)?;
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
    let roles = match &cfg.lane_role_field {
        Some(path) => {
            let col = arrow::compute::cast(&field_at(lines.values().as_struct(), path)?, &DataType::Int64).map_err(|_| path_error(path, "is not an integer"))?;
            Some(col.as_primitive::<arrow::datatypes::Int64Type>().clone())
        }
        None => None,
    };
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        // Both messages must be present at the tick (null before their first message).
        if det.is_null(row) || lanes.is_null(row) || objects.is_null(row) || lines.is_null(row) {
            out.push(None);
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
        let mut tick_objects = Vec::new();
        for o in objects.value_offsets()[row] as usize..objects.value_offsets()[row + 1] as usize {
            let bbox = BBox {
                center_x: cx.value(o),
                center_y: cy.value(o),
                width: w.value(o),
                height: h.value(o),
            };
            let first_line = lines.value_offsets()[row] as usize;
            let role_index = |role: i64| {
                let roles = roles.as_ref()?;
                (0..tick_lines.len()).find(|&i| roles.is_valid(first_line + i) && roles.value(first_line + i) == role)
            };
            let foot = match &roles {
                None => ego_footprint(&bbox, &tick_lines, ego_x),
                Some(_) => match (role_index(cfg.ego_left_role), role_index(cfg.ego_right_role)) {
                    (Some(l), Some(r)) => ego_footprint_by_roles(&bbox, &tick_lines, l, r),
                    _ => crate::lanes::FootprintLane { in_ego_lane: false, ..ego_footprint(&bbox, &tick_lines, ego_x) },
                },
            };
            let reference = reference_rule(&bbox, &tick_lines, cfg.max_point_distance_px);
            tick_objects.push(ObjectLane {
                class: if class.is_null(o) { String::new() } else { class.value(o).to_string() },
                confidence: conf.value(o),
                bbox,
                in_ego_lane: foot.in_ego_lane,
                lane_region: foot.region.map(|(l, r)| format!("between_{l}_and_{r}")),
                corners_in_lane: reference.corners_in_lane,
                in_lane_reference: reference.in_lane(cfg.min_corners_in_lane),
                lanes: reference.lanes,
            });
        }
        out.push(Some(tick_objects));
    }
    Ok(out)
}

/// Per tick: the number of target-class objects in lane under each rule.
#[derive(Debug, Clone, Default)]
pub struct TickCounts {
    pub ego_footprint: Vec<u32>,
    pub reference: Vec<u32>,
}

/// Counts target-class objects in lane per tick under both rules.
pub fn count_people(assigned: &[Option<Vec<ObjectLane>>], target_class: &str) -> TickCounts {
    let count = |f: &dyn Fn(&ObjectLane) -> bool| -> Vec<u32> {
        assigned
            .iter()
            .map(|t| t.as_ref().map_or(0, |objs| objs.iter().filter(|o| o.class == target_class && f(o)).count() as u32))
            .collect()
    };
    TickCounts {
        ego_footprint: count(&|o| o.in_ego_lane),
        reference: count(&|o| o.in_lane_reference),
    }
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

/// Scenes of one bag: (under the configured rule, under the other rule for comparison).
pub async fn detect_bag(lake: &Lake, bag_file: &str, cfg: &DetectConfig) -> Result<Option<(Vec<Scene>, Vec<Scene>)>> {
    let Some(frame) = detect_frame(lake, bag_file, cfg).await? else {
        return Ok(None);
    };
    let ego = scenes_from_counts(&frame.ticks, &frame.counts.ego_footprint, cfg.min_scene_duration_ms, cfg.max_gap_ms);
    let reference = scenes_from_counts(&frame.ticks, &frame.counts.reference, cfg.min_scene_duration_ms, cfg.max_gap_ms);
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

/// What `scenes detect` did for one bag.
#[derive(Debug, Clone, Serialize)]
pub struct DetectReport {
    pub bag_file: String,
    pub ticks: usize,
    pub rule: Rule,
    pub scenes: Vec<crate::meta::SceneRecord>,
    /// Scene count under the other rule, for comparison.
    pub scenes_other_rule: usize,
}

fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::EgoFootprint => "ego_footprint",
        Rule::Reference => "reference",
    }
}

/// The detect stage's view of one bag, computed by DataFusion with the [`udf`] functions.
pub struct Frame {
    pub ticks: Vec<i64>,
    pub objects_in_lane: ArrayRef,
    pub counts: TickCounts,
    pub speeds: Option<Vec<Option<f64>>>,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"table"['a']['b']` for the dotted path `a.b` inside the synced column `table`.
fn sql_path(table: &str, path: &str) -> String {
    let mut expr = quote_ident(table);
    for part in path.split('.') {
        expr.push_str(&format!("['{}']", part.replace('\'', "''")));
    }
    expr
}

/// Runs the detect stage's SQL over the synced rows of one bag.
pub async fn detect_frame(lake: &Lake, bag_file: &str, cfg: &DetectConfig) -> Result<Option<Frame>> {
    let Some(table) = crate::query::LakeTable::open(&lake.table("synced")).await? else {
        return Ok(None);
    };
    let has_speed = !cfg.speed_table.is_empty() && table.schema_ref().column_with_name(&cfg.speed_table).is_some();
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("synced", Arc::new(table)).map_err(sql_error)?;
    for f in udf::functions(cfg) {
        ctx.register_udf(f);
    }
    let (speed_inner, speed_outer) = if has_speed {
        (format!(", CAST({} AS DOUBLE) AS speed", sql_path(&cfg.speed_table, &cfg.speed_field)), ", speed".to_string())
    } else {
        (String::new(), String::new())
    };
    let sql = format!(
        "SELECT tick, objects_in_lane, \
                count_in_lane(objects_in_lane, 'ego_footprint') AS ego, \
                count_in_lane(objects_in_lane, 'reference') AS reference{speed_outer} \
         FROM (SELECT tick, lane_assign({det}, {lanes}) AS objects_in_lane{speed_inner} \
               FROM synced WHERE bag_file = '{bag}') \
         ORDER BY tick",
        det = quote_ident(&cfg.detections_table),
        lanes = quote_ident(&cfg.lanes_table),
        bag = bag_file.replace('\'', "''"),
    );
    let batches = ctx.sql(&sql).await.map_err(sql_error)?.collect().await.map_err(sql_error)?;
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let batch = arrow::compute::concat_batches(&first.schema(), &batches)?;
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let ticks = batch.column(0).as_primitive::<TimestampNanosecondType>().values().to_vec();
    let counts_of = |i: usize| -> Vec<u32> {
        let c = batch.column(i).as_primitive::<arrow::datatypes::UInt32Type>();
        (0..c.len()).map(|r| if c.is_null(r) { 0 } else { c.value(r) }).collect()
    };
    let speeds = has_speed.then(|| {
        let c = batch.column(4).as_primitive::<Float64Type>();
        (0..c.len()).map(|r| c.is_valid(r).then(|| c.value(r))).collect()
    });
    Ok(Some(Frame {
        ticks,
        objects_in_lane: batch.column(1).clone(),
        counts: TickCounts {
            ego_footprint: counts_of(2),
            reference: counts_of(3),
        },
        speeds,
    }))
}

fn sql_error(e: datafusion::error::DataFusionError) -> Error {
    Error::Usage(format!("detect SQL: {}", e.to_string().lines().next().unwrap_or("")))
}

/// Runs detect on one synced bag: writes `enriched` and `scenes` and the scene records.
pub async fn run_detect(lake: &Lake, store: &dyn crate::meta::MetaStore, bag: &crate::meta::BagRecord, cfg: &DetectConfig) -> Result<Option<DetectReport>> {
    let Some(frame) = detect_frame(lake, &bag.bag_file, cfg).await? else {
        return Ok(None);
    };
    let ticks = &frame.ticks;
    let counts = &frame.counts;
    let (chosen, other) = match cfg.rule {
        Rule::EgoFootprint => (&counts.ego_footprint, &counts.reference),
        Rule::Reference => (&counts.reference, &counts.ego_footprint),
    };
    let scenes = scenes_from_counts(ticks, chosen, cfg.min_scene_duration_ms, cfg.max_gap_ms);
    let other_scenes = scenes_from_counts(ticks, other, cfg.min_scene_duration_ms, cfg.max_gap_ms);
    let speed = frame.speeds.clone();
    let topics_analyzed = format!("{},{}", cfg.detections_table, cfg.lanes_table);
    let records: Vec<crate::meta::SceneRecord> = scenes
        .iter()
        .map(|s| {
            let start = s.start_time_ns as f64 / 1e9;
            let end = s.end_time_ns.map(|e| e as f64 / 1e9);
            let in_scene = |i: &usize| ticks[*i] >= s.start_time_ns && s.end_time_ns.is_none_or(|e| ticks[*i] < e);
            let scene_speeds: Vec<f64> = speed
                .as_ref()
                .map(|v| (0..ticks.len()).filter(in_scene).filter_map(|i| v[i]).collect())
                .unwrap_or_default();
            crate::meta::SceneRecord {
                bag_file: bag.bag_file.clone(),
                scene_id: format!("{}_PersonInLane_{:.1}", bag.bag_file, start),
                bag_file_prefix: bag.bag_file_prefix.clone(),
                bag_file_bucket: bag.bag_file_bucket.clone(),
                start_time: start,
                end_time: end,
                scene_length: s.end_time_ns.map(|e| (e - s.start_time_ns) as f64 / 1e9),
                num_people_in_scene_start: s.num_people_in_scene_start,
                max_people_in_scene: s.max_people_in_scene,
                topics_analyzed: topics_analyzed.clone(),
                rule: rule_name(cfg.rule).into(),
                open_at_start: s.open_at_start,
                open_at_end: s.open_at_end,
                ego_speed_min: scene_speeds.iter().copied().reduce(f64::min),
                ego_speed_max: scene_speeds.iter().copied().reduce(f64::max),
            }
        })
        .collect();
    let enriched = output::enriched_batch(ticks, frame.objects_in_lane.clone(), counts, cfg)?;
    write_table(lake, "enriched", &bag.bag_file, &enriched).await?;
    let scenes_batch = output::scenes_batch(&records)?;
    write_table(lake, "scenes", &bag.bag_file, &scenes_batch).await?;
    store.replace_scenes(&bag.bag_file, &records)?;
    Ok(Some(DetectReport {
        bag_file: bag.bag_file.clone(),
        ticks: ticks.len(),
        rule: cfg.rule,
        scenes: records,
        scenes_other_rule: other_scenes.len(),
    }))
}

async fn write_table(lake: &Lake, table: &str, bag_file: &str, batch: &RecordBatch) -> Result<()> {
    let dir = lake.table(table);
    let relative = format!(
        "bag_file={}/part-{}.parquet",
        crate::lake::escape_partition_value(bag_file),
        uuid::Uuid::new_v4().simple()
    );
    let parts = if batch.num_rows() > 0 {
        vec![crate::lake::parts::write_part_async(&dir, &relative, batch, &crate::lake::parts::ParquetOptions::default()).await?]
    } else {
        Vec::new()
    };
    let schema = delta::table_schema(batch.schema().fields())?;
    delta::replace_partition(&dir, table, &schema, bag_file, &parts, true).await?;
    Ok(())
}

/// Arrow layouts of the `enriched` and `scenes` tables.
pub mod output {
    use std::sync::Arc;

    use arrow::array::{
        Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, ListArray, ListBuilder, RecordBatch, StringArray,
        StringBuilder, StructArray, TimestampNanosecondArray, UInt32Array, UInt32Builder,
    };
    use arrow::buffer::{OffsetBuffer, ScalarBuffer};
    use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};

    use super::{DetectConfig, ObjectLane, TickCounts};
    use crate::error::Result;
    use crate::meta::SceneRecord;
    use crate::msg::column::UTC;

    fn ts_type() -> DataType {
        DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
    }

    /// `objects_in_lane` per tick: objects in lane under either rule; null when the detections
    /// or lanes were missing at the tick.
    pub fn objects_list(assigned: &[Option<Vec<ObjectLane>>]) -> Result<ListArray> {
        let mut class = StringBuilder::new();
        let mut confidence = Float64Builder::new();
        let (mut cx, mut cy, mut w, mut h) = (Float64Builder::new(), Float64Builder::new(), Float64Builder::new(), Float64Builder::new());
        let mut in_ego = BooleanBuilder::new();
        let mut region = StringBuilder::new();
        let mut corners = UInt32Builder::new();
        let mut lanes = ListBuilder::new(StringBuilder::new());
        let mut in_ref = BooleanBuilder::new();
        let mut offsets = vec![0i32];
        for tick in assigned {
            for o in tick.iter().flatten().filter(|o| o.in_ego_lane || o.in_lane_reference) {
                class.append_value(&o.class);
                confidence.append_value(o.confidence);
                cx.append_value(o.bbox.center_x);
                cy.append_value(o.bbox.center_y);
                w.append_value(o.bbox.width);
                h.append_value(o.bbox.height);
                in_ego.append_value(o.in_ego_lane);
                region.append_option(o.lane_region.as_deref());
                corners.append_value(o.corners_in_lane);
                for l in &o.lanes {
                    lanes.values().append_value(l);
                }
                lanes.append(true);
                in_ref.append_value(o.in_lane_reference);
            }
            let last = *offsets.last().unwrap_or(&0);
            offsets.push(last + tick.iter().flatten().filter(|o| o.in_ego_lane || o.in_lane_reference).count() as i32);
        }
        let children: Vec<ArrayRef> = vec![
            Arc::new(class.finish()),
            Arc::new(confidence.finish()),
            Arc::new(cx.finish()),
            Arc::new(cy.finish()),
            Arc::new(w.finish()),
            Arc::new(h.finish()),
            Arc::new(in_ego.finish()),
            Arc::new(region.finish()),
            Arc::new(corners.finish()),
            Arc::new(lanes.finish()),
            Arc::new(in_ref.finish()),
        ];
        let fields: Fields = children
            .iter()
            .zip(["class", "confidence", "center_x", "center_y", "width", "height", "in_ego_lane", "lane_region", "corners_in_lane", "lanes", "in_lane_reference"])
            .map(|(a, n)| Field::new(n, a.data_type().clone(), true))
            .collect();
        let objects = StructArray::try_new(fields.clone(), children, None)?;
        let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
        let present: Vec<bool> = assigned.iter().map(Option::is_some).collect();
        Ok(ListArray::try_new(item, OffsetBuffer::new(ScalarBuffer::from(offsets)), Arc::new(objects), Some(present.into()))?)
    }

    /// The list type of `objects_in_lane`.
    pub fn objects_list_type() -> DataType {
        objects_list(&[]).map(|l| arrow::array::Array::data_type(&l).clone()).unwrap_or(DataType::Null)
    }

    pub fn enriched_batch(ticks: &[i64], list: ArrayRef, counts: &TickCounts, cfg: &DetectConfig) -> Result<RecordBatch> {
        let present: Vec<bool> = (0..list.len()).map(|i| list.is_valid(i)).collect();
        let count_col = |v: &[u32]| -> ArrayRef {
            Arc::new(UInt32Array::from_iter(v.iter().zip(&present).map(|(c, p)| p.then_some(*c))))
        };
        let chosen = match cfg.rule {
            super::Rule::EgoFootprint => &counts.ego_footprint,
            super::Rule::Reference => &counts.reference,
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(ticks.to_vec()).with_timezone(UTC)),
            list,
            count_col(chosen),
            count_col(&counts.ego_footprint),
            count_col(&counts.reference),
        ];
        let schema = Schema::new(vec![
            Field::new("tick", ts_type(), true),
            Field::new("objects_in_lane", columns[1].data_type().clone(), true),
            Field::new("num_people_in_lane", DataType::UInt32, true),
            Field::new("num_people_in_lane_ego_footprint", DataType::UInt32, true),
            Field::new("num_people_in_lane_reference", DataType::UInt32, true),
        ]);
        Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
    }

    pub fn scenes_batch(records: &[SceneRecord]) -> Result<RecordBatch> {
        let strings = |f: &dyn Fn(&SceneRecord) -> Option<String>| -> ArrayRef { Arc::new(StringArray::from_iter(records.iter().map(f))) };
        let floats = |f: &dyn Fn(&SceneRecord) -> Option<f64>| -> ArrayRef { Arc::new(Float64Array::from_iter(records.iter().map(f))) };
        let times = |f: &dyn Fn(&SceneRecord) -> Option<f64>| -> ArrayRef {
            Arc::new(TimestampNanosecondArray::from_iter(records.iter().map(|r| f(r).map(|s| (s * 1e9).round() as i64))).with_timezone(UTC))
        };
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("scene_id", strings(&|r| Some(r.scene_id.clone()))),
            ("bag_file_prefix", strings(&|r| Some(r.bag_file_prefix.clone()))),
            ("bag_file_bucket", strings(&|r| r.bag_file_bucket.clone())),
            ("start_time", floats(&|r| Some(r.start_time))),
            ("end_time", floats(&|r| r.end_time)),
            ("start_ts", times(&|r| Some(r.start_time))),
            ("end_ts", times(&|r| r.end_time)),
            ("scene_length", floats(&|r| r.scene_length)),
            ("num_people_in_scene_start", Arc::new(UInt32Array::from_iter_values(records.iter().map(|r| r.num_people_in_scene_start)))),
            ("max_people_in_scene", Arc::new(UInt32Array::from_iter_values(records.iter().map(|r| r.max_people_in_scene)))),
            ("topics_analyzed", strings(&|r| Some(r.topics_analyzed.clone()))),
            ("rule", strings(&|r| Some(r.rule.clone()))),
            ("open_at_start", Arc::new(BooleanArray::from_iter(records.iter().map(|r| Some(r.open_at_start))))),
            ("open_at_end", Arc::new(BooleanArray::from_iter(records.iter().map(|r| Some(r.open_at_end))))),
            ("ego_speed_min", floats(&|r| r.ego_speed_min)),
            ("ego_speed_max", floats(&|r| r.ego_speed_max)),
        ];
        let schema = Schema::new(columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>());
        Ok(RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect())?)
    }
}

/// Precision and recall of found scenes against ground-truth scenes (start/end ns). A found
/// scene is correct when it overlaps a true one; a true scene is found when any found scene
/// overlaps it. `exact` counts found scenes equal to a true one to the tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    pub found: usize,
    pub truth: usize,
    pub exact: usize,
    pub precision: f64,
    pub recall: f64,
}

pub fn quality(found: &[(i64, i64)], truth: &[(i64, i64)]) -> Quality {
    let overlaps = |a: &(i64, i64), b: &(i64, i64)| a.0 < b.1 && b.0 < a.1;
    let correct = found.iter().filter(|f| truth.iter().any(|t| overlaps(f, t))).count();
    let recalled = truth.iter().filter(|t| found.iter().any(|f| overlaps(f, t))).count();
    let exact = found.iter().filter(|f| truth.contains(f)).count();
    let ratio = |n: usize, d: usize| if d == 0 { 1.0 } else { n as f64 / d as f64 };
    Quality {
        found: found.len(),
        truth: truth.len(),
        exact,
        precision: ratio(correct, found.len()),
        recall: ratio(recalled, truth.len()),
    }
}

/// The detect stage's DataFusion functions:
/// - `lane_assign(detections, lanes)`: the objects of a detections message that are in lane
///   under either rule, with both rules' verdicts (`objects_in_lane`);
/// - `count_in_lane(objects_in_lane, rule)`: target-class objects in lane under `rule`.
pub mod udf {
    use std::hash::{Hash, Hasher};
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::error::DataFusionError;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

    use super::{assign, output, DetectConfig};

    fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
        DataFusionError::External(Box::new(e))
    }

    #[derive(Debug)]
    pub struct LaneAssign {
        config: DetectConfig,
        key: String,
        signature: Signature,
    }

    impl PartialEq for LaneAssign {
        fn eq(&self, other: &Self) -> bool {
            self.key == other.key
        }
    }
    impl Eq for LaneAssign {}
    impl Hash for LaneAssign {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.key.hash(state)
        }
    }

    impl ScalarUDFImpl for LaneAssign {
        fn name(&self) -> &str {
            "lane_assign"
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
            Ok(output::objects_list_type())
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let [det, lanes] = arrays.as_slice() else {
                return Err(DataFusionError::Plan("lane_assign takes (detections, lanes)".into()));
            };
            let schema = Schema::new(vec![
                Field::new(&self.config.detections_table, det.data_type().clone(), true),
                Field::new(&self.config.lanes_table, lanes.data_type().clone(), true),
            ]);
            let batch = RecordBatch::try_new(Arc::new(schema), vec![det.clone(), lanes.clone()])?;
            let assigned = assign(&batch, &self.config).map_err(external)?;
            Ok(ColumnarValue::Array(Arc::new(output::objects_list(&assigned).map_err(external)?)))
        }
    }

    #[derive(Debug)]
    pub struct CountInLane {
        target_class: String,
        signature: Signature,
    }

    impl PartialEq for CountInLane {
        fn eq(&self, other: &Self) -> bool {
            self.target_class == other.target_class
        }
    }
    impl Eq for CountInLane {}
    impl Hash for CountInLane {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.target_class.hash(state)
        }
    }

    impl ScalarUDFImpl for CountInLane {
        fn name(&self) -> &str {
            "count_in_lane"
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
            Ok(DataType::UInt32)
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let [objects, rule] = arrays.as_slice() else {
                return Err(DataFusionError::Plan("count_in_lane takes (objects_in_lane, rule)".into()));
            };
            let rule = arrow::compute::cast(rule, &DataType::Utf8)?;
            let rule = rule.as_string::<i32>();
            let list = objects
                .as_list_opt::<i32>()
                .ok_or_else(|| DataFusionError::Plan("count_in_lane: first argument is not objects_in_lane".into()))?;
            let items = list.values().as_struct();
            let column = |name: &str| {
                items
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| DataFusionError::Plan(format!("count_in_lane: objects have no field {name}")))
            };
            let class = column("class")?;
            let class = class.as_string::<i32>();
            let ego = column("in_ego_lane")?;
            let ego = ego.as_boolean();
            let reference = column("in_lane_reference")?;
            let reference = reference.as_boolean();
            let mut out = Vec::with_capacity(list.len());
            for row in 0..list.len() {
                if list.is_null(row) || rule.is_null(row) {
                    out.push(None);
                    continue;
                }
                let flags = match rule.value(row) {
                    "ego_footprint" => ego,
                    "reference" => reference,
                    other => return Err(DataFusionError::Plan(format!("count_in_lane: unknown rule '{other}'"))),
                };
                let (a, b) = (list.value_offsets()[row] as usize, list.value_offsets()[row + 1] as usize);
                let n = (a..b).filter(|&i| class.value(i) == self.target_class && flags.value(i)).count();
                out.push(Some(n as u32));
            }
            Ok(ColumnarValue::Array(Arc::new(UInt32Array::from(out))))
        }
    }

    /// The detect functions for `config`.
    pub fn functions(config: &DetectConfig) -> Vec<ScalarUDF> {
        let key = serde_json::to_string(config).unwrap_or_default();
        vec![
            ScalarUDF::from(LaneAssign {
                config: config.clone(),
                key,
                signature: Signature::any(2, Volatility::Immutable),
            }),
            ScalarUDF::from(CountInLane {
                target_class: config.target_class.clone(),
                signature: Signature::any(2, Volatility::Immutable),
            }),
        ]
    }
}
