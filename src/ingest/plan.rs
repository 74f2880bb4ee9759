//! The ingest plan of one bag: which connections are decoded into which table. Connections of a
//! topic that share a definition (identical Arrow fields) form a variant; a variant whose columns
//! conflict with its table's goes to a table named after its definition's md5.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use deltalake::kernel::StructType;
use md5::{Digest, Md5};
use rustc_hash::FxHashMap;

use crate::bag::Bag;
use crate::decode::column::UTC;
use crate::decode::MessageColumns;
use crate::error::{Error, Result};
use crate::lake::location::TableLocation;
use crate::lake::parquet::{storage_fields, PartFile, StorageChoices};
use crate::lake::{delta, table_name, Lake, RAW_MESSAGE_COLUMN};

/// One group of connections of a topic that share a definition (identical Arrow fields).
pub(super) struct Variant {
    pub(super) topic: String,
    pub(super) template: MessageColumns,
    /// The definition could not be parsed: messages are kept as raw bytes only.
    pub(super) raw_only: bool,
    /// For raw-only variants, their message type and why they are not decoded: stored with
    /// every row (see [`MESSAGE_TYPE_COLUMN`], [`DECODE_STATUS_COLUMN`]).
    pub(super) raw_reason: Option<(String, String)>,
    pub(super) has_header_stamp: bool,
    pub(super) table: usize,
    md5: String,
    /// How its part files store their columns, chosen with the first one (see [`StorageChoices`]).
    pub(super) storage: StorageChoices,
}

pub(super) struct TableTarget {
    pub(super) name: String,
    pub(super) dir: TableLocation,
    pub(super) variants: Vec<usize>,
}

/// Per connection counters gathered by the workers.
#[derive(Default, Clone)]
pub(super) struct ConnCounters {
    pub(super) ok: u64,
    pub(super) errors: u64,
    pub(super) lossy: u64,
    pub(super) first_error: Option<String>,
}

pub(super) struct Plan {
    pub(super) variants: Vec<Variant>,
    pub(super) tables: Vec<TableTarget>,
    /// connection id → variant index.
    pub(super) conn_variant: FxHashMap<u32, usize>,
    pub(super) definition_errors: HashMap<String, String>,
}

/// What planning knows of the tables' schemas during one commit group: each table's committed
/// schema, read once per group (reading a table's state again for every bag cost more as the
/// table grew), and the columns of the group's bags written so far, which a bag planned next
/// must fit as it fits the committed schema. A writer that changes a schema meanwhile is caught
/// by the group's commit.
#[derive(Default)]
pub(super) struct GroupSchemas {
    /// Table name → its committed schema (`None`: no table yet).
    committed: HashMap<String, Option<StructType>>,
    /// Table name → the columns the group's bags write into it.
    pending: HashMap<String, Fields>,
}

impl GroupSchemas {
    /// Records the columns a written bag brings to table `name`.
    pub(super) fn add_pending(&mut self, name: &str, fields: &Fields) {
        let merged = match self.pending.get(name) {
            Some(current) => union_fields([current.clone(), fields.clone()].into_iter()),
            None => fields.clone(),
        };
        self.pending.insert(name.to_string(), merged);
    }

    /// The schema of table `name` at `dir` with the columns of writes still to be committed.
    async fn schema(&mut self, name: &str, dir: &TableLocation) -> Result<Option<StructType>> {
        let committed = match self.committed.get(name) {
            Some(known) => known.clone(),
            None => {
                let read = delta::current_schema(dir).await?;
                self.committed.insert(name.to_string(), read.clone());
                read
            }
        };
        let Some(pending) = self.pending.get(name) else { return Ok(committed) };
        let pending = delta::table_schema(pending)?;
        Ok(Some(match committed {
            // Pending columns were planned to fit the committed ones.
            Some(committed) => delta::merge_schemas(&committed, &pending).unwrap_or(committed),
            None => pending,
        }))
    }
}

/// Decides which connections are decoded into which table.
pub(super) async fn plan_tables(bag: &Bag, lake: &Lake, topics: &[String], schemas: &mut GroupSchemas) -> Result<Plan> {
    let mut plan = Plan {
        variants: Vec::new(),
        tables: Vec::new(),
        conn_variant: FxHashMap::default(),
        definition_errors: HashMap::new(),
    };
    // Group connections into variants by (topic, Arrow fields).
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for conn in &bag.connections {
        if !topics.is_empty() && !topics.contains(&conn.topic) {
            continue;
        }
        let compiled = MessageColumns::for_connection(conn);
        let (template, raw_reason) = match compiled {
            Ok(t) => (t, None),
            Err(e) => {
                plan.definition_errors.insert(conn.topic.clone(), e.to_string());
                (MessageColumns::empty(), Some((conn.msg_type.clone(), e.to_string())))
            }
        };
        let raw_only = raw_reason.is_some();
        let fields = template.fields();
        let key = (conn.topic.clone(), format!("{raw_only}{fields:?}"));
        let variant = *by_key.entry(key).or_insert_with(|| {
            plan.variants.push(Variant {
                topic: conn.topic.clone(),
                has_header_stamp: header_stamp_type(&fields).is_some(),
                template,
                raw_only,
                raw_reason,
                table: usize::MAX,
                md5: definition_md5(&conn.definition),
                storage: StorageChoices::default(),
            });
            plan.variants.len() - 1
        });
        plan.conn_variant.insert(conn.id, variant);
    }
    // Assign variants to tables, primary (most messages) first.
    let mut counts: HashMap<usize, u64> = HashMap::new();
    for (conn, v) in &plan.conn_variant {
        *counts.entry(*v).or_default() += bag.stats.get(conn).map(|s| s.messages).unwrap_or(0);
    }
    let mut order: Vec<usize> = (0..plan.variants.len()).collect();
    order.sort_by_key(|v| (plan.variants[*v].topic.clone(), std::cmp::Reverse(counts.get(v).copied().unwrap_or(0)), *v));
    for v in order {
        let variant = &plan.variants[v];
        let base = table_name(&variant.topic);
        let candidates = [base.clone(), format!("{base}__{}", &variant.md5[..8])];
        let incoming = delta::table_schema(&variant_fields(variant))?;
        let mut chosen = None;
        for name in candidates {
            let dir = lake.topic_table(&name);
            // Schema as planned in this run (other variants already assigned), else on disk.
            let planned = plan.tables.iter().position(|t| t.name == name);
            let current = match planned {
                Some(t) => Some(delta::table_schema(&union_fields(plan.tables[t].variants.iter().map(|&i| variant_fields(&plan.variants[i]))))?),
                None => schemas.schema(&name, &dir).await?,
            };
            let fits = current.as_ref().is_none_or(|c| delta::merge_schemas(c, &incoming).is_some());
            if fits {
                chosen = Some((name, dir, planned));
                break;
            }
        }
        let (name, dir, planned) =
            chosen.ok_or_else(|| Error::NoTableFits { table: lake.topic_table(&base).display(), topic: variant.topic.clone() })?;
        let table = match planned {
            Some(t) => t,
            None => {
                plan.tables.push(TableTarget { name, dir, variants: Vec::new() });
                plan.tables.len() - 1
            }
        };
        plan.tables[table].variants.push(v);
        plan.variants[v].table = table;
    }
    Ok(plan)
}

pub(super) fn definition_md5(definition: &str) -> String {
    Md5::digest(definition.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `stamp` type of a leading `header` struct field, if the message has one.
pub(super) fn header_stamp_type(fields: &Fields) -> Option<DataType> {
    let header = fields.iter().find(|f| f.name() == "header")?;
    let DataType::Struct(children) = header.data_type() else {
        return None;
    };
    let stamp = children.iter().find(|f| f.name() == "stamp")?;
    matches!(stamp.data_type(), DataType::Timestamp(_, _)).then(|| stamp.data_type().clone())
}

pub(super) fn log_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
}

/// All columns a variant writes (before the optional raw column), as they are stored.
pub(super) fn variant_fields(v: &Variant) -> Fields {
    let mut fields = vec![Field::new("log_time", log_time_type(), true)];
    if v.has_header_stamp {
        fields.push(Field::new("header_stamp", log_time_type(), true));
    }
    fields.extend(v.template.fields().iter().map(|f| f.as_ref().clone()));
    if v.raw_only {
        fields.push(Field::new(MESSAGE_TYPE_COLUMN, DataType::Utf8, true));
        fields.push(Field::new(DECODE_STATUS_COLUMN, DataType::Utf8, true));
        fields.push(Field::new(RAW_MESSAGE_COLUMN, DataType::Binary, true));
    }
    storage_fields(&fields.into())
}

/// Column of a raw-only topic's rows: the message type they were recorded as.
pub(super) const MESSAGE_TYPE_COLUMN: &str = "_message_type";

/// Column of a raw-only topic's rows: why they are not decoded (which definition is missing
/// or not understood, and how to provide it).
pub(super) const DECODE_STATUS_COLUMN: &str = "_decode_status";

pub(super) fn union_fields(all: impl Iterator<Item = Fields>) -> Fields {
    let mut out: Vec<Arc<Field>> = Vec::new();
    for fields in all {
        for f in fields.iter() {
            if !out.iter().any(|o| o.name() == f.name()) {
                out.push(f.clone());
            }
        }
    }
    out.into()
}

pub(super) fn table_fields(plan: &Plan, table: &TableTarget, parts: &[(PartFile, Fields)]) -> Fields {
    let planned = table.variants.iter().map(|&v| variant_fields(&plan.variants[v]));
    union_fields(planned.chain(parts.iter().map(|(_, f)| f.clone())))
}
