//! [`LakeTable`]: a Delta table of the lake as a DataFusion table — exactly the Parquet files of
//! the current snapshot, read with their own Arrow types, `bag_file` from the partition values,
//! and a filter on `bag_file` reading only that partition's files. Query and the stages that read
//! the lake back (detect) share it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::TableType;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::location::{RemoteStore, TableLocation};
use super::{delta, PARTITION_COLUMN};
use crate::lake::error::{LakeError, Result};

/// A lake table: the active Parquet files of a Delta snapshot, read with their own schema.
#[derive(Debug)]
pub struct LakeTable {
    file_schema: SchemaRef,
    schema: SchemaRef,
    /// Where the table is: the files' paths are relative to it.
    location: TableLocation,
    /// (path relative to the table, size, bag_file, rows when recorded) of every active file.
    files: Vec<(String, u64, Option<String>, Option<u64>)>,
    /// The store the files are in: the local file system, or an S3 bucket.
    store_url: ObjectStoreUrl,
    remote: Option<RemoteStore>,
}

impl LakeTable {
    /// Loads the snapshot of the Delta table at `location`. `None` when there is no table, or
    /// it has no files and no recorded columns; a table whose columns are recorded and that has
    /// no rows yet (no scenes found so far) is an empty table.
    pub async fn open(location: &TableLocation) -> Result<Option<LakeTable>> {
        Self::with_files(location, delta::table_files(location).await?, true).await
    }

    /// The files of one `bag_file` partition of the table at `location` only (their footers
    /// alone are read, however many bags the table holds). `None` when the partition is empty.
    pub async fn open_partition(location: &TableLocation, bag_file: &str) -> Result<Option<LakeTable>> {
        Self::with_files(location, delta::partition_table_files(location, bag_file).await?, false).await
    }

    /// The table over `table`'s files, typed by its recorded Arrow columns (or, for a table made
    /// by an earlier version, by its files' footers).
    async fn with_files(location: &TableLocation, table: delta::TableFiles, empty_is_a_table: bool) -> Result<Option<LakeTable>> {
        let active = table.files;
        if active.is_empty() && !(empty_is_a_table && table.arrow_fields.is_some()) {
            return Ok(None);
        }
        // The table's Arrow columns from its metadata; a table without them (made by an earlier
        // version) is read from its files' footers.
        let schemas: Vec<Schema> = match table.arrow_fields {
            Some(fields) => vec![Schema::new(fields)],
            None => {
                let sized: Vec<(String, u64)> = active.iter().map(|f| (f.relative_path.clone(), f.size)).collect();
                crate::lake::location::file_schemas(location, &sized).await?.into_iter().map(|s| s.as_ref().clone()).collect()
            }
        };
        let files = active
            .into_iter()
            .map(|f| (f.relative_path, f.size, f.bag_file, f.rows))
            .collect();
        let (store_url, remote) = match location.remote_store() {
            Some(remote) => (
                ObjectStoreUrl::parse(remote.bucket_url.as_str()).map_err(|e| LakeError::location(location.display(), e.to_string()))?,
                Some(remote.clone()),
            ),
            None => (ObjectStoreUrl::local_filesystem(), None),
        };
        let file_schema = Arc::new(union_schema(&schemas));
        let mut fields: Vec<Field> = file_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(PARTITION_COLUMN, DataType::Utf8, true));
        Ok(Some(LakeTable {
            file_schema,
            schema: Arc::new(Schema::new(fields)),
            location: location.clone(),
            files,
            store_url,
            remote,
        }))
    }
}

impl LakeTable {
    /// The table's schema (file columns plus `bag_file`).
    pub fn schema_ref(&self) -> &SchemaRef {
        &self.schema
    }
}

/// Columns of all part files, in first-seen order (files lacking a column read it as null).
fn union_schema(schemas: &[Schema]) -> Schema {
    let mut fields: Vec<Field> = Vec::new();
    for s in schemas {
        for f in s.fields() {
            if !fields.iter().any(|x| x.name() == f.name()) {
                fields.push(f.as_ref().clone().with_nullable(true));
            }
        }
    }
    Schema::new(fields)
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // `bag_file = '...'` prunes whole files; DataFusion still applies every filter after.
        Ok(filters
            .iter()
            .map(|f| {
                if partition_values(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        // Every pushed-down partition filter must admit the file's bag.
        let wanted: Vec<Vec<String>> = filters.iter().filter_map(partition_values).collect();
        let admitted = |bag: &Option<String>| wanted.iter().all(|values| bag.as_ref().is_some_and(|b| values.contains(b)));
        // No column wanted (`count(*)`): the rows the Delta log records are the answer; no file
        // needs to be planned or opened.
        if projection.is_some_and(|p| p.is_empty()) {
            let recorded: Option<u64> = self.files.iter().filter(|(_, _, bag, _)| admitted(bag)).try_fold(0u64, |sum, (_, _, _, rows)| rows.map(|r| sum + r));
            if let Some(rows) = recorded.and_then(|n| usize::try_from(n).ok()) {
                return row_count_plan(limit.map_or(rows, |l| rows.min(l)));
            }
        }
        let partition_field = Arc::new(Field::new(PARTITION_COLUMN, DataType::Utf8, true));
        let table_schema = datafusion::datasource::table_schema::TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(vec![partition_field])
            .build();
        let source = Arc::new(ParquetSource::new(table_schema));
        if let Some(remote) = &self.remote {
            // Whatever context runs the scan can then read the bucket.
            state.runtime_env().register_object_store(&remote.bucket_url, remote.store.clone());
        }
        let mut builder = FileScanConfigBuilder::new(self.store_url.clone(), source);
        // Rows of the files scanned, from the Delta log: `count(*)` is answered from it without
        // opening a file.
        let mut rows = Some(0u64);
        for (path, size, bag, file_rows) in &self.files {
            if !admitted(bag) {
                continue;
            }
            rows = rows.zip(*file_rows).map(|(a, b)| a + b);
            let file = PartitionedFile::new(self.location.object_path(path).to_string(), *size)
                .with_partition_values(vec![ScalarValue::Utf8(bag.clone())]);
            builder = builder.with_file(file);
        }
        if let Some(rows) = rows.and_then(|n| usize::try_from(n).ok()) {
            let mut statistics = datafusion::common::Statistics::new_unknown(&self.schema);
            statistics.num_rows = datafusion::common::stats::Precision::Exact(rows);
            builder = builder.with_statistics(statistics);
        }
        let builder = builder.with_projection_indices(projection.cloned())?.with_limit(limit);
        Ok(DataSourceExec::from_data_source(builder.build()))
    }
}

/// A plan of `rows` rows without columns (what a scan for `count(*)` returns), with exact
/// statistics, so that the count is answered from them.
fn row_count_plan(rows: usize) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::empty());
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    let batch = arrow::array::RecordBatch::try_new_with_options(schema.clone(), vec![], &options)?;
    let plan: Arc<dyn ExecutionPlan> = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?;
    Ok(plan)
}

/// The `bag_file` values a filter admits, when it is `bag_file = 'x'` or `bag_file IN ('x', ...)`.
fn partition_values(filter: &Expr) -> Option<Vec<String>> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let is_partition = |e: &Expr| matches!(e, Expr::Column(c) if c.name == PARTITION_COLUMN);
    let literal = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Utf8(Some(v)) | ScalarValue::Utf8View(Some(v)) | ScalarValue::LargeUtf8(Some(v)), _) => Some(v.clone()),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
            if is_partition(left) {
                literal(right).map(|v| vec![v])
            } else if is_partition(right) {
                literal(left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::InList(list) if !list.negated && is_partition(&list.expr) => list.list.iter().map(literal).collect(),
        _ => None,
    }
}

