//! `scenes catalog`: makes every lake table, the bag records and the ready-made views
//! queryable in Amazon Athena — as DDL text (`catalog athena`) or registered in the AWS Glue Data
//! Catalog through its API (`catalog glue`).
//!
//! Tables are Delta tables, so Athena reads their columns and partitions from the Delta log. The
//! bag records live in the metadata store (DynamoDB on AWS), which Athena cannot join, so
//! `catalog` first writes them to the lake as the Delta table `catalog/bags`, registered as
//! `bags`: the name `scenes query` gives the store's records, so the views read the same in both.

#[cfg(feature = "aws")]
pub mod glue;
pub mod types;

use crate::error::{Error, Result};
use crate::lake::{delta, Lake};
use crate::meta::MetaStore;
use crate::query::views::{ViewColumn, VIEWS};
use types::Column;

pub use crate::lake::DERIVED_TABLES;

/// Where the exported bag records are, relative to the lake root.
pub const BAGS_TABLE_PATH: &str = "catalog/bags";

/// One table or view to register.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub name: String,
    pub kind: EntryKind,
    /// Its columns with their Delta types (a view's: those of the columns it selects).
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// A Delta table at an S3 location.
    Table { location: String },
    /// A view and its SQL.
    View { sql: String },
}

/// Writes the store's bag records to the lake's `bags` table (replacing what it held). Returns
/// the number of bags.
pub async fn export_bags(lake: &Lake, store: &dyn MetaStore) -> Result<usize> {
    let batch = crate::query::bag_records_batch(store)?;
    let rows = batch.num_rows();
    delta::overwrite_table(&lake.table(BAGS_TABLE_PATH), batch).await?;
    Ok(rows)
}

/// Every table of the lake (topic tables, derived tables and the exported `bags`), located
/// under `s3_location` (the lake's S3 URI), then every view whose tables all exist.
pub async fn catalog_entries(lake: &Lake, s3_location: &str) -> Result<Vec<CatalogEntry>> {
    check_s3_location(s3_location)?;
    let base = s3_location.trim_end_matches('/');
    let mut tables: Vec<(String, String)> = lake.tables().await?.into_iter().map(|t| (t.name, t.relative_path)).collect();
    tables.push(("bags".to_string(), BAGS_TABLE_PATH.to_string()));
    let mut entries = Vec::new();
    for (name, relative_path) in tables {
        check_identifier(&name)?;
        let Some(schema) = delta::current_schema(&lake.table(&relative_path)).await? else {
            continue;
        };
        let schema = serde_json::to_value(&schema).map_err(|e| Error::invalid(format!("table {name}"), format!("schema: {e}")))?;
        entries.push(CatalogEntry {
            name,
            kind: EntryKind::Table { location: format!("{base}/{relative_path}/") },
            columns: types::columns(&schema)?,
        });
    }
    let views: Vec<CatalogEntry> = VIEWS.iter().filter_map(|view| view_entry(view, &entries)).collect();
    entries.extend(views);
    Ok(entries)
}

/// The entry of `view`, with its columns taken from the tables' entries; `None` when a table it
/// reads does not exist (yet).
fn view_entry(view: &crate::query::views::View, tables: &[CatalogEntry]) -> Option<CatalogEntry> {
    let columns_of = |table: &str| tables.iter().find(|e| e.name == table).map(|e| &e.columns);
    let mut columns = Vec::new();
    for column in view.columns {
        match column {
            ViewColumn::AllOf(table) => columns.extend(columns_of(table)?.iter().cloned()),
            ViewColumn::One { table, column, name } => {
                let found = columns_of(table)?.iter().find(|c| c.name == *column)?;
                columns.push(Column { name: name.to_string(), delta_type: found.delta_type.clone() });
            }
        }
    }
    Some(CatalogEntry { name: view.name.to_string(), kind: EntryKind::View { sql: view.sql() }, columns })
}

/// `CREATE DATABASE`, one `CREATE EXTERNAL TABLE ... TBLPROPERTIES ('table_type'='DELTA')` per
/// table and one `CREATE OR REPLACE VIEW` per view, for Athena.
pub fn athena_ddl(entries: &[CatalogEntry], database: &str) -> Result<String> {
    check_identifier(database)?;
    let mut out = format!("CREATE DATABASE IF NOT EXISTS `{database}`;\n");
    for entry in entries {
        match &entry.kind {
            EntryKind::Table { location } => out.push_str(&format!(
                "\nCREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{}`\nLOCATION '{location}'\nTBLPROPERTIES ('table_type' = 'DELTA');\n",
                entry.name
            )),
            EntryKind::View { sql } => out.push_str(&format!("\nCREATE OR REPLACE VIEW \"{database}\".\"{}\" AS\n{sql};\n", entry.name)),
        }
    }
    Ok(out)
}

fn check_s3_location(location: &str) -> Result<()> {
    if location.starts_with("s3://") {
        return Ok(());
    }
    Err(Error::invalid(
        format!("--location {location}"),
        "not an S3 location; Athena reads tables from S3: pass --location s3://bucket/prefix/ (where the lake is, or will be copied to)",
    ))
}

/// Athena/Glue names: lowercase letters, digits and `_`, at most 255 characters.
pub fn check_identifier(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("'{name}'"), "cannot be an Athena name (lowercase letters, digits and _ only)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(name: &str, columns: &[(&str, &str)]) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            kind: EntryKind::Table { location: format!("s3://lake/prefix/{name}/") },
            columns: columns.iter().map(|(n, t)| Column { name: n.to_string(), delta_type: json!(t) }).collect(),
        }
    }

    #[test]
    fn ddl_names_every_table_and_view() {
        let tables = vec![table("imu_data", &[("log_time", "timestamp")]), table("scenes", &[("scene_id", "string")])];
        let ddl = athena_ddl(&tables, "drives").unwrap();
        assert!(ddl.contains("CREATE EXTERNAL TABLE IF NOT EXISTS `drives`.`imu_data`\nLOCATION 's3://lake/prefix/imu_data/'"));
        assert_eq!(ddl.matches("'table_type' = 'DELTA'").count(), 2);
        assert!(athena_ddl(&tables, "Bad-Name").is_err());
        assert!(check_s3_location("/tmp/lake").is_err());
    }

    #[test]
    fn a_view_declares_the_columns_its_sql_selects_and_waits_for_its_tables() {
        let scenes = table("scenes", &[("scene_id", "string"), ("start_ts_ns", "long"), ("bag_file", "string")]);
        let synced = table("synced", &[("tick", "timestamp"), ("tick_ns", "long"), ("bag_file", "string")]);
        let timeline = VIEWS.iter().find(|v| v.name == "scene_timeline").unwrap();
        let entry = view_entry(timeline, &[scenes.clone(), synced]).unwrap();
        let names: Vec<&str> = entry.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["scene_id", "tick", "tick_ns", "bag_file"]);
        assert!(view_entry(timeline, &[scenes]).is_none(), "no synced table, no view");
    }
}
