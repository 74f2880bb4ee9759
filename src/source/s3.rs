//! Reaching S3: the object store for a bucket (lakes and bags share it), and bags on S3 read by
//! parallel ranged GETs.
//!
//! Credentials come from the standard AWS chain (environment, profile, SSO, web identity / IRSA,
//! ECS task role, instance metadata), resolved by `aws-config`; the region from `s3.region`, else
//! the same chain; the endpoint from `s3.endpoint_url`, else `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL` (S3-compatible stores). The client retries throttling (429/503 SlowDown),
//! server errors and dropped connections with exponential backoff, `s3.max_attempts` times.
//! The store is built by delta-rs's S3 factory so that Delta commits and our own reads and writes
//! use one configuration (commits are made safe by S3 conditional writes).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use deltalake::logstore::{ObjectStoreFactory, StorageConfig};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::{RangeReader, RemoteStore, S3Config};
/// What can go wrong reaching S3: which URI or bucket, and what S3 (or the URI) said.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{uri}: not an s3:// URI")]
    NotS3 { uri: String },
    #[error("{uri}: no bucket name; write s3://bucket/key")]
    NoBucket { uri: String },
    #[error("{uri}: {reason}")]
    BadUri { uri: String, reason: String },
    #[error("s3://{bucket}/: cannot set up the S3 client: {reason}")]
    Connect { bucket: String, reason: String },
    /// An answer of S3 (or the network) about `uri`, explained by [`describe`].
    #[error("{uri}: {reason}")]
    Request { uri: String, reason: String },
}

type Result<T, E = S3Error> = std::result::Result<T, E>;

/// Splits `s3://bucket/some/prefix/` into (`bucket`, `some/prefix`).
pub fn split_s3_uri(uri: &str) -> Result<(String, String)> {
    let rest = uri.strip_prefix("s3://").ok_or_else(|| S3Error::NotS3 { uri: uri.to_string() })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(S3Error::NoBucket { uri: uri.to_string() });
    }
    Ok((bucket.to_string(), key.trim_matches('/').to_string()))
}

/// The endpoint to use: the config's, else the standard environment variables.
fn endpoint(settings: &S3Config) -> Option<String> {
    settings
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty())
}

/// The region: the config's, else the standard chain (environment, profile, instance metadata).
fn region(settings: &S3Config, handle: &tokio::runtime::Handle) -> Option<String> {
    if let Some(r) = &settings.region {
        return Some(r.clone());
    }
    let chain = aws_config::meta::region::RegionProviderChain::default_provider();
    let found = std::thread::scope(|scope| scope.spawn(|| handle.block_on(chain.region())).join().ok().flatten());
    found.map(|r| r.to_string())
}

/// Storage options for delta-rs / object_store.
fn storage_options(settings: &S3Config, handle: &tokio::runtime::Handle) -> HashMap<String, String> {
    let mut options = HashMap::new();
    if let Some(endpoint) = endpoint(settings) {
        if endpoint.starts_with("http://") {
            options.insert("aws_allow_http".to_string(), "true".to_string());
        }
        options.insert("aws_endpoint".to_string(), endpoint);
    }
    if let Some(region) = region(settings, handle) {
        options.insert("aws_region".to_string(), region);
    }
    // Resolve credentials through aws-config's full chain (profiles, SSO, roles) even with a
    // custom endpoint, where delta-rs would otherwise read only the environment.
    options.insert("AWS_FORCE_CREDENTIAL_LOAD".to_string(), "true".to_string());
    options.insert("max_retries".to_string(), settings.max_attempts.saturating_sub(1).to_string());
    options
}

/// Connects to `bucket`.
pub fn connect(bucket: &str, settings: &S3Config, handle: &tokio::runtime::Handle) -> Result<RemoteStore> {
    let connect_error = |reason: String| S3Error::Connect { bucket: bucket.to_string(), reason };
    let bucket_url = Url::parse(&format!("s3://{bucket}/")).map_err(|e| connect_error(e.to_string()))?;
    let options = storage_options(settings, handle);
    let config = StorageConfig::parse_options(options.clone()).map_err(|e| connect_error(first_line(&e)))?;
    let factory = deltalake::aws::storage::S3ObjectStoreFactory::default();
    // The factory may block on credential resolution; keep it off the runtime's threads.
    let _guard = handle.enter();
    let (store, _prefix) = factory.parse_url_opts(&bucket_url, &config).map_err(|e| connect_error(first_line(&e)))?;
    Ok(RemoteStore {
        store,
        bucket_url,
        options,
        handle: handle.clone(),
    })
}

/// A bag object on S3, read by ranged GETs.
#[derive(Clone)]
pub struct S3Bag {
    remote: RemoteStore,
    path: ObjectPath,
    name: String,
    len: u64,
    /// Size and ETag at open.
    version: Option<String>,
    read_ahead: usize,
}

impl S3Bag {
    /// Finds the object `s3://bucket/key` and its size.
    pub fn open(uri: &str, settings: &S3Config, handle: &tokio::runtime::Handle) -> Result<S3Bag> {
        let (bucket, key) = split_s3_uri(uri)?;
        let remote = connect(&bucket, settings, handle)?;
        let path = ObjectPath::parse(&key).map_err(|e| S3Error::BadUri { uri: uri.to_string(), reason: e.to_string() })?;
        let meta = handle
            .block_on(remote.store.head(&path))
            .map_err(|e| S3Error::Request { uri: uri.to_string(), reason: describe(&e) })?;
        Ok(S3Bag {
            remote,
            path,
            name: uri.to_string(),
            len: meta.size,
            version: super::object_version(meta.size, meta.e_tag.as_deref()),
            read_ahead: settings.read_ahead.max(1),
        })
    }

    /// The bags under `s3://bucket/prefix/`, in key order: `.bag`, `.mcap` and `.db3` objects,
    /// and each rosbag2 recording (a "folder" with `metadata.yaml`) once, as the URI of its
    /// `metadata.yaml` (its storage files are not bags of their own).
    pub fn list(prefix_uri: &str, settings: &S3Config, handle: &tokio::runtime::Handle) -> Result<Vec<String>> {
        let (bucket, prefix) = split_s3_uri(prefix_uri)?;
        let remote = connect(&bucket, settings, handle)?;
        let prefix = ObjectPath::from(prefix.as_str());
        let all: Vec<String> = handle.block_on(async {
            let mut keys = Vec::new();
            let mut listing = remote.store.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| S3Error::Request { uri: prefix_uri.to_string(), reason: describe(&e) })?;
                keys.push(meta.location.to_string());
            }
            Ok::<_, S3Error>(keys)
        })?;
        let recordings: Vec<&str> = all.iter().filter_map(|key| key.strip_suffix(METADATA_FILE)).filter(|dir| dir.is_empty() || dir.ends_with('/')).collect();
        let in_recording = |key: &str| recordings.iter().any(|dir| key.starts_with(dir) && !key[dir.len()..].contains('/'));
        let mut keys: Vec<String> = all
            .iter()
            .filter(|key| {
                let is_bag = key.ends_with(".bag") || key.ends_with(".mcap") || key.ends_with(".db3");
                (is_bag && !in_recording(key)) || key.ends_with(&format!("/{METADATA_FILE}")) || key.as_str() == METADATA_FILE
            })
            .map(|key| format!("s3://{bucket}/{key}"))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The URI of the `metadata.yaml` next to this object when there is one: the object is then
    /// a storage file of that rosbag2 recording, not a bag of its own.
    pub fn recording_metadata(&self) -> Option<String> {
        let key = self.path.as_ref();
        let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
        let metadata = if folder.is_empty() { ObjectPath::from(METADATA_FILE) } else { ObjectPath::from(format!("{folder}/{METADATA_FILE}")) };
        let found = self.remote.handle.block_on(self.remote.store.head(&metadata)).is_ok();
        found.then(|| self.name.replace(key, metadata.as_ref()))
    }

    /// Size and ETag at open (see [`super::object_version`]).
    pub fn version(&self) -> Option<String> {
        self.version.clone()
    }

    /// Downloads the object into `file`, streamed (never whole in memory).
    pub fn download_to(&self, file: &mut std::fs::File) -> Result<()> {
        download(&self.remote, &self.path, &self.name, file)
    }

    /// Downloads the rosbag2 recording whose `metadata.yaml` this object is into `dir`: the
    /// metadata, then every object next to it (its storage files).
    pub fn download_recording(&self, dir: &std::path::Path) -> Result<()> {
        let folder = self.path.as_ref().strip_suffix(METADATA_FILE).unwrap_or_default().trim_end_matches('/').to_string();
        let prefix = ObjectPath::from(folder.as_str());
        let keys: Vec<ObjectPath> = self.remote.handle.block_on(async {
            let listing = self.remote.store.list_with_delimiter(Some(&prefix)).await.map_err(|e| S3Error::Request { uri: self.name.clone(), reason: describe(&e) })?;
            Ok::<_, S3Error>(listing.objects.into_iter().map(|o| o.location).collect())
        })?;
        for key in keys {
            let Some(name) = key.filename().map(str::to_string) else { continue };
            let target = dir.join(&name);
            let mut file = std::fs::File::create(&target).map_err(|e| S3Error::Request { uri: self.name.clone(), reason: format!("cannot create {}: {e}", target.display()) })?;
            download(&self.remote, &key, &format!("s3://{}/{key}", self.remote.bucket_url.host_str().unwrap_or_default()), &mut file)?;
        }
        Ok(())
    }

    /// The object's key and bucket (`key`, `bucket`): how its bag record is keyed.
    pub fn key(&self) -> String {
        self.path.to_string()
    }

    pub fn into_reader(self) -> Arc<dyn RangeReader> {
        Arc::new(self)
    }
}

/// The file that makes an S3 "folder" a rosbag2 recording.
pub const METADATA_FILE: &str = "metadata.yaml";

/// Streams the object `path` into `file`.
fn download(remote: &RemoteStore, path: &ObjectPath, uri: &str, file: &mut std::fs::File) -> Result<()> {
    use std::io::Write;
    let failed = |reason: String| S3Error::Request { uri: uri.to_string(), reason };
    remote.handle.block_on(async {
        let got = remote.store.get(path).await.map_err(|e| failed(describe(&e)))?;
        let mut stream = got.into_stream();
        while let Some(bytes) = stream.next().await {
            let bytes = bytes.map_err(|e| failed(describe(&e)))?;
            file.write_all(&bytes).map_err(|e| failed(format!("writing the local copy: {e}")))?;
        }
        file.flush().map_err(|e| failed(format!("writing the local copy: {e}")))
    })
}

/// The first line of an error's message (the Delta kernel attaches long backtraces).
fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").trim().to_string()
}

/// A short explanation of an object store error that says what to check.
fn describe(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => "no such object (check the bucket and key)".to_string(),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            format!("access denied: check the AWS credentials and the bucket policy ({e})")
        }
        other => other.to_string(),
    }
}

impl RangeReader for S3Bag {
    fn len(&self) -> u64 {
        self.len
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn version(&self) -> Option<String> {
        self.version.clone()
    }

    fn fetch(&self, ranges: Vec<Range<u64>>) -> Box<dyn Iterator<Item = std::result::Result<Vec<u8>, String>> + Send + '_> {
        // A task on the runtime keeps `read_ahead` GETs in flight and hands finished ranges over
        // in order; the bounded channel stops it from running further ahead than that.
        let (sender, mut receiver) = tokio::sync::mpsc::channel(self.read_ahead);
        let store = self.remote.store.clone();
        let path = self.path.clone();
        let read_ahead = self.read_ahead;
        self.remote.handle.spawn(async move {
            let mut gets = futures::stream::iter(ranges)
                .map(|range| {
                    let store = store.clone();
                    let path = path.clone();
                    async move { store.get_range(&path, range).await }
                })
                .buffered(read_ahead);
            while let Some(result) = gets.next().await {
                let item = result.map(Vec::from).map_err(|e| describe(&e));
                let failed = item.is_err();
                // A closed channel means the reader stopped (an error elsewhere): stop fetching.
                if sender.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        // Called from ingest worker threads, which are not the runtime's.
        Box::new(std::iter::from_fn(move || receiver.blocking_recv()))
    }
}

/// A time-limited HTTPS URL that GETs the object `uri` (`s3://bucket/key`) without credentials,
/// signed with the standard AWS credential chain (environment, profile, SSO, task role).
pub fn presign_get(uri: &str, expires: std::time::Duration, settings: &S3Config, handle: &tokio::runtime::Handle) -> Result<String> {
    use aws_credential_types::provider::ProvideCredentials;
    use object_store::signer::Signer;
    let (bucket, key) = split_s3_uri(uri)?;
    let failed = |reason: String| S3Error::Connect { bucket: bucket.clone(), reason: format!("cannot sign a URL for {uri}: {reason}") };
    let region = region(settings, handle).unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = endpoint(settings);
    let signed = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                handle.block_on(async {
                    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                    let provider = sdk.credentials_provider().ok_or_else(|| "no AWS credentials found".to_string())?;
                    let credentials = provider.provide_credentials().await.map_err(|e| e.to_string())?;
                    let mut builder = object_store::aws::AmazonS3Builder::new()
                        .with_bucket_name(&bucket)
                        .with_region(&region)
                        .with_access_key_id(credentials.access_key_id())
                        .with_secret_access_key(credentials.secret_access_key());
                    if let Some(token) = credentials.session_token() {
                        builder = builder.with_token(token);
                    }
                    if let Some(endpoint) = &endpoint {
                        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://")).with_virtual_hosted_style_request(false);
                    }
                    let store = builder.build().map_err(|e| first_line(&e))?;
                    let url = store.signed_url(http::Method::GET, &ObjectPath::from(key.as_str()), expires).await.map_err(|e| first_line(&e))?;
                    Ok::<String, String>(url.to_string())
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the signing thread stopped".to_string()))
    });
    Ok(signed.map_err(failed)?)
}

/// Puts `bytes` as the object `uri` (`s3://bucket/key`).
pub fn put(uri: &str, bytes: Vec<u8>, settings: &S3Config, handle: &tokio::runtime::Handle) -> Result<()> {
    let (bucket, key) = split_s3_uri(uri)?;
    let remote = connect(&bucket, settings, handle)?;
    let path = ObjectPath::from(key.as_str());
    let put = std::thread::scope(|scope| {
        scope
            .spawn(|| handle.block_on(remote.store.put(&path, bytes.into())).map(|_| ()).map_err(|e| first_line(&e)))
            .join()
            .unwrap_or_else(|_| Err("the upload thread stopped".to_string()))
    });
    put.map_err(|reason| S3Error::Request { uri: uri.to_string(), reason })
}
