//! `scenes catalog athena`: the DDL that makes every lake table queryable in Amazon Athena (and
//! registered in the Glue Data Catalog). Tables are Delta tables, so Athena reads their columns
//! and partitions from the Delta log: each statement names only the table and its S3 location.

use crate::error::{Error, Result};
use crate::lake::Lake;

pub use crate::lake::DERIVED_TABLES;

/// One table to register: its name and its location relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTable {
    pub name: String,
    pub relative_path: String,
}

/// Every Delta table of the lake: topic tables (`topics/<name>`) and the derived tables.
pub async fn lake_tables(lake: &Lake) -> Result<Vec<CatalogTable>> {
    Ok(lake.tables().await?.into_iter().map(|t| CatalogTable { name: t.name, relative_path: t.relative_path }).collect())
}

/// `CREATE DATABASE` plus one `CREATE EXTERNAL TABLE ... TBLPROPERTIES ('table_type'='DELTA')`
/// per table, located under `s3_location` (the lake's S3 URI).
pub fn athena_ddl(tables: &[CatalogTable], s3_location: &str, database: &str) -> Result<String> {
    if !s3_location.starts_with("s3://") {
        return Err(Error::invalid(
            format!("--location {s3_location}"),
            "not an S3 location; Athena reads tables from S3: pass --location s3://bucket/prefix/ (where the lake is, or will be copied to)",
        ));
    }
    check_identifier(database)?;
    let base = s3_location.trim_end_matches('/');
    let mut out = format!("CREATE DATABASE IF NOT EXISTS `{database}`;\n");
    for t in tables {
        check_identifier(&t.name)?;
        out.push_str(&format!(
            "\nCREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{}`\nLOCATION '{base}/{}/'\nTBLPROPERTIES ('table_type' = 'DELTA');\n",
            t.name, t.relative_path
        ));
    }
    Ok(out)
}

/// Athena/Glue names: lowercase letters, digits and `_`, at most 255 characters.
fn check_identifier(name: &str) -> Result<()> {
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

    #[test]
    fn ddl_names_every_table_and_rejects_local_paths() {
        let tables = vec![
            CatalogTable { name: "imu_data".into(), relative_path: "topics/imu_data".into() },
            CatalogTable { name: "scenes".into(), relative_path: "scenes".into() },
        ];
        let ddl = athena_ddl(&tables, "s3://lake/prefix/", "drives").unwrap();
        assert!(ddl.contains("CREATE EXTERNAL TABLE IF NOT EXISTS `drives`.`imu_data`\nLOCATION 's3://lake/prefix/topics/imu_data/'"));
        assert!(ddl.contains("LOCATION 's3://lake/prefix/scenes/'"));
        assert_eq!(ddl.matches("'table_type' = 'DELTA'").count(), 2);
        assert!(athena_ddl(&tables, "/tmp/lake", "drives").is_err());
        assert!(athena_ddl(&tables, "s3://lake", "Bad-Name").is_err());
    }
}
