//! The embedded metadata store: an SQLite database file in the lake. Several processes may use
//! it at once (WAL journal, busy timeout).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{BagRecord, BatchRecord, MetaStore, SceneRecord};
use super::error::{MetaError, Result};

/// The tables of the store, created in one transaction (one sync instead of one per table).
const SCHEMA: &str = "BEGIN;
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
    COMMIT;";

/// Creates the store file at `path`, schema and WAL mode included, in one step: written to a
/// temporary file beside it with no journal and no syncs, synced once, then linked into place
/// unless another process created the store meanwhile (its file is then kept). A crash leaves
/// no store, or a whole one, never half of one. Creating it in place took five syncs, a
/// rollback journal and a few milliseconds before every first ingest into a new lake. Where the
/// file system cannot link, the store is left to [`SqliteStore::open`] to create in place.
fn create_store_file(path: &Path) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", uuid::Uuid::new_v4().simple()));
    let temporary = path.with_file_name(name);
    let created = write_new_store(&temporary).and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // No hard links here: `open` creates the store in place.
        Err(e) if path.exists() => Err(MetaError::io(path, e)),
        Err(_) => Ok(()),
    });
    // The store, if linked, keeps its other name; the temporary name goes either way.
    let _ = std::fs::remove_file(&temporary);
    created
}

/// The store's schema, in WAL mode, written to the new file `path` and synced.
fn write_new_store(path: &Path) -> Result<()> {
    let conn = Connection::open(path)?;
    // Nobody else sees this file until it is complete: no journal, no syncs until the end.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.close().map_err(|(_, e)| e)?;
    std::fs::File::open(path).and_then(|file| file.sync_all()).map_err(|e| MetaError::io(path, e))
}

/// SQLite-backed [`MetaStore`].
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| MetaError::io(dir, e))?;
        }
        if !path.exists() {
            create_store_file(path)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // In WAL mode, NORMAL syncs at checkpoints instead of at every commit: a killed process
        // loses nothing; a power cut can lose the last records, and a bag whose record is lost
        // is ingested again (partitions are replaced, not appended).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Already WAL when this process or another created the store; switches a store made
        // some other way.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Changes nothing (and syncs nothing) when the tables exist.
        conn.execute_batch(SCHEMA)?;
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
            .map_err(|_| MetaError::Poisoned { path: self.path.clone() })?;
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
            json.map(|j| serde_json::from_str(&j).map_err(MetaError::from)).transpose()
        })
    }

    fn replace_scenes(&self, bag_file: &str, scenes: &[SceneRecord]) -> Result<()> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| MetaError::Poisoned { path: self.path.clone() })?;
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
            .map_err(|_| MetaError::Poisoned { path: self.path.clone() })?;
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
            bag_name: "b".into(),
            source_uri: None,
            bag_file_bucket: None,
            size_bytes: 10,
            start_time_ns: Some(1),
            end_time_ns: Some(2),
            message_count: count,
            status: "ingested".into(),
            ingest_seconds: 0.5,
            ingested_at: "2026-01-01T00:00:00Z".into(),
            source_version: None,
            lake: None,
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

    /// Names in `dir` other than the store and SQLite's own files beside it.
    fn strays(dir: &Path) -> Vec<String> {
        let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
        names.filter(|n| !["m.sqlite", "m.sqlite-wal", "m.sqlite-shm"].contains(&n.as_str())).collect()
    }

    #[test]
    fn a_new_store_appears_whole_in_wal_mode_and_an_existing_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        // Eight openers race to create the store: every one ends up with the same store.
        std::thread::scope(|scope| {
            let openers: Vec<_> = (0..8)
                .map(|i| {
                    let path = &path;
                    scope.spawn(move || SqliteStore::open(path).unwrap().put_bag(&record(&format!("/x/{i}.bag"), i)).unwrap())
                })
                .collect();
            openers.into_iter().for_each(|o| o.join().unwrap());
        });
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.list_bags().unwrap().len(), 8, "no opener replaced another's store");
        assert!(strays(dir.path()).is_empty(), "{:?}", strays(dir.path()));
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }
}
