//! Lane assignment per tick: each detected object of a detections message is placed in or out
//! of the ego lane under both rules of [`super::lanes`], and target-class objects are counted.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Float64Type};

use super::config::DetectConfig;
use super::lanes::{ego_footprint, ego_footprint_by_roles, reference_rule, BBox, Point};
use crate::error::{Error, Result};

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

fn path_error(path: &str, reason: &str) -> Error {
    Error::FieldPath { path: path.to_string(), reason: reason.to_string() }
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

/// The lane lines of a lanes column (the synced struct of the lanes topic), as image points.
pub struct LaneLines {
    lines: ListArray,
    points: ListArray,
    px: Float64Array,
    py: Float64Array,
}

impl LaneLines {
    /// The lines of `lanes` (a synced lanes column) under the configured field paths.
    pub fn new(lanes: &StructArray, cfg: &DetectConfig) -> Result<LaneLines> {
        let lines_col = field_at(lanes, &cfg.lanes_field)?;
        let lines = as_list(&lines_col, &cfg.lanes_field)?.clone();
        let points_col = field_at(lines.values().as_struct(), &cfg.points_field)?;
        let points = as_list(&points_col, &cfg.points_field)?.clone();
        let px = as_f64(&field_at(points.values().as_struct(), &cfg.point_x_field)?, &cfg.point_x_field)?;
        let py = as_f64(&field_at(points.values().as_struct(), &cfg.point_y_field)?, &cfg.point_y_field)?;
        Ok(LaneLines { lines, points, px, py })
    }

    /// The lines of row `row`, left to right as recorded (none when the row is null).
    pub fn at(&self, row: usize) -> Vec<Vec<Point>> {
        if self.lines.is_null(row) {
            return Vec::new();
        }
        (self.lines.value_offsets()[row] as usize..self.lines.value_offsets()[row + 1] as usize)
            .map(|l| {
                if self.points.is_null(l) {
                    return Vec::new();
                }
                let (a, b) = (self.points.value_offsets()[l] as usize, self.points.value_offsets()[l + 1] as usize);
                (a..b).map(|p| Point { x: self.px.value(p), y: self.py.value(p) }).collect()
            })
            .collect()
    }
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
    let lane_lines = LaneLines::new(lanes, cfg)?;
    let lines = &lane_lines.lines;
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
        let tick_lines = lane_lines.at(row);
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
                    _ => crate::detect::lanes::FootprintLane { in_ego_lane: false, ..ego_footprint(&bbox, &tick_lines, ego_x) },
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
