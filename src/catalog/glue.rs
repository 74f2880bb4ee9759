//! `scenes catalog glue`: creates or updates every lake table, and the ready-made views, in the
//! AWS Glue Data Catalog, so that Athena (and Spark on EMR with the Glue catalog) finds them
//! without a person running DDL.
//!
//! Tables are registered as Athena registers a native Delta Lake table: an external table
//! whose location is the table directory, with `table_type = DELTA` (Athena reads the Delta
//! log), `spark.sql.sources.provider = delta`, and the schema of the Delta log as Glue columns
//! (with `bag_file` as the partition key), which Athena views and Lake Formation rely on. Views
//! are Presto views (what Athena's `CREATE VIEW` stores): the SQL, and its columns in Trino types.

use aws_sdk_glue::types::{Column as GlueColumn, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use aws_sdk_glue::Client;
use base64::Engine;

use super::types::{hive_type, trino_type, Column};
use super::{CatalogEntry, EntryKind};
use crate::error::{Error, Result};
use crate::lake::PARTITION_COLUMN;

/// What registering one entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Updated,
}

impl std::fmt::Display for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registered::Created => "created",
            Registered::Updated => "updated",
        })
    }
}

/// A Glue client: the standard AWS configuration chain, `endpoint_url` overriding the endpoint
/// (`AWS_ENDPOINT_URL_GLUE` works too).
pub async fn client(endpoint_url: Option<&str>) -> Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let mut conf = aws_sdk_glue::config::Builder::from(&sdk);
    if let Some(url) = endpoint_url {
        conf = conf.endpoint_url(url);
    }
    Client::from_conf(conf.build())
}

/// Creates `database` unless it exists.
pub async fn ensure_database(client: &Client, database: &str) -> Result<()> {
    let input = DatabaseInput::builder()
        .name(database)
        .description("Tables of a scenes lake (ROS bags as Delta tables)")
        .build()
        .map_err(|e| glue_error("CreateDatabase", database, e))?;
    match client.create_database().database_input(input).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
        Err(e) => Err(glue_error("CreateDatabase", database, aws_sdk_glue::error::DisplayErrorContext(e))),
    }
}

/// Creates `entry` in `database`, or updates it when it exists.
pub async fn register(client: &Client, database: &str, entry: &CatalogEntry) -> Result<Registered> {
    let input = table_input(database, entry)?;
    let exists = match client.get_table().database_name(database).name(&entry.name).send().await {
        Ok(_) => true,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => false,
        Err(e) => return Err(glue_error("GetTable", &entry.name, aws_sdk_glue::error::DisplayErrorContext(e))),
    };
    if exists {
        client
            .update_table()
            .database_name(database)
            .table_input(input)
            .send()
            .await
            .map_err(|e| glue_error("UpdateTable", &entry.name, aws_sdk_glue::error::DisplayErrorContext(e)))?;
        Ok(Registered::Updated)
    } else {
        client
            .create_table()
            .database_name(database)
            .table_input(input)
            .send()
            .await
            .map_err(|e| glue_error("CreateTable", &entry.name, aws_sdk_glue::error::DisplayErrorContext(e)))?;
        Ok(Registered::Created)
    }
}

fn table_input(database: &str, entry: &CatalogEntry) -> Result<TableInput> {
    match &entry.kind {
        EntryKind::Table { location } => delta_table_input(entry, location),
        EntryKind::View { sql } => view_input(database, entry, sql),
    }
}

fn delta_table_input(entry: &CatalogEntry, location: &str) -> Result<TableInput> {
    let (partition, data): (Vec<&Column>, Vec<&Column>) = entry.columns.iter().partition(|c| c.name == PARTITION_COLUMN);
    let storage = StorageDescriptor::builder()
        .location(location)
        .set_columns(Some(glue_columns(&data, hive_type)?))
        .serde_info(SerDeInfo::builder().parameters("path", location).build())
        .build();
    TableInput::builder()
        .name(&entry.name)
        .table_type("EXTERNAL_TABLE")
        .parameters("table_type", "DELTA")
        .parameters("EXTERNAL", "TRUE")
        .parameters("spark.sql.sources.provider", "delta")
        .parameters("classification", "delta")
        .storage_descriptor(storage)
        .set_partition_keys(Some(glue_columns(&partition, hive_type)?))
        .build()
        .map_err(|e| glue_error("TableInput", &entry.name, e))
}

/// A Presto view as Athena stores one: the SQL and its columns in `ViewOriginalText`.
fn view_input(database: &str, entry: &CatalogEntry, sql: &str) -> Result<TableInput> {
    let columns = entry
        .columns
        .iter()
        .map(|c| Ok(serde_json::json!({ "name": c.name, "type": trino_type(&c.delta_type)? })))
        .collect::<Result<Vec<_>>>()?;
    let view = serde_json::json!({
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": columns,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(view.to_string());
    let all: Vec<&Column> = entry.columns.iter().collect();
    let storage = StorageDescriptor::builder()
        .set_columns(Some(glue_columns(&all, hive_type)?))
        .serde_info(SerDeInfo::builder().build())
        .build();
    TableInput::builder()
        .name(&entry.name)
        .table_type("VIRTUAL_VIEW")
        .parameters("presto_view", "true")
        .parameters("comment", "Presto View")
        .view_original_text(format!("/* Presto View: {encoded} */"))
        .view_expanded_text("/* Presto View */")
        .storage_descriptor(storage)
        .build()
        .map_err(|e| glue_error("TableInput", &entry.name, e))
}

fn glue_columns(columns: &[&Column], type_text: fn(&serde_json::Value) -> Result<String>) -> Result<Vec<GlueColumn>> {
    columns
        .iter()
        .map(|c| {
            GlueColumn::builder()
                .name(&c.name)
                .r#type(type_text(&c.delta_type)?)
                .build()
                .map_err(|e| glue_error("Column", &c.name, e))
        })
        .collect()
}

fn glue_error(request: &str, name: &str, e: impl std::fmt::Display) -> Error {
    Error::Catalog { request: request.to_string(), name: name.to_string(), reason: e.to_string() }
}
