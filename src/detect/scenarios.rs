//! Scenario rules: each scenario of `detect.scenarios` is a SQL boolean expression over the
//! per-tick timeline of a bag, the `synced` columns joined with the `enriched` ones. DataFusion
//! evaluates every rule in one pass (window functions such as `lag()` over `ORDER BY tick_ns`
//! allowed); a NULL result counts as false. [`check`] plans each rule against the whole lake
//! first, so a rule that does not parse or names a missing column stops `detect` before any
//! table changes, naming the rule.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{Field, Schema, TimestampNanosecondType};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::config::{DetectConfig, Scenario};
use crate::error::{Error, Result};
use crate::lake::table::LakeTable;
use crate::lake::Lake;

/// The columns of `enriched` a rule can name (besides every `synced` column).
const ENRICHED_COLUMNS: [&str; 4] = ["objects_in_lane", "num_people_in_lane", "num_people_in_lane_ego_footprint", "num_people_in_lane_reference"];

/// Whether each scenario holds at each tick of `enriched` (one list per scenario, in order).
pub async fn evaluate(lake: &Lake, bag_file: &str, enriched: &RecordBatch, scenarios: &[Scenario]) -> Result<Vec<Vec<bool>>> {
    let Some(synced) = LakeTable::open_partition(&lake.table("synced"), bag_file).await? else {
        return Ok(vec![Vec::new(); scenarios.len()]);
    };
    let ctx = timeline_context(synced, enriched).await?;
    let ticks = enriched_ticks(enriched)?;
    if scenarios.is_empty() {
        return Ok(Vec::new());
    }
    let rules: Vec<String> = scenarios.iter().enumerate().map(|(i, s)| format!("CAST(({}) AS BOOLEAN) AS r{i}", s.when)).collect();
    let sql = format!("SELECT tick_ns, {} FROM timeline ORDER BY tick_ns", rules.join(", "));
    let batches = run(&ctx, &sql).await.map_err(|e| match first_failing(scenarios, &e) {
        Some(name) => rule_error(name, &e),
        None => e,
    })?;
    let mut flags = vec![vec![false; ticks.len()]; scenarios.len()];
    let mut at = 0usize;
    for batch in &batches {
        let tick_ns = batch.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            // Timeline rows are the synced ticks; enriched has one row per tick, in order.
            while at < ticks.len() && ticks[at] < tick_ns.value(row) {
                at += 1;
            }
            if ticks.get(at) != Some(&tick_ns.value(row)) {
                continue;
            }
            for (i, f) in flags.iter_mut().enumerate() {
                let holds = batch.column(i + 1).as_boolean();
                f[at] = holds.is_valid(row) && holds.value(row);
            }
        }
    }
    Ok(flags)
}

/// Plans every scenario against the whole `synced` table (no rows read): the first that does
/// not plan is an error naming it. No `synced` table yet passes (nothing to detect).
pub async fn check(lake: &Lake, cfg: &DetectConfig) -> Result<()> {
    check_names(&cfg.scenarios)?;
    let Some(synced) = LakeTable::open(&lake.table("synced")).await? else {
        return Ok(());
    };
    let empty = super::output::enriched_batch(&[], Arc::new(super::output::objects_list(&[])?), &super::TickCounts::default(), cfg)?;
    let ctx = timeline_context(synced, &empty).await?;
    for scenario in &cfg.scenarios {
        let sql = format!("SELECT CAST(({}) AS BOOLEAN) FROM timeline", scenario.when);
        ctx.sql(&sql).await.map_err(|e| rule_error(&scenario.name, &Error::sql("", e)))?;
    }
    Ok(())
}

/// Scenario names: letters, digits and `_` (they are part of scene ids), each once.
fn check_names(scenarios: &[Scenario]) -> Result<()> {
    for (i, s) in scenarios.iter().enumerate() {
        if s.name.is_empty() || !s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::invalid(format!("detect.scenarios name '{}'", s.name), "use letters, digits and _ (it is part of each scene id)"));
        }
        if scenarios[..i].iter().any(|o| o.name == s.name) {
            return Err(Error::invalid(format!("detect.scenarios name '{}'", s.name), "is used twice"));
        }
    }
    Ok(())
}

/// A context with `synced` (one bag's partition, or the whole table), `enriched` (in memory,
/// with `tick_ns`) and the view `timeline` joining them on the tick.
async fn timeline_context(synced: LakeTable, enriched: &RecordBatch) -> Result<SessionContext> {
    let enriched = with_tick_ns(enriched)?;
    let ctx = SessionContext::new();
    ctx.register_table("synced", Arc::new(synced)).map_err(|e| Error::sql("detect ", e))?;
    let table = MemTable::try_new(enriched.schema(), vec![vec![enriched]]).map_err(|e| Error::sql("detect ", e))?;
    ctx.register_table("enriched", Arc::new(table)).map_err(|e| Error::sql("detect ", e))?;
    let columns: Vec<String> = ENRICHED_COLUMNS.iter().map(|c| format!("e.{c}")).collect();
    let view = format!("CREATE VIEW timeline AS SELECT s.*, {} FROM synced s LEFT JOIN enriched e ON e.tick_ns = s.tick_ns", columns.join(", "));
    run(&ctx, &view).await?;
    Ok(ctx)
}

/// `enriched` with its ticks also as `tick_ns` (Int64), the key of the timeline.
fn with_tick_ns(enriched: &RecordBatch) -> Result<RecordBatch> {
    let ticks = Int64Array::from(enriched_ticks(enriched)?);
    let mut fields: Vec<Field> = enriched.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("tick_ns", arrow::datatypes::DataType::Int64, false));
    let mut columns: Vec<ArrayRef> = enriched.columns().to_vec();
    columns.push(Arc::new(ticks));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn enriched_ticks(enriched: &RecordBatch) -> Result<Vec<i64>> {
    let ticks = enriched
        .column_by_name("tick")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| Error::invalid("enriched", "has no nanosecond tick column"))?;
    Ok(ticks.values().to_vec())
}

async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(sql).await.map_err(|e| Error::sql("detect ", e))?;
    df.collect().await.map_err(|e| Error::sql("detect ", e))
}

/// The scenario whose name or expression the error text points at, if any.
fn first_failing<'a>(scenarios: &'a [Scenario], e: &Error) -> Option<&'a str> {
    let text = e.to_string();
    scenarios.iter().find(|s| text.contains(s.when.as_str())).map(|s| s.name.as_str())
}

fn rule_error(name: &str, e: &Error) -> Error {
    Error::invalid(format!("detect.scenarios '{name}'"), format!("{e} (fix the rule's `when` in the config)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::config::default_scenarios;

    #[test]
    fn scenario_names_are_identifiers_used_once() {
        assert!(check_names(&default_scenarios()).is_ok());
        let mut twice = default_scenarios();
        twice.push(twice[0].clone());
        assert!(check_names(&twice).is_err());
        let mut spaced = default_scenarios();
        spaced[1].name = "hard braking".into();
        assert!(check_names(&spaced).unwrap_err().to_string().contains("hard braking"));
    }
}
