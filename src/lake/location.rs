//! Where a table's files live: a local directory, or a prefix in an object store (S3). Everything
//! the lake does with files — write a part, read parts back, delete a replaced part, list tables —
//! goes through a [`TableLocation`], so the same Delta tables work on disk and on S3.
//!
//! Local locations use plain file I/O (the fast path every benchmark measures); remote ones use
//! `object_store`, whose client retries throttling and server errors with exponential backoff.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use url::Url;

use crate::lake::error::{LakeError, Result};
pub use crate::source::RemoteStore;

/// Part files larger than this are uploaded in several parts of `MULTIPART_PART` bytes.
const MULTIPART_THRESHOLD: usize = 32 * 1024 * 1024;
const MULTIPART_PART: usize = 16 * 1024 * 1024;

/// A table directory (or the lake root) on disk or in an object store.
#[derive(Clone, Debug)]
pub struct TableLocation {
    /// `file:///abs/dir/` or `s3://bucket/prefix/`, always ending in `/`.
    url: Url,
    place: Place,
    /// Delta tables this process has loaded below the root, shared by every location made
    /// from it with [`TableLocation::child`].
    loaded: LoadedTables,
}

/// Delta tables loaded in this process, by URL. A later load of the same table reads only
/// the commits made since (by this process or another), not its whole log again: ingesting
/// many bags in one run loads each table once.
#[derive(Clone, Default)]
struct LoadedTables(Arc<std::sync::Mutex<HashMap<String, deltalake::DeltaTable>>>);

impl std::fmt::Debug for LoadedTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadedTables")
    }
}

#[derive(Clone, Debug)]
enum Place {
    Local(PathBuf),
    Remote { remote: RemoteStore, prefix: ObjectPath },
}

impl TableLocation {
    /// A local directory (absolute, or made absolute from the current directory).
    pub fn local(dir: &Path) -> Result<TableLocation> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| LakeError::io(dir, e))?.join(dir)
        };
        let url = Url::from_directory_path(&dir).map_err(|_| LakeError::location(dir.display().to_string(), "not a usable directory path"))?;
        Ok(TableLocation { url, place: Place::Local(dir), loaded: LoadedTables::default() })
    }

    /// A prefix (`a/b`, no leading or trailing `/`) in a remote store.
    pub fn remote(remote: RemoteStore, prefix: &str) -> Result<TableLocation> {
        let prefix = prefix.trim_matches('/');
        let url = if prefix.is_empty() {
            remote.bucket_url.clone()
        } else {
            remote.bucket_url.join(&format!("{prefix}/")).map_err(|e| LakeError::location(format!("{}{prefix}", remote.bucket_url), e.to_string()))?
        };
        let prefix = ObjectPath::parse(prefix).map_err(|e| LakeError::location(url.to_string(), e.to_string()))?;
        Ok(TableLocation {
            url,
            place: Place::Remote { remote, prefix },
            loaded: LoadedTables::default(),
        })
    }

    /// The location `name` below this one (`name` may contain `/`).
    pub fn child(&self, name: &str) -> TableLocation {
        let name = name.trim_matches('/');
        match &self.place {
            Place::Local(dir) => {
                let dir = dir.join(name);
                let url = Url::from_directory_path(&dir).unwrap_or_else(|_| self.url.clone());
                TableLocation { url, place: Place::Local(dir), loaded: self.loaded.clone() }
            }
            Place::Remote { remote, prefix } => {
                let joined = name.split('/').fold(prefix.clone(), |p, part| p.join(part));
                let url = remote.bucket_url.join(&format!("{joined}/")).unwrap_or_else(|_| self.url.clone());
                TableLocation {
                    url,
                    place: Place::Remote {
                        remote: remote.clone(),
                        prefix: joined,
                    },
                    loaded: self.loaded.clone(),
                }
            }
        }
    }

    /// The Delta table at this location as this process last loaded it, if it did.
    pub fn loaded_table(&self) -> Option<deltalake::DeltaTable> {
        self.loaded.0.lock().ok()?.get(self.url.as_str()).cloned()
    }

    /// Keeps `table` as the latest loaded state of the Delta table at this location.
    pub fn keep_loaded_table(&self, table: &deltalake::DeltaTable) {
        if let Ok(mut tables) = self.loaded.0.lock() {
            tables.insert(self.url.to_string(), table.clone());
        }
    }

    /// URL of the location (what Delta opens), ending in `/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The directory, when the location is local.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Local(dir) => Some(dir),
            Place::Remote { .. } => None,
        }
    }

    /// The store, when the location is remote.
    pub fn remote_store(&self) -> Option<&RemoteStore> {
        match &self.place {
            Place::Local(_) => None,
            Place::Remote { remote, .. } => Some(remote),
        }
    }

    /// Storage options Delta needs to open a table here (none for local tables).
    pub fn storage_options(&self) -> HashMap<String, String> {
        self.remote_store().map(|r| r.options.clone()).unwrap_or_default()
    }

    /// How to name the location in messages: the directory or the URL.
    pub fn display(&self) -> String {
        match &self.place {
            Place::Local(dir) => dir.display().to_string(),
            Place::Remote { .. } => self.url.to_string(),
        }
    }

    /// Path inside the bucket of a file `relative` to this location.
    pub fn object_path(&self, relative: &str) -> ObjectPath {
        match &self.place {
            Place::Local(dir) => ObjectPath::from(dir.join(relative).to_string_lossy().trim_start_matches('/')),
            Place::Remote { prefix, .. } => relative.split('/').filter(|p| !p.is_empty()).fold(prefix.clone(), |p, part| p.join(part)),
        }
    }

    fn remote_error(&self, relative: &str, e: impl std::fmt::Display) -> LakeError {
        LakeError::location(format!("{}{relative}", self.url), e.to_string())
    }

    /// Creates the directory of a local location (nothing to do on object stores).
    pub fn ensure_exists(&self) -> Result<()> {
        if let Place::Local(dir) = &self.place {
            std::fs::create_dir_all(dir).map_err(|e| LakeError::io(dir, e))?;
        }
        Ok(())
    }

    /// Whether a Delta table exists here: its `_delta_log` holds at least one commit or
    /// checkpoint. A log without either is what a process killed while creating the table leaves
    /// behind; it counts as no table, so the next commit creates it. Stops at the first one
    /// (every query asks this of every table; a log can hold thousands of versions).
    pub async fn has_delta_log(&self) -> Result<bool> {
        match &self.place {
            Place::Local(dir) => {
                let log = dir.join("_delta_log");
                let entries = match std::fs::read_dir(&log) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(LakeError::io(&log, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| LakeError::io(&log, e))?;
                    if is_log_version_file(&entry.file_name().to_string_lossy()) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Place::Remote { remote, prefix } => {
                let log = prefix.clone().join("_delta_log");
                // Listed in key order: the oldest commit or checkpoint comes first.
                let mut listing = remote.store.list(Some(&log));
                while let Some(item) = listing.next().await {
                    let meta = item.map_err(|e| self.remote_error("_delta_log/", e))?;
                    if meta.location.filename().is_some_and(is_log_version_file) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// Names of the commits and checkpoints in this table's `_delta_log` that sort after
    /// `after` (all of them without it), in version order. A missing log lists as empty.
    /// (A version's own files sort after its bare 20 digits.)
    pub async fn list_delta_log(&self, after: Option<&str>) -> Result<Vec<String>> {
        let mut names = Vec::new();
        match &self.place {
            Place::Local(dir) => {
                let log = dir.join("_delta_log");
                let entries = match std::fs::read_dir(&log) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                    Err(e) => return Err(LakeError::io(&log, e)),
                };
                for entry in entries {
                    let name = entry.map_err(|e| LakeError::io(&log, e))?.file_name().to_string_lossy().into_owned();
                    if is_log_version_file(&name) && after.is_none_or(|after| name.as_str() > after) {
                        names.push(name);
                    }
                }
            }
            Place::Remote { remote, prefix } => {
                let log = prefix.clone().join("_delta_log");
                let mut listing = match after {
                    Some(after) => remote.store.list_with_offset(Some(&log), &log.clone().join(after)),
                    None => remote.store.list(Some(&log)),
                };
                while let Some(item) = listing.next().await {
                    let meta = item.map_err(|e| self.remote_error("_delta_log/", e))?;
                    if let Some(name) = meta.location.filename().filter(|name| is_log_version_file(name)) {
                        names.push(name.to_string());
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The whole content of the file `relative`.
    pub async fn read_bytes(&self, relative: &str) -> Result<bytes::Bytes> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(relative);
                std::fs::read(&path).map(bytes::Bytes::from).map_err(|e| LakeError::io(&path, e))
            }
            Place::Remote { remote, .. } => {
                let got = remote.store.get(&self.object_path(relative)).await.map_err(|e| self.remote_error(relative, e))?;
                got.bytes().await.map_err(|e| self.remote_error(relative, e))
            }
        }
    }

    /// Names of the sub-directories (common prefixes) of this location.
    pub async fn list_children(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        match &self.place {
            Place::Local(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                    Err(e) => return Err(LakeError::io(dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| LakeError::io(dir, e))?;
                    if entry.path().is_dir() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Place::Remote { remote, prefix } => {
                let listing = remote.store.list_with_delimiter(Some(prefix)).await.map_err(|e| self.remote_error("", e))?;
                for p in listing.common_prefixes {
                    if let Some(last) = p.filename() {
                        names.push(last.to_string());
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every file below this location, as (path relative to it with `/`, last modified).
    pub async fn list_files(&self) -> Result<Vec<(String, std::time::SystemTime)>> {
        match &self.place {
            Place::Local(dir) => {
                let mut out = Vec::new();
                let mut pending = vec![dir.clone()];
                while let Some(current) = pending.pop() {
                    let entries = match std::fs::read_dir(&current) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(LakeError::io(&current, e)),
                    };
                    for entry in entries {
                        let entry = entry.map_err(|e| LakeError::io(&current, e))?;
                        let meta = entry.metadata().map_err(|e| LakeError::io(entry.path(), e))?;
                        if meta.is_dir() {
                            pending.push(entry.path());
                        } else if let Ok(relative) = entry.path().strip_prefix(dir) {
                            let modified = meta.modified().map_err(|e| LakeError::io(entry.path(), e))?;
                            out.push((relative.to_string_lossy().replace('\\', "/"), modified));
                        }
                    }
                }
                Ok(out)
            }
            Place::Remote { remote, prefix } => {
                let mut out = Vec::new();
                let mut listing = remote.store.list(Some(prefix));
                while let Some(item) = listing.next().await {
                    let meta = item.map_err(|e| self.remote_error("", e))?;
                    let relative = meta.location.as_ref().strip_prefix(prefix.as_ref()).unwrap_or(meta.location.as_ref());
                    out.push((relative.trim_start_matches('/').to_string(), std::time::SystemTime::from(meta.last_modified)));
                }
                Ok(out)
            }
        }
    }

    /// Stores `bytes` as the file `relative` (async callers).
    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| LakeError::io(parent, e))?;
                }
                std::fs::write(&path, bytes).map_err(|e| LakeError::io(&path, e))
            }
            Place::Remote { remote, .. } => {
                let path = self.object_path(relative);
                put_object(remote.store.as_ref(), &path, bytes).await.map_err(|e| self.remote_error(relative, e))
            }
        }
    }

    /// Stores `bytes` as the file `relative` unless it exists: `false` when another writer
    /// created it first. Readers see the whole file or none of it (local: written aside, then
    /// linked into place; S3: a conditional PUT).
    pub async fn put_if_absent(&self, relative: &str, bytes: Vec<u8>) -> Result<bool> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(relative);
                let parent = path.parent().unwrap_or(dir);
                let aside = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
                std::fs::write(&aside, bytes).map_err(|e| LakeError::io(&aside, e))?;
                let linked = std::fs::hard_link(&aside, &path);
                let _ = std::fs::remove_file(&aside);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(LakeError::io(&path, e)),
                }
            }
            Place::Remote { remote, .. } => {
                let path = self.object_path(relative);
                let options = object_store::PutOptions { mode: object_store::PutMode::Create, ..Default::default() };
                match remote.store.put_opts(&path, PutPayload::from(bytes), options).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
                    Err(e) => Err(self.remote_error(relative, e)),
                }
            }
        }
    }

    /// Stores `bytes` as the file `relative`, from a thread outside the async runtime (ingest
    /// workers).
    pub fn put_blocking(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        match &self.place {
            Place::Remote { remote, .. } => remote.handle.block_on(self.put(relative, bytes)),
            Place::Local(_) => futures::executor::block_on(self.put(relative, bytes)),
        }
    }

    /// Deletes the file `relative`; a missing file is not an error.
    pub async fn delete(&self, relative: &str) -> Result<()> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(relative);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LakeError::io(&path, e)),
                    _ => Ok(()),
                }
            }
            Place::Remote { remote, .. } => match remote.store.delete(&self.object_path(relative)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.remote_error(relative, e)),
            },
        }
    }

    /// The Arrow schema of the Parquet file `relative` (read from its footer only).
    pub async fn file_schema(&self, relative: &str, size: u64) -> Result<SchemaRef> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(relative);
                let file = std::fs::File::open(&path).map_err(|e| LakeError::io(&path, e))?;
                Ok(ParquetRecordBatchReaderBuilder::try_new(file)?.schema().clone())
            }
            Place::Remote { remote, .. } => remote_schema(remote.store.as_ref(), &self.object_path(relative), size)
                .await
                .map_err(|e| self.remote_error(relative, e)),
        }
    }

    /// All rows of the Parquet files `relative` (in order). Local files are decoded in
    /// parallel, one file per thread.
    pub async fn read_files(&self, files: &[String]) -> Result<Vec<RecordBatch>> {
        let remote = match &self.place {
            Place::Local(dir) => {
                let per_file = files.par_iter().map(|relative| read_local_file(&dir.join(relative))).collect::<Result<Vec<_>>>()?;
                return Ok(per_file.into_iter().flatten().collect());
            }
            Place::Remote { remote, .. } => remote,
        };
        let mut batches = Vec::new();
        for relative in files {
            let bytes = async { remote.store.get(&self.object_path(relative)).await?.bytes().await }
                .await
                .map_err(|e| self.remote_error(relative, e))?;
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }
}

/// All rows of one local Parquet file.
fn read_local_file(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| LakeError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// The Arrow schema of a remote Parquet file, from a ranged GET of its tail (a second, longer
/// one when the footer is larger than the first guess).
async fn remote_schema(store: &dyn ObjectStore, path: &ObjectPath, size: u64) -> std::result::Result<SchemaRef, String> {
    use parquet::errors::ParquetError;
    use parquet::file::metadata::ParquetMetaDataReader;
    let mut want = size.min(256 * 1024);
    loop {
        let tail = store.get_range(path, size - want..size).await.map_err(|e| e.to_string())?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&tail, size) {
            Ok(()) => {
                let metadata = reader.finish().map_err(|e| e.to_string())?;
                let file = metadata.file_metadata();
                let schema = parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata()).map_err(|e| e.to_string())?;
                return Ok(Arc::new(schema));
            }
            Err(ParquetError::NeedMoreData(n)) if (n as u64) > want && (n as u64) <= size => want = n as u64,
            Err(e) => return Err(format!("cannot read the Parquet footer: {e}")),
        }
    }
}

/// One PUT for small objects; a multipart upload (several parts in flight) for large ones.
async fn put_object(store: &dyn ObjectStore, path: &ObjectPath, bytes: Vec<u8>) -> object_store::Result<()> {
    if bytes.len() < MULTIPART_THRESHOLD {
        store.put(path, PutPayload::from(bytes)).await?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART);
    let bytes = bytes::Bytes::from(bytes);
    for start in (0..bytes.len()).step_by(MULTIPART_PART) {
        writer.wait_for_capacity(4).await?;
        writer.put(bytes.slice(start..(start + MULTIPART_PART).min(bytes.len())));
    }
    writer.finish().await?;
    Ok(())
}

/// Reads `files` (relative paths with sizes) footers concurrently, in order.
pub async fn file_schemas(location: &TableLocation, files: &[(String, u64)]) -> Result<Vec<SchemaRef>> {
    // Each future owns what it reads, so the whole future stays `Send` for any caller.
    futures::stream::iter(files.to_vec().into_iter().map(|(rel, size)| {
        let location = location.clone();
        async move { location.file_schema(&rel, size).await }
    }))
    .buffered(16)
        .try_collect()
        .await
}

/// A commit (`00000000000000000012.json`) or checkpoint (`….checkpoint….parquet`) of a Delta log.
fn is_log_version_file(name: &str) -> bool {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    digits == 20 && (&name[20..] == ".json" || name[20..].starts_with(".checkpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn a_local_location_names_its_children_by_directory_and_url() {
        let dir = tempfile::tempdir().unwrap();
        let root = TableLocation::local(dir.path()).unwrap();
        let table = root.child("/topics/imu_data/");
        assert_eq!(table.local_dir(), Some(dir.path().join("topics/imu_data").as_path()));
        assert!(table.url().as_str().starts_with("file://") && table.url().as_str().ends_with("/topics/imu_data/"));
        assert!(table.storage_options().is_empty() && table.remote_store().is_none());
        assert_eq!(table.display(), dir.path().join("topics/imu_data").display().to_string());
    }

    #[test]
    fn files_are_put_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let root = TableLocation::local(dir.path()).unwrap();
        let rt = runtime();
        rt.block_on(root.put("a/part-1.parquet", b"x".to_vec())).unwrap();
        root.child("b").ensure_exists().unwrap();
        let mut children = rt.block_on(root.list_children()).unwrap();
        children.sort();
        assert_eq!(children, vec!["a".to_string(), "b".to_string()]);
        rt.block_on(root.delete("a/part-1.parquet")).unwrap();
        assert!(!dir.path().join("a/part-1.parquet").exists());
        assert!(rt.block_on(root.child("missing").list_children()).unwrap().is_empty());
    }

    #[test]
    fn only_a_log_with_a_commit_or_checkpoint_makes_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let table = TableLocation::local(dir.path()).unwrap().child("t");
        let rt = runtime();
        assert!(!rt.block_on(table.has_delta_log()).unwrap());
        let log = dir.path().join("t/_delta_log");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(log.join("_commit_1.json.tmp"), b"{").unwrap();
        assert!(!rt.block_on(table.has_delta_log()).unwrap(), "a temporary file is no commit");
        std::fs::write(log.join("00000000000000000000.json"), b"{}").unwrap();
        assert!(rt.block_on(table.has_delta_log()).unwrap());
    }
}
