//! The embedded metadata store: an SQLite database file in the lake. Several processes may use
//! it at once (WAL journal, busy timeout).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{BagRecord, MetaStore};
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
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bags (
                bag_file_prefix TEXT PRIMARY KEY,
                bag_file TEXT NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS bags_by_name ON bags(bag_file);",
        )?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
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

    fn list_bags(&self) -> Result<Vec<BagRecord>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT record FROM bags ORDER BY bag_file")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            let mut out = Vec::new();
            for json in rows {
                out.push(serde_json::from_str(&json?)?);
            }
            Ok(out)
        })
    }
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
