//! A metadata store opened on a worker thread of the async runtime while ingest reads its first
//! bag, so that creating the SQLite file of a new lake (and syncing it once) does not delay
//! reading the bag.
//!
//! Ingest calls [`MetaStore::ready`] before it commits anything, so a store that cannot be
//! opened still stops a run before its tables change (and the part files it wrote are
//! deleted).

use std::sync::{Mutex, OnceLock};

use super::{BagRecord, BatchRecord, MetaStore, SceneRecord};
use super::error::{MetaError, Result};

/// What opening a store gives: the store, or why it could not be opened.
type Opened = std::result::Result<Box<dyn MetaStore>, String>;

/// A [`MetaStore`] whose opening runs on a worker thread of the async runtime (one that
/// exists already: a new thread costs a fresh allocator heap); every call waits for it.
pub struct PendingStore {
    opening: Mutex<Option<std::sync::mpsc::Receiver<Opened>>>,
    opened: OnceLock<Opened>,
}

impl PendingStore {
    /// Starts `open` on `runtime`.
    pub fn open_in_background<F>(runtime: &tokio::runtime::Handle, open: F) -> PendingStore
    where
        F: FnOnce() -> Opened + Send + 'static,
    {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        // A plain task, though opening blocks (for milliseconds; longer only while another
        // process holds the store's lock): `spawn_blocking` would start a thread, and ingest
        // drives its own async work with `block_on` on the calling thread, while the runtime
        // keeps a second worker for spawned tasks.
        runtime.spawn(async move {
            // The receiver is gone only if the store was never needed.
            let _ = sender.send(open());
        });
        PendingStore { opening: Mutex::new(Some(receiver)), opened: OnceLock::new() }
    }

    /// The opened store, waiting for the task opening it if it is still at work.
    fn store(&self) -> Result<&dyn MetaStore> {
        let opened = self.opened.get_or_init(|| {
            let receiver = self.opening.lock().ok().and_then(|mut r| r.take());
            match receiver {
                Some(receiver) => receiver.recv().unwrap_or_else(|_| Err("the task opening it stopped".into())),
                None => Err("it was not opened".into()),
            }
        });
        match opened {
            Ok(store) => Ok(store.as_ref()),
            Err(why) => Err(MetaError::NotOpened(why.clone())),
        }
    }
}

impl MetaStore for PendingStore {
    fn ready(&self) -> Result<()> {
        self.store().map(|_| ())
    }

    fn put_bag(&self, record: &BagRecord) -> Result<()> {
        self.store()?.put_bag(record)
    }

    fn get_bag(&self, bag_file_prefix: &str) -> Result<Option<BagRecord>> {
        self.store()?.get_bag(bag_file_prefix)
    }

    fn list_bags(&self) -> Result<Vec<BagRecord>> {
        self.store()?.list_bags()
    }

    fn replace_scenes(&self, bag_file: &str, scenes: &[SceneRecord]) -> Result<()> {
        self.store()?.replace_scenes(bag_file, scenes)
    }

    fn list_scenes(&self) -> Result<Vec<SceneRecord>> {
        self.store()?.list_scenes()
    }

    fn claim_batch(&self, size: usize, allow_partial: bool, lease: std::time::Duration) -> Result<Option<BatchRecord>> {
        self.store()?.claim_batch(size, allow_partial, lease)
    }

    fn release_failed(&self) -> Result<usize> {
        self.store()?.release_failed()
    }

    fn finish_batch(&self, record: &BatchRecord) -> Result<()> {
        self.store()?.finish_batch(record)
    }

    fn list_batches(&self) -> Result<Vec<BatchRecord>> {
        self.store()?.list_batches()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::sqlite::SqliteStore;

    #[test]
    fn calls_wait_for_the_store_opened_on_the_other_thread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metadata.sqlite");
        let path = file.clone();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let store = PendingStore::open_in_background(runtime.handle(), move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            SqliteStore::open(&path).map(|s| Box::new(s) as Box<dyn MetaStore>).map_err(|e| e.to_string())
        });
        store.ready().unwrap();
        assert!(store.list_bags().unwrap().is_empty());
        assert!(file.exists(), "the store was created by the opening task");
    }

    #[test]
    fn a_store_that_cannot_be_opened_fails_every_call_with_the_reason() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let store = PendingStore::open_in_background(runtime.handle(), || Err("no such table bags_v2 in region eu-west-9".into()));
        let error = store.ready().unwrap_err().to_string();
        assert!(error.contains("metadata store") && error.contains("eu-west-9"), "{error}");
        let again = store.list_bags().unwrap_err().to_string();
        assert!(again.contains("eu-west-9"), "{again}");
    }
}
