//! The detect stage's view of one bag: DataFusion runs `lane_assign` and `count_in_lane` (see
//! [`super::udf`]) over the bag's partition of the `synced` table, tick by tick.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};

use super::assign::TickCounts;
use super::config::DetectConfig;
use super::udf;
use crate::error::{Error, Result};
use crate::lake::table::LakeTable;
use crate::lake::Lake;

/// The detect stage's view of one bag, computed by DataFusion with the [`udf`] functions.
pub struct Frame {
    pub ticks: Vec<i64>,
    pub objects_in_lane: ArrayRef,
    pub counts: TickCounts,
    pub speeds: Option<Vec<Option<f64>>>,
}

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"table"['a']['b']` for the dotted path `a.b` inside the synced column `table`.
pub fn sql_path(table: &str, path: &str) -> String {
    let mut expr = quote_ident(table);
    for part in path.split('.') {
        expr.push_str(&format!("['{}']", part.replace('\'', "''")));
    }
    expr
}

/// Runs the detect stage's SQL over the synced rows of one bag.
pub async fn detect_frame(lake: &Lake, bag_file: &str, cfg: &DetectConfig) -> Result<Option<Frame>> {
    let Some(table) = LakeTable::open_partition(&lake.table("synced"), bag_file).await? else {
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
         FROM (SELECT tick_ns AS tick, lane_assign({det}, {lanes}) AS objects_in_lane{speed_inner} \
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
    // `tick_ns`: the exact nanoseconds of each tick (`tick` itself is stored in µs).
    let ticks = batch.column(0).as_primitive::<Int64Type>().values().to_vec();
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
    Error::sql("detect ", e)
}
