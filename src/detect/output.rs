//! Arrow layouts of the `enriched` and `scenes` tables.

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
use crate::decode::column::UTC;

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
        ("scenario", strings(&|r| Some(r.scenario.clone()))),
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
