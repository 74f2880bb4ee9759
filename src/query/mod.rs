//! `scenes query`: SQL over the lake with DataFusion. Every topic table is known by name (plus
//! `bags` and `batches` from the metadata store) and opened when a statement names it, reading
//! exactly the Parquet files of the current Delta snapshot with their exact Arrow types,
//! `bag_file` coming from the partition values.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::lake::location::TableLocation;
use crate::lake::table::LakeTable;
use crate::lake::Lake;
use crate::meta::MetaStore;

pub mod trino;
pub mod views;

/// A DataFusion context over the lake: every topic table by name, the derived tables, and the
/// metadata store's `bags` and `batches`. A table is opened when a statement first names it
/// (see [`LakeSchema`]), so a query over one table does not load every table's state, nor read
/// every bag record.
pub async fn lake_context(lake: &Lake, store: Arc<dyn MetaStore>) -> Result<SessionContext> {
    let config = datafusion::prelude::SessionConfig::new().with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    trino::register(&ctx).map_err(|e| Error::sql("registering the Trino functions: ", e))?;
    let locations = lake.tables().await?.into_iter().map(|t| (t.name, t.location)).collect();
    let schema = LakeSchema { locations, store, opened: Mutex::new(HashMap::new()) };
    let catalog = ctx.catalog("datafusion").ok_or_else(|| Error::Start { what: "the SQL catalog", reason: "no default catalog".into() })?;
    catalog.register_schema("public", Arc::new(schema)).map_err(|e| Error::sql("registering the lake: ", e))?;
    Ok(ctx)
}

/// The metadata store's tables, next to the lake's.
const STORE_TABLES: [&str; 2] = ["bags", "batches"];

/// The lake's tables as a DataFusion schema. Tables are opened (a lake table's Delta state
/// loaded, the store's records read) the first time a statement names them, then kept for the
/// session.
struct LakeSchema {
    /// Every lake table (with at least one commit) by name.
    locations: BTreeMap<String, TableLocation>,
    /// Where `bags` and `batches` come from.
    store: Arc<dyn MetaStore>,
    opened: Mutex<HashMap<String, Option<Arc<dyn TableProvider>>>>,
}

impl std::fmt::Debug for LakeSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSchema").field("locations", &self.locations).finish_non_exhaustive()
    }
}

impl LakeSchema {
    /// Opens the table `name`: the store's, or the lake's.
    async fn open(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(match name {
            "bags" => Some(Arc::new(bags_table(self.store.as_ref())?)),
            "batches" => Some(Arc::new(batches_table(self.store.as_ref())?)),
            _ => match self.locations.get(name) {
                Some(location) => LakeTable::open(location).await?.map(|t| Arc::new(t) as Arc<dyn TableProvider>),
                None => None,
            },
        })
    }
}

#[async_trait::async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.locations.keys().cloned().chain(STORE_TABLES.iter().map(|t| t.to_string())).collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if let Some(known) = self.opened.lock().ok().and_then(|opened| opened.get(name).cloned()) {
            return Ok(known);
        }
        if !self.table_exist(name) {
            return Ok(None);
        }
        let table = self.open(name).await.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(name.to_string(), table.clone());
        }
        Ok(table)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.locations.contains_key(name) || STORE_TABLES.contains(&name) || self.registered(name)
    }

    /// Views (`CREATE VIEW`, the ready-made ones of [`views`]) live for the session.
    fn register_table(&self, name: String, table: Arc<dyn TableProvider>) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let mut opened = self.opened.lock().map_err(|_| datafusion::error::DataFusionError::Internal("lake schema lock poisoned".into()))?;
        Ok(opened.insert(name, Some(table)).flatten())
    }
}

impl LakeSchema {
    /// Whether `name` was registered in this session (a view).
    fn registered(&self, name: &str) -> bool {
        !self.locations.contains_key(name)
            && !STORE_TABLES.contains(&name)
            && self.opened.lock().is_ok_and(|opened| opened.get(name).is_some_and(Option::is_some))
    }
}

/// The bag records of the metadata store as a table.
fn bags_table(store: &dyn MetaStore) -> Result<MemTable> {
    let batch = bag_records_batch(store)?;
    MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| Error::sql("building a table of the store: ", e))
}

/// The bag records of the metadata store as rows (the `bags` table).
pub fn bag_records_batch(store: &dyn MetaStore) -> Result<RecordBatch> {
    let bags = store.list_bags()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("bag_file", DataType::Utf8, false),
        Field::new("bag_name", DataType::Utf8, false),
        Field::new("source_uri", DataType::Utf8, true),
        Field::new("bag_file_prefix", DataType::Utf8, false),
        Field::new("bag_file_bucket", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("size_bytes", DataType::UInt64, false),
        Field::new("message_count", DataType::UInt64, false),
        Field::new("start_time_ns", DataType::UInt64, true),
        Field::new("end_time_ns", DataType::UInt64, true),
        Field::new("ingest_seconds", DataType::Float64, false),
        Field::new("ingested_at", DataType::Utf8, false),
        Field::new("topics", DataType::Utf8, false),
    ]));
    let col_str = |f: &dyn Fn(&crate::meta::BagRecord) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values(bags.iter().map(f))) };
    let columns: Vec<ArrayRef> = vec![
        col_str(&|b| b.bag_file.clone()),
        col_str(&|b| b.name().to_string()),
        Arc::new(StringArray::from_iter(bags.iter().map(|b| b.source_uri.clone()))),
        col_str(&|b| b.bag_file_prefix.clone()),
        Arc::new(StringArray::from_iter(bags.iter().map(|b| b.bag_file_bucket.clone()))),
        col_str(&|b| b.status.clone()),
        Arc::new(UInt64Array::from_iter_values(bags.iter().map(|b| b.size_bytes))),
        Arc::new(UInt64Array::from_iter_values(bags.iter().map(|b| b.message_count))),
        Arc::new(UInt64Array::from_iter(bags.iter().map(|b| b.start_time_ns))),
        Arc::new(UInt64Array::from_iter(bags.iter().map(|b| b.end_time_ns))),
        Arc::new(Float64Array::from_iter_values(bags.iter().map(|b| b.ingest_seconds))),
        col_str(&|b| b.ingested_at.clone()),
        col_str(&|b| serde_json::to_string(&b.topics).unwrap_or_default()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The batch records of the metadata store as a table.
fn batches_table(store: &dyn MetaStore) -> Result<MemTable> {
    let batches = store.list_batches()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("batch_id", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("bags", DataType::Utf8, false),
        Field::new("bag_count", DataType::UInt64, false),
        Field::new("started_at", DataType::Utf8, false),
        Field::new("finished_at", DataType::Utf8, true),
        Field::new("seconds", DataType::Float64, true),
        Field::new("scenes", DataType::UInt64, true),
        Field::new("error", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(batches.iter().map(|b| b.batch_id.clone()))),
        Arc::new(StringArray::from_iter_values(batches.iter().map(|b| b.status.clone()))),
        Arc::new(StringArray::from_iter_values(batches.iter().map(|b| b.bags.join(",")))),
        Arc::new(UInt64Array::from_iter_values(batches.iter().map(|b| b.bags.len() as u64))),
        Arc::new(StringArray::from_iter_values(batches.iter().map(|b| b.started_at.clone()))),
        Arc::new(StringArray::from_iter(batches.iter().map(|b| b.finished_at.clone()))),
        Arc::new(Float64Array::from_iter(batches.iter().map(|b| b.seconds))),
        Arc::new(UInt64Array::from_iter(batches.iter().map(|b| b.scenes))),
        Arc::new(StringArray::from_iter(batches.iter().map(|b| b.error.clone()))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| Error::sql("building a table of the store: ", e))
}

/// Runs one SQL statement and collects its result.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    views::register_named(ctx, sql).await?;
    let df = ctx.sql(sql).await.map_err(sql_error)?;
    df.collect().await.map_err(sql_error)
}

fn sql_error(e: datafusion::error::DataFusionError) -> Error {
    Error::sql("", e)
}

/// Output formats of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Renders `batches` in `format` to bytes.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Table => {
            let text = arrow::util::pretty::pretty_format_batches(batches)?;
            out.extend_from_slice(format!("{text}\n").as_bytes());
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Parquet => {
            let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(Schema::empty()));
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    Ok(out)
}

/// Interactive SQL shell: statements end with `;`, `\\d` lists tables, `\\q` quits.
/// History is kept in `history_file`.
pub fn shell(runtime: &tokio::runtime::Runtime, ctx: &SessionContext, history_file: &Path) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new().map_err(|e| Error::Start { what: "the shell", reason: e.to_string() })?;
    let _ = editor.load_history(history_file);
    println!("scenes SQL shell: end statements with ';'. \\d lists tables, \\q quits.");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "scenes> " } else { "   ...> " };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && (trimmed == "\\q" || trimmed == "quit" || trimmed == "exit") {
                    break;
                }
                if buffer.is_empty() && trimmed == "\\d" {
                    let _ = editor.add_history_entry(trimmed);
                    print_result(runtime, ctx, "SHOW TABLES");
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if trimmed.ends_with(';') {
                    let sql = std::mem::take(&mut buffer);
                    let _ = editor.add_history_entry(sql.trim());
                    print_result(runtime, ctx, sql.trim().trim_end_matches(';'));
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Start { what: "the shell", reason: e.to_string() }),
        }
    }
    if let Some(dir) = history_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(history_file);
    Ok(())
}

fn print_result(runtime: &tokio::runtime::Runtime, ctx: &SessionContext, sql: &str) {
    let started = std::time::Instant::now();
    match runtime.block_on(run_sql(ctx, sql)).and_then(|b| Ok((render(&b, Format::Table)?, b))) {
        Ok((text, batches)) => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            print!("{}", String::from_utf8_lossy(&text));
            println!("{rows} rows in {:.3}s", started.elapsed().as_secs_f64());
        }
        Err(e) => eprintln!("error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn numbers() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]));
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("a"), None]))];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn every_format_renders_the_rows() {
        let batches = [numbers()];
        let table = String::from_utf8(render(&batches, Format::Table).unwrap()).unwrap();
        assert!(table.contains("| n | name |") && table.contains("| 2 |      |"), "{table}");
        let csv = String::from_utf8(render(&batches, Format::Csv).unwrap()).unwrap();
        assert_eq!(csv, "n,name\n1,a\n2,\n");
        let json = String::from_utf8(render(&batches, Format::Json).unwrap()).unwrap();
        assert_eq!(json, "{\"n\":1,\"name\":\"a\"}\n{\"n\":2}\n");
        let parquet = render(&batches, Format::Parquet).unwrap();
        let read: Vec<RecordBatch> = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes::Bytes::from(parquet), 1024)
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(read, vec![numbers()]);
    }

    #[test]
    fn sql_runs_and_errors_name_the_problem() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ctx = SessionContext::new();
        ctx.register_batch("numbers", numbers()).unwrap();
        let rows = rt.block_on(run_sql(&ctx, "SELECT sum(n) AS total FROM numbers")).unwrap();
        assert_eq!(rows[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 3);
        let err = rt.block_on(run_sql(&ctx, "SELECT no_such_column FROM numbers")).unwrap_err().to_string();
        assert!(err.starts_with("SQL:") && err.contains("no_such_column"), "{err}");
    }
}
