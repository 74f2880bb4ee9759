//! The embedded metadata store: an SQLite database file in the lake. Several processes may use
//! it at once (WAL journal, busy timeout).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{BagRecord, BatchRecord, MetaStore, SceneRecord};
use crate::error::{Error, Result};

/// SQLite-backed [`MetaStore`].
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // In WAL mode, NORMAL syncs at checkpoints instead of at every commit: a killed process
        // loses nothing; a power cut can lose the last records, and a bag whose record is lost
        // is ingested again (partitions are replaced, not appended). Set before the switch to
        // WAL, which then syncs less when it creates the store.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // One transaction for the whole schema: one journal sync instead of one per table.
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE IF NOT EXISTS bags (
                bag_file_prefix TEXT PRIMARY KEY,
                bag_file TEXT NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS bags_by_name ON bags(bag_file);
            CREATE TABLE IF NOT EXISTS claims (
                bag_file_prefix TEXT PRIMARY KEY,
                batch_id TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS batches (
                batch_id TEXT PRIMARY KEY,
                record TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS scenes (
                bag_file TEXT NOT NULL,
                scene_id TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (bag_file, scene_id)
            );
            COMMIT;",
        )?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Every JSON record a query returns (one `record` column), deserialized.
    fn list_records<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            let mut out = Vec::new();
            for json in rows {
                out.push(serde_json::from_str(&json?)?);
            }
            Ok(out)
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::MetaStore(format!("{}: connection lock poisoned", self.path.display())))?;
        f(&conn)
    }
}

impl MetaStore for SqliteStore {
    fn put_bag(&self, record: &BagRecord) -> Result<()> {
        let json = serde_json::to_string(record)?;
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO bags (bag_file_prefix, bag_file, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT(bag_file_prefix) DO UPDATE SET bag_file = excluded.bag_file, record = excluded.record",
                params![record.bag_file_prefix, record.bag_file, json],
            )?;
            // A re-ingested bag waits for a batch again.
            c.execute("DELETE FROM claims WHERE bag_file_prefix = ?1", params![record.bag_file_prefix])?;
            Ok(())
        })
    }

    fn get_bag(&self, bag_file_prefix: &str) -> Result<Option<BagRecord>> {
        self.with_conn(|c| {
            let json: Option<String> = c
                .query_row(
                    "SELECT record FROM bags WHERE bag_file_prefix = ?1",
                    params![bag_file_prefix],
                    |row| row.get(0),
                )
                .optional()?;
            json.map(|j| serde_json::from_str(&j).map_err(Error::from)).transpose()
        })
    }

    fn replace_scenes(&self, bag_file: &str, scenes: &[SceneRecord]) -> Result<()> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::MetaStore(format!("{}: connection lock poisoned", self.path.display())))?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM scenes WHERE bag_file = ?1", params![bag_file])?;
        for scene in scenes {
            tx.execute(
                "INSERT OR REPLACE INTO scenes (bag_file, scene_id, record) VALUES (?1, ?2, ?3)",
                params![scene.bag_file, scene.scene_id, serde_json::to_string(scene)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn list_scenes(&self) -> Result<Vec<SceneRecord>> {
        self.list_records("SELECT record FROM scenes ORDER BY bag_file, scene_id")
    }

    fn claim_batch(&self, size: usize, allow_partial: bool, lease: std::time::Duration) -> Result<Option<BatchRecord>> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::MetaStore(format!("{}: connection lock poisoned", self.path.display())))?;
        // IMMEDIATE takes the write lock first, so two processes never claim the same bag.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        release_abandoned(&tx, lease)?;
        let pending: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT bag_file_prefix FROM bags WHERE bag_file_prefix NOT IN (SELECT bag_file_prefix FROM claims)
                 ORDER BY bag_file, bag_file_prefix LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![size as i64], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if pending.is_empty() || (pending.len() < size && !allow_partial) {
            return Ok(None);
        }
        let record = BatchRecord::running(pending);
        for bag in &record.bags {
            tx.execute("INSERT INTO claims (bag_file_prefix, batch_id) VALUES (?1, ?2)", params![bag, record.batch_id])?;
        }
        tx.execute(
            "INSERT INTO batches (batch_id, record) VALUES (?1, ?2)",
            params![record.batch_id, serde_json::to_string(&record)?],
        )?;
        tx.commit()?;
        Ok(Some(record))
    }

    fn release_failed(&self) -> Result<usize> {
        self.with_conn(|c| {
            let released = c.execute(
                "DELETE FROM claims WHERE batch_id IN
                   (SELECT batch_id FROM batches WHERE json_extract(record, '$.status') = 'failed')",
                [],
            )?;
            Ok(released)
        })
    }

    fn finish_batch(&self, record: &BatchRecord) -> Result<()> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR REPLACE INTO batches (batch_id, record) VALUES (?1, ?2)",
                params![record.batch_id, serde_json::to_string(record)?],
            )?;
            Ok(())
        })
    }

    fn list_batches(&self) -> Result<Vec<BatchRecord>> {
        self.list_records("SELECT record FROM batches ORDER BY batch_id")
    }

    fn list_bags(&self) -> Result<Vec<BagRecord>> {
        self.list_records("SELECT record FROM bags ORDER BY bag_file")
    }
}

/// Marks running batches whose owner is gone as `abandoned` and releases their bags.
fn release_abandoned(tx: &rusqlite::Transaction<'_>, lease: std::time::Duration) -> Result<()> {
    let running: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT record FROM batches WHERE json_extract(record, '$.status') = 'running'
               AND batch_id IN (SELECT batch_id FROM claims)",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for json in running {
        let mut batch: BatchRecord = serde_json::from_str(&json)?;
        if !super::owner_is_gone(&batch, lease) {
            continue;
        }
        tracing::warn!(batch = %batch.batch_id, owner = %batch.owner, "batch owner is gone; its bags are claimed again");
        batch.status = "abandoned".into();
        batch.error = Some(format!("its process ({}) stopped before finishing; bags re-queued", batch.owner));
        tx.execute("DELETE FROM claims WHERE batch_id = ?1", params![batch.batch_id])?;
        tx.execute(
            "UPDATE batches SET record = ?2 WHERE batch_id = ?1",
            params![batch.batch_id, serde_json::to_string(&batch)?],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn record(prefix: &str, count: u64) -> BagRecord {
        BagRecord {
            bag_file_prefix: prefix.into(),
            bag_file: "b".into(),
            bag_file_bucket: None,
            size_bytes: 10,
            start_time_ns: Some(1),
            end_time_ns: Some(2),
            message_count: count,
            status: "ingested".into(),
            ingest_seconds: 0.5,
            ingested_at: "2026-01-01T00:00:00Z".into(),
            topics: BTreeMap::new(),
        }
    }

    #[test]
    fn put_replaces_and_get_returns_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
        store.put_bag(&record("/a/b.bag", 1)).unwrap();
        store.put_bag(&record("/a/b.bag", 5)).unwrap();
        assert_eq!(store.get_bag("/a/b.bag").unwrap().unwrap().message_count, 5);
        assert_eq!(store.list_bags().unwrap().len(), 1);
        assert!(store.get_bag("/nope").unwrap().is_none());
    }
}
