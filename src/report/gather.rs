//! What the report shows, read from the lake: per bag its timeline (ego speed and people in
//! lane per tick, from `synced` and `enriched`) and scenes (from the metadata store); per scene,
//! the detections and lane lines at its first tick (through the detect stage's own field paths
//! and lane rule) and the last camera frame at or before it (a `CompressedImage` topic's JPEG).

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt32Type};
use datafusion::prelude::SessionContext;

use crate::detect::lanes::Point;
use crate::detect::{assign, quote_ident, sql_path, DetectConfig, LaneLines, ObjectLane};
use crate::error::{Error, Result};
use crate::lake::table::LakeTable;
use crate::lake::Lake;
use crate::meta::{BagRecord, MetaStore, SceneRecord};

/// One bag of the report.
pub struct BagView {
    pub record: BagRecord,
    /// Ticks (ns) with the ego speed (m/s) and the people in lane at each.
    pub ticks: Vec<i64>,
    pub speed: Vec<Option<f64>>,
    pub people: Vec<u32>,
    pub scenes: Vec<SceneView>,
}

/// One scene of the report.
pub struct SceneView {
    pub record: SceneRecord,
    pub start_ns: i64,
    pub end_ns: Option<i64>,
    /// The camera frame (JPEG bytes as recorded) at or before the scene's first tick.
    pub frame_jpeg: Option<Vec<u8>>,
    /// The drawing's size: `image_width_px` wide (the detections' pixels), at the frame's
    /// aspect ratio (16:9 without a frame).
    pub frame_size: (f64, f64),
    pub objects: Vec<ObjectLane>,
    pub lanes: Vec<Vec<Point>>,
}

/// The bags with scenes or a timeline, in key order (only the keys of `only` when given).
pub async fn bag_views(lake: &Lake, store: &dyn MetaStore, cfg: &DetectConfig, only: Option<&[String]>) -> Result<Vec<BagView>> {
    let scenes = store.list_scenes()?;
    let mut bags: Vec<BagRecord> = store.list_bags()?.into_iter().filter(|b| only.is_none_or(|keys| keys.contains(&b.bag_file))).collect();
    bags.sort_by(|a, b| a.bag_file.cmp(&b.bag_file));
    let mut views = Vec::new();
    for bag in bags {
        let Some(ctx) = bag_context(lake, &bag).await? else { continue };
        let (ticks, speed, people) = timeline(&ctx, cfg).await?;
        let mut bag_scenes: Vec<&SceneRecord> = scenes.iter().filter(|s| s.bag_file == bag.bag_file).collect();
        bag_scenes.sort_by(|a, b| a.start_time.total_cmp(&b.start_time).then(a.scenario.cmp(&b.scenario)));
        let mut scene_views = Vec::new();
        for record in bag_scenes {
            scene_views.push(scene_view(&ctx, lake, &bag, cfg, record, &ticks).await?);
        }
        views.push(BagView { record: bag, ticks, speed, people, scenes: scene_views });
    }
    Ok(views)
}

/// A context with the bag's partitions of `synced` and `enriched`; `None` when not synced.
async fn bag_context(lake: &Lake, bag: &BagRecord) -> Result<Option<SessionContext>> {
    let ctx = SessionContext::new();
    for table in ["synced", "enriched"] {
        let Some(provider) = LakeTable::open_partition(&lake.table(table), &bag.bag_file).await? else {
            return Ok(None);
        };
        ctx.register_table(table, Arc::new(provider)).map_err(|e| Error::sql("report ", e))?;
    }
    Ok(Some(ctx))
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<RecordBatch> {
    let df = ctx.sql(sql).await.map_err(|e| Error::sql("report ", e))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| Error::sql("report ", e))?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// Ticks, ego speed (when the synced table has the speed column) and people in lane.
async fn timeline(ctx: &SessionContext, cfg: &DetectConfig) -> Result<(Vec<i64>, Vec<Option<f64>>, Vec<u32>)> {
    let has_speed = !cfg.speed_table.is_empty() && ctx.table("synced").await.is_ok_and(|t| t.schema().field_with_unqualified_name(&cfg.speed_table).is_ok());
    let speed = if has_speed { format!("CAST({} AS DOUBLE)", sql_path(&cfg.speed_table, &cfg.speed_field)) } else { "CAST(NULL AS DOUBLE)".into() };
    let sql = format!(
        "SELECT s.tick_ns, {speed} AS speed, COALESCE(e.num_people_in_lane, 0) AS people \
         FROM synced s LEFT JOIN enriched e ON e.tick_ns = s.tick_ns ORDER BY s.tick_ns"
    );
    let batch = rows(ctx, &sql).await?;
    let ticks = batch.column(0).as_primitive::<Int64Type>().values().to_vec();
    let speed_col = batch.column(1).as_primitive::<Float64Type>();
    let speed = (0..speed_col.len()).map(|i| speed_col.is_valid(i).then(|| speed_col.value(i))).collect();
    let people_col = arrow::compute::cast(batch.column(2), &DataType::UInt32)?;
    let people = people_col.as_primitive::<UInt32Type>().iter().map(|v| v.unwrap_or(0)).collect();
    Ok((ticks, speed, people))
}

async fn scene_view(ctx: &SessionContext, lake: &Lake, bag: &BagRecord, cfg: &DetectConfig, record: &SceneRecord, ticks: &[i64]) -> Result<SceneView> {
    let start_ns = (record.start_time * 1e9).round() as i64;
    // The timeline tick the scene starts at (its start is a tick; float seconds round).
    let tick = ticks.iter().copied().min_by_key(|t| (t - start_ns).abs()).unwrap_or(start_ns);
    let (objects, lanes) = detections_at(ctx, cfg, tick).await.unwrap_or_default();
    let frame_jpeg = camera_frame(lake, bag, tick).await?;
    // The drawing is in detection pixels (`image_width_px` wide), at the frame's aspect ratio.
    let aspect = frame_jpeg.as_deref().and_then(jpeg_size).map_or(9.0 / 16.0, |(w, h)| h / w);
    let frame_size = (cfg.image_width_px, cfg.image_width_px * aspect);
    Ok(SceneView {
        record: record.clone(),
        start_ns: tick,
        end_ns: record.end_time.map(|e| (e * 1e9).round() as i64),
        frame_jpeg,
        frame_size,
        objects,
        lanes,
    })
}

/// The detected objects (with their lane verdicts) and the lane lines at `tick`.
async fn detections_at(ctx: &SessionContext, cfg: &DetectConfig, tick: i64) -> Result<(Vec<ObjectLane>, Vec<Vec<Point>>)> {
    let sql = format!(
        "SELECT {det}, {lanes} FROM synced WHERE tick_ns = {tick}",
        det = quote_ident(&cfg.detections_table),
        lanes = quote_ident(&cfg.lanes_table)
    );
    let batch = rows(ctx, &sql).await?;
    if batch.num_rows() == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let objects = assign(&batch, cfg)?.into_iter().next().flatten().unwrap_or_default();
    let lanes = batch.column(1).as_struct_opt().map(|l| LaneLines::new(l, cfg)).transpose()?.map(|l| l.at(0)).unwrap_or_default();
    Ok((objects, lanes))
}

/// The JPEG of the bag's `CompressedImage` topic at or before `tick` (else the first after).
async fn camera_frame(lake: &Lake, bag: &BagRecord, tick: i64) -> Result<Option<Vec<u8>>> {
    let camera = bag.topics.values().find(|t| matches!(t.msg_type.as_str(), "sensor_msgs/CompressedImage" | "sensor_msgs/msg/CompressedImage"));
    let Some(table) = camera.and_then(|t| t.tables.first()) else { return Ok(None) };
    let Some(provider) = LakeTable::open_partition(&lake.topic_table(table), &bag.bag_file).await? else { return Ok(None) };
    let ctx = SessionContext::new();
    ctx.register_table("camera", Arc::new(provider)).map_err(|e| Error::sql("report ", e))?;
    let sql = format!("SELECT data FROM camera ORDER BY CASE WHEN log_time_ns <= {tick} THEN 0 ELSE 1 END, abs(log_time_ns - {tick}) LIMIT 1");
    let batch = rows(&ctx, &sql).await?;
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let data = arrow::compute::cast(batch.column(0), &DataType::Binary)?;
    let data = data.as_binary::<i32>();
    Ok((data.is_valid(0) && jpeg_size(data.value(0)).is_some()).then(|| data.value(0).to_vec()))
}

/// Width and height of a JPEG from its start-of-frame marker; `None` when it is not one.
pub fn jpeg_size(bytes: &[u8]) -> Option<(f64, f64)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    while at + 9 < bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let h = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]);
            let w = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]);
            return (w > 0 && h > 0).then_some((f64::from(w), f64::from(h)));
        }
        at += 2 + len;
    }
    None
}
