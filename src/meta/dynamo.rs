//! The DynamoDB metadata store, for running on AWS: the same [`MetaStore`] contract as the
//! SQLite store, on three tables whose items keep the attributes existing consumers of the
//! pipeline we replace read (`Rosbag-BagFile-Metadata`, `Rosbag-EMR-Batch-Metadata`,
//! `Rosbag-Scene-Metadata`), plus a `record` attribute holding our full record as JSON.
//!
//! Batch claims are conditional writes (`claimed_by` set only where it does not exist), so
//! `scenes batch` tasks on different machines never claim the same bag. Throttling and 5xx
//! answers are retried by the SDK (standard mode, `max_attempts`); `UnprocessedItems` of
//! `BatchWriteItem` are re-sent with backoff until every item is written.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use super::{BagRecord, BatchRecord, MetaStore, SceneRecord};
use super::error::{MetaError, Result};

type Item = HashMap<String, AttributeValue>;

/// Sort key value of our batch items in the batch table.
const BATCH_ITEM_NAME: &str = "scenes_batch";
/// Items per BatchWriteItem call (the service limit).
const BATCH_WRITE_LIMIT: usize = 25;
/// Re-sends of unprocessed items before giving up with an error (never silently).
const UNPROCESSED_ROUNDS: u32 = 40;

/// Table names and client settings.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    pub bags_table: String,
    pub batches_table: String,
    pub scenes_table: String,
    /// Endpoint override (DynamoDB Local, a proxy); `None` = the region's endpoint, or
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` when set.
    pub endpoint_url: Option<String>,
    /// Region override; `None` = the standard chain (env, profile, IMDS).
    pub region: Option<String>,
    /// Attempts per request for throttling and server errors (standard retry mode).
    pub max_attempts: u32,
}

/// [`MetaStore`] on DynamoDB.
pub struct DynamoStore {
    client: Client,
    settings: DynamoSettings,
    runtime: tokio::runtime::Runtime,
}

impl DynamoStore {
    /// Connects with credentials and region from the standard AWS chain (environment, profile,
    /// SSO, ECS/IRSA roles, IMDS).
    pub fn connect(settings: DynamoSettings) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| MetaError::DynamoClient { request: "client runtime".into(), reason: e.to_string() })?;
        let s = settings.clone();
        let client = runtime.block_on(async move {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(region) = s.region {
                loader = loader.region(aws_config::Region::new(region));
            }
            let sdk = loader.load().await;
            let mut conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(s.max_attempts.max(1)));
            if let Some(url) = s.endpoint_url {
                conf = conf.endpoint_url(url);
            }
            Client::from_conf(conf.build())
        });
        Ok(DynamoStore {
            client,
            settings,
            runtime,
        })
    }

    /// Runs `fut` on the store's runtime and waits for it, from sync or async callers alike.
    fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let handle = self.runtime.handle().clone();
        let wait = move || {
            let (tx, rx) = std::sync::mpsc::channel();
            handle.spawn(async move {
                let _ = tx.send(fut.await);
            });
            rx.recv()
        };
        let inside_multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let out = if inside_multi_thread { tokio::task::block_in_place(wait) } else { wait() };
        out.map_err(|_| MetaError::DynamoClient { request: "request task".into(), reason: "stopped before answering".into() })
    }

    /// Creates the three tables when missing (on-demand billing) and waits until they are active.
    pub fn create_missing_tables(&self) -> Result<Vec<String>> {
        let client = self.client.clone();
        let s = self.settings.clone();
        self.block(async move {
            let mut created = Vec::new();
            let existing = list_tables(&client).await?;
            let specs = [
                (s.bags_table.clone(), "bag_file_prefix", None),
                (s.batches_table.clone(), "BatchId", Some("Name")),
                (s.scenes_table.clone(), "bag_file", Some("scene_id")),
            ];
            for (table, hash, range) in specs {
                if existing.contains(&table) {
                    continue;
                }
                create_table(&client, &table, hash, range).await?;
                created.push(table);
            }
            Ok(created)
        })?
    }

    fn bag_item(&self, record: &BagRecord) -> Result<Item> {
        let mut item = Item::new();
        item.insert("bag_file_prefix".into(), s(&record.bag_file_prefix));
        item.insert("bag_file".into(), s(&record.bag_file));
        if let Some(bucket) = &record.bag_file_bucket {
            item.insert("bag_file_bucket".into(), s(bucket));
        }
        // The reference item: one attribute per topic, a map of strings.
        for (topic, t) in &record.topics {
            let mut m = HashMap::new();
            m.insert("Types".to_string(), s(&t.msg_type));
            m.insert("Message Count".to_string(), s(&t.message_count.to_string()));
            m.insert("Frequency".to_string(), s(&t.frequency_hz.map(|f| f.to_string()).unwrap_or_else(|| "None".into())));
            item.insert(topic.clone(), AttributeValue::M(m));
        }
        item.insert("status".into(), s(&record.status));
        item.insert("record".into(), s(&serde_json::to_string(record)?));
        Ok(item)
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn sdk_error(what: &str, e: impl std::fmt::Display + ProvideErrorMetadata) -> MetaError {
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().map(str::to_string).unwrap_or_else(|| e.to_string());
    MetaError::Dynamo { request: what.to_string(), code, message }
}

fn record_of<T: serde::de::DeserializeOwned>(item: &Item, table: &str) -> Result<T> {
    match item.get("record") {
        Some(AttributeValue::S(json)) => Ok(serde_json::from_str(json)?),
        _ => Err(MetaError::NotOurItem { table: table.to_string() }),
    }
}

async fn list_tables(client: &Client) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = client
            .list_tables()
            .set_exclusive_start_table_name(start.clone())
            .send()
            .await
            .map_err(|e| sdk_error("ListTables", e.into_service_error()))?;
        names.extend(out.table_names().iter().cloned());
        match out.last_evaluated_table_name() {
            Some(last) => start = Some(last.to_string()),
            None => return Ok(names),
        }
    }
}

async fn create_table(client: &Client, table: &str, hash: &str, range: Option<&str>) -> Result<()> {
    let mut req = client.create_table().table_name(table).billing_mode(BillingMode::PayPerRequest);
    for (name, key_type) in [(Some(hash), KeyType::Hash), (range, KeyType::Range)] {
        let Some(name) = name else { continue };
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| MetaError::DynamoClient { request: "request builder".into(), reason: e.to_string() })?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(key_type)
                    .build()
                    .map_err(|e| MetaError::DynamoClient { request: "request builder".into(), reason: e.to_string() })?,
            );
    }
    req.send().await.map_err(|e| sdk_error(&format!("CreateTable {table}"), e.into_service_error()))?;
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("DescribeTable {table}"), e.into_service_error()))?;
        if out.table().and_then(|t| t.table_status()).is_some_and(|s| s.as_str() == "ACTIVE") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(MetaError::TableNotActive { table: table.to_string() })
}

/// Every item of a table (paginated scan).
async fn scan_all(client: &Client, table: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(&format!("Scan {table}"), e.into_service_error()))?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(items),
        }
    }
}

/// Writes `requests` with BatchWriteItem, 25 at a time, re-sending unprocessed items with
/// exponential backoff until all are written.
async fn batch_write(client: &Client, table: &str, requests: Vec<WriteRequest>) -> Result<()> {
    for group in requests.chunks(BATCH_WRITE_LIMIT) {
        let mut pending = group.to_vec();
        let mut round = 0u32;
        while !pending.is_empty() {
            if round > 0 {
                let backoff = Duration::from_millis(25u64 << round.min(7));
                tokio::time::sleep(backoff).await;
            }
            if round >= UNPROCESSED_ROUNDS {
                return Err(MetaError::Unprocessed { table: table.to_string(), unprocessed: pending.len(), rounds: UNPROCESSED_ROUNDS as usize });
            }
            let out = client
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await
                .map_err(|e| sdk_error(&format!("BatchWriteItem {table}"), e.into_service_error()))?;
            pending = out
                .unprocessed_items()
                .and_then(|u| u.get(table))
                .cloned()
                .unwrap_or_default();
            if !pending.is_empty() {
                tracing::debug!(table, unprocessed = pending.len(), round, "BatchWriteItem left items unprocessed; re-sending");
            }
            round += 1;
        }
    }
    Ok(())
}

fn put_request(item: Item) -> Result<WriteRequest> {
    let put = PutRequest::builder().set_item(Some(item)).build().map_err(|e| MetaError::DynamoClient { request: "request builder".into(), reason: e.to_string() })?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete_request(key: Item) -> Result<WriteRequest> {
    let del = DeleteRequest::builder().set_key(Some(key)).build().map_err(|e| MetaError::DynamoClient { request: "request builder".into(), reason: e.to_string() })?;
    Ok(WriteRequest::builder().delete_request(del).build())
}

/// The reference scene item plus our attributes and the full record.
fn scene_item(scene: &SceneRecord) -> Result<Item> {
    let mut item = Item::new();
    item.insert("bag_file".into(), s(&scene.bag_file));
    item.insert("scene_id".into(), s(&scene.scene_id));
    item.insert("bag_file_prefix".into(), s(&scene.bag_file_prefix));
    if let Some(bucket) = &scene.bag_file_bucket {
        item.insert("bag_file_bucket".into(), s(bucket));
    }
    item.insert("start_time".into(), n(scene.start_time));
    if let Some(end) = scene.end_time {
        item.insert("end_time".into(), n(end));
    }
    if let Some(len) = scene.scene_length {
        item.insert("scene_length".into(), n(len));
    }
    item.insert("num_people_in_scene_start".into(), n(scene.num_people_in_scene_start));
    item.insert("max_people_in_scene".into(), n(scene.max_people_in_scene));
    item.insert("topics_analyzed".into(), s(&scene.topics_analyzed));
    item.insert("rule".into(), s(&scene.rule));
    item.insert("scenario".into(), s(&scene.scenario));
    item.insert("record".into(), s(&serde_json::to_string(scene)?));
    Ok(item)
}

fn batch_item(batch: &BatchRecord) -> Result<Item> {
    let mut item = Item::new();
    item.insert("BatchId".into(), s(&batch.batch_id));
    item.insert("Name".into(), s(BATCH_ITEM_NAME));
    item.insert("status".into(), s(&batch.status));
    item.insert("owner".into(), s(&batch.owner));
    item.insert("bags".into(), AttributeValue::L(batch.bags.iter().map(|b| s(b)).collect()));
    item.insert("record".into(), s(&serde_json::to_string(batch)?));
    Ok(item)
}

fn bag_key(prefix: &str) -> Item {
    HashMap::from([("bag_file_prefix".to_string(), s(prefix))])
}

/// Sets `claimed_by` on a bag that has none. `Ok(false)`: another batch claimed it first.
async fn claim_bag(client: &Client, table: &str, prefix: &str, batch_id: &str) -> Result<bool> {
    let out = client
        .update_item()
        .table_name(table)
        .set_key(Some(bag_key(prefix)))
        .update_expression("SET claimed_by = :batch")
        .condition_expression("attribute_exists(bag_file_prefix) AND attribute_not_exists(claimed_by)")
        .expression_attribute_values(":batch", s(batch_id))
        .send()
        .await;
    match out {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = e.into_service_error();
            if e.is_conditional_check_failed_exception() {
                Ok(false)
            } else {
                Err(sdk_error(&format!("UpdateItem {table} (claim)"), e))
            }
        }
    }
}

/// Removes `claimed_by` from a bag if (and only if) `batch_id` holds it.
async fn release_bag(client: &Client, table: &str, prefix: &str, batch_id: &str) -> Result<()> {
    let out = client
        .update_item()
        .table_name(table)
        .set_key(Some(bag_key(prefix)))
        .update_expression("REMOVE claimed_by")
        .condition_expression("claimed_by = :batch")
        .expression_attribute_values(":batch", s(batch_id))
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = e.into_service_error();
            if e.is_conditional_check_failed_exception() {
                Ok(())
            } else {
                Err(sdk_error(&format!("UpdateItem {table} (release)"), e))
            }
        }
    }
}

async fn put_batch(client: &Client, table: &str, batch: &BatchRecord) -> Result<()> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(batch_item(batch)?))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("PutItem {table}"), e.into_service_error()))?;
    Ok(())
}

/// Marks running batches whose owner is gone as abandoned and releases every bag they hold
/// (found by `claimed_by`, so a crash between claiming and recording a bag loses nothing).
async fn release_abandoned(client: &Client, s: &DynamoSettings, lease: Duration) -> Result<()> {
    let mut abandoned = std::collections::HashSet::new();
    for item in scan_all(client, &s.batches_table).await? {
        if item.get("Name") != Some(&AttributeValue::S(BATCH_ITEM_NAME.into())) {
            continue;
        }
        let mut batch: BatchRecord = record_of(&item, &s.batches_table)?;
        if batch.status != "running" || !super::owner_is_gone(&batch, lease) {
            continue;
        }
        tracing::warn!(batch = %batch.batch_id, owner = %batch.owner, "batch owner is gone; its bags are claimed again");
        batch.status = "abandoned".into();
        batch.error = Some(format!("its process ({}) stopped before finishing; bags re-queued", batch.owner));
        put_batch(client, &s.batches_table, &batch).await?;
        abandoned.insert(batch.batch_id);
    }
    if abandoned.is_empty() {
        return Ok(());
    }
    for item in scan_all(client, &s.bags_table).await? {
        if let (Some(AttributeValue::S(prefix)), Some(AttributeValue::S(owner))) = (item.get("bag_file_prefix"), item.get("claimed_by")) {
            if abandoned.contains(owner) {
                release_bag(client, &s.bags_table, prefix, owner).await?;
            }
        }
    }
    Ok(())
}

impl MetaStore for DynamoStore {
    fn put_bag(&self, record: &BagRecord) -> Result<()> {
        // A put replaces the whole item, `claimed_by` included: a re-ingested bag waits again.
        let item = self.bag_item(record)?;
        let (client, table) = (self.client.clone(), self.settings.bags_table.clone());
        self.block(async move {
            client
                .put_item()
                .table_name(&table)
                .set_item(Some(item))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&format!("PutItem {table}"), e.into_service_error()))
        })?
    }

    fn get_bag(&self, bag_file_prefix: &str) -> Result<Option<BagRecord>> {
        let (client, table, key) = (self.client.clone(), self.settings.bags_table.clone(), bag_key(bag_file_prefix));
        self.block(async move {
            let out = client
                .get_item()
                .table_name(&table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("GetItem {table}"), e.into_service_error()))?;
            out.item().map(|i| record_of(i, &table)).transpose()
        })?
    }

    fn list_bags(&self) -> Result<Vec<BagRecord>> {
        let (client, table) = (self.client.clone(), self.settings.bags_table.clone());
        let mut bags: Vec<BagRecord> = self.block(async move {
            let items = scan_all(&client, &table).await?;
            items.iter().map(|i| record_of(i, &table)).collect::<Result<Vec<_>>>()
        })??;
        bags.sort_by(|a, b| (&a.bag_file, &a.bag_file_prefix).cmp(&(&b.bag_file, &b.bag_file_prefix)));
        Ok(bags)
    }

    fn replace_scenes(&self, bag_file: &str, scenes: &[SceneRecord]) -> Result<()> {
        let items = scenes.iter().map(scene_item).collect::<Result<Vec<_>>>()?;
        let new_ids: std::collections::HashSet<String> = scenes.iter().map(|s| s.scene_id.clone()).collect();
        let (client, table, bag_file) = (self.client.clone(), self.settings.scenes_table.clone(), bag_file.to_string());
        self.block(async move {
            // New items first, then the old ones that are gone: a reader never sees the bag
            // without its scenes.
            let old = query_scene_ids(&client, &table, &bag_file).await?;
            let puts = items.into_iter().map(put_request).collect::<Result<Vec<_>>>()?;
            batch_write(&client, &table, puts).await?;
            let deletes = old
                .into_iter()
                .filter(|id| !new_ids.contains(id))
                .map(|id| delete_request(HashMap::from([("bag_file".to_string(), s(&bag_file)), ("scene_id".to_string(), s(&id))])))
                .collect::<Result<Vec<_>>>()?;
            batch_write(&client, &table, deletes).await
        })?
    }

    fn list_scenes(&self) -> Result<Vec<SceneRecord>> {
        let (client, table) = (self.client.clone(), self.settings.scenes_table.clone());
        let mut scenes: Vec<SceneRecord> = self.block(async move {
            let items = scan_all(&client, &table).await?;
            items.iter().map(|i| record_of(i, &table)).collect::<Result<Vec<_>>>()
        })??;
        scenes.sort_by(|a, b| (&a.bag_file, &a.scene_id).cmp(&(&b.bag_file, &b.scene_id)));
        Ok(scenes)
    }

    fn claim_batch(&self, size: usize, allow_partial: bool, lease: Duration) -> Result<Option<BatchRecord>> {
        let (client, settings) = (self.client.clone(), self.settings.clone());
        self.block(async move {
            release_abandoned(&client, &settings, lease).await?;
            let mut waiting: Vec<(String, String)> = scan_all(&client, &settings.bags_table)
                .await?
                .iter()
                .filter(|i| !i.contains_key("claimed_by"))
                .filter_map(|i| match (i.get("bag_file"), i.get("bag_file_prefix")) {
                    (Some(AttributeValue::S(f)), Some(AttributeValue::S(p))) => Some((f.clone(), p.clone())),
                    _ => None,
                })
                .collect();
            waiting.sort();
            if waiting.is_empty() || (waiting.len() < size && !allow_partial) {
                return Ok(None);
            }
            let mut batch = BatchRecord::running(Vec::new());
            // Record the batch first so that a crash after claiming leaves a batch to abandon.
            put_batch(&client, &settings.batches_table, &batch).await?;
            for (_, prefix) in waiting {
                if batch.bags.len() == size {
                    break;
                }
                if claim_bag(&client, &settings.bags_table, &prefix, &batch.batch_id).await? {
                    batch.bags.push(prefix);
                    put_batch(&client, &settings.batches_table, &batch).await?;
                }
            }
            if batch.bags.is_empty() || (batch.bags.len() < size && !allow_partial) {
                // Others took the bags meanwhile: give back what we got.
                for bag in &batch.bags {
                    release_bag(&client, &settings.bags_table, bag, &batch.batch_id).await?;
                }
                batch.status = "abandoned".into();
                batch.error = Some("not enough bags left to claim".into());
                put_batch(&client, &settings.batches_table, &batch).await?;
                return Ok(None);
            }
            Ok(Some(batch))
        })?
    }

    fn release_failed(&self) -> Result<usize> {
        let (client, settings) = (self.client.clone(), self.settings.clone());
        self.block(async move {
            let mut released = 0;
            for item in scan_all(&client, &settings.batches_table).await? {
                if item.get("status") != Some(&AttributeValue::S("failed".into())) {
                    continue;
                }
                let batch: BatchRecord = record_of(&item, &settings.batches_table)?;
                for bag in &batch.bags {
                    release_bag(&client, &settings.bags_table, bag, &batch.batch_id).await?;
                    released += 1;
                }
            }
            Ok(released)
        })?
    }

    fn finish_batch(&self, record: &BatchRecord) -> Result<()> {
        let (client, table, record) = (self.client.clone(), self.settings.batches_table.clone(), record.clone());
        self.block(async move { put_batch(&client, &table, &record).await })?
    }

    fn list_batches(&self) -> Result<Vec<BatchRecord>> {
        let (client, table) = (self.client.clone(), self.settings.batches_table.clone());
        let mut batches: Vec<BatchRecord> = self.block(async move {
            let items = scan_all(&client, &table).await?;
            items
                .iter()
                .filter(|i| i.get("Name") == Some(&AttributeValue::S(BATCH_ITEM_NAME.into())))
                .map(|i| record_of(i, &table))
                .collect::<Result<Vec<_>>>()
        })??;
        batches.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
        Ok(batches)
    }
}

async fn query_scene_ids(client: &Client, table: &str, bag_file: &str) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("bag_file = :b")
            .expression_attribute_values(":b", s(bag_file))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(&format!("Query {table}"), e.into_service_error()))?;
        for item in out.items() {
            if let Some(AttributeValue::S(id)) = item.get("scene_id") {
                ids.push(id.clone());
            }
        }
        match out.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(ids),
        }
    }
}
