//! `scenes clip`: cuts the window of a scene (or any window of a bag) out of its source bag as a
//! bag or MCAP file a viewer opens complete: every message in the window, bytes unchanged, and
//! the last earlier message of each latched or static topic ([`cut`]). The source is a local
//! bag or one on S3, read by ranges (only the chunks the window needs); the clip goes to a local
//! directory or an `s3://` prefix, optionally with a time-limited HTTPS URL and a viewer link
//! ([`publish`]).

pub mod cut;
mod publish;
mod write;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bag::{Bag, BagFormat, Compression};
use crate::error::{Error, Result};
use crate::source::S3Config;
pub use publish::replay_link;

/// Settings of `scenes clip` (`clip` in config.json).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipConfig {
    /// Topics whose last message before the window goes into the clip (`*` matches any run
    /// of characters); connections recorded as latching are always included.
    pub latched_topics: Vec<String>,
    /// Seconds added before and after a scene.
    pub pad_s: f64,
    /// Lifetime of `--presign` URLs, in seconds.
    pub presign_expires_s: u64,
}

impl Default for ClipConfig {
    fn default() -> Self {
        ClipConfig {
            latched_topics: vec!["/tf_static".into(), "*camera_info".into(), "/map".into(), "*/map".into(), "*map_metadata".into()],
            pad_s: 2.0,
            presign_expires_s: 3600,
        }
    }
}

/// The container a clip is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ClipFormat {
    Bag,
    Mcap,
}

impl ClipFormat {
    fn extension(self) -> &'static str {
        match self {
            ClipFormat::Bag => "bag",
            ClipFormat::Mcap => "mcap",
        }
    }
}

/// One clip to write: its name (the file stem), its source bag (path or `s3://` URI) and its
/// window (record times, ns, both ends included).
#[derive(Debug, Clone)]
pub struct ClipTarget {
    pub name: String,
    pub source: String,
    pub from_ns: u64,
    pub to_ns: u64,
}

/// How to write clips.
#[derive(Debug, Clone)]
pub struct ClipOptions {
    /// `None`: the source's format (MCAP for MCAP files and rosbag2 recordings).
    pub format: Option<ClipFormat>,
    pub compression: Compression,
    /// A local directory or an `s3://bucket/prefix/`.
    pub out: String,
    pub latched_topics: Vec<String>,
    /// Sign an HTTPS GET URL of each clip on S3, valid this long.
    pub presign: Option<std::time::Duration>,
    /// `detect.replay_url`: a viewer link template with `{url}`, `{start_iso}`, `{end_iso}`.
    pub replay_url: Option<String>,
    pub s3: S3Config,
}

/// A written clip.
#[derive(Debug, Clone, Serialize)]
pub struct ClipResult {
    pub name: String,
    /// Where it was written (a path or an `s3://` URI).
    pub location: String,
    pub format: ClipFormat,
    /// The window (record times, ns, both ends included).
    pub from_ns: u64,
    pub to_ns: u64,
    pub messages: usize,
    /// Messages from before the window (latched or static topics).
    pub latched: usize,
    pub chunks_read: usize,
    pub chunks_total: usize,
    pub url: Option<String>,
    pub replay_url: Option<String>,
}

/// Writes the clip of `target`.
pub fn clip(target: &ClipTarget, opts: &ClipOptions, runtime: &tokio::runtime::Runtime) -> Result<ClipResult> {
    let (bag, _copy) = open_source(&target.source, &opts.s3, runtime)?;
    check_window(&bag, target)?;
    let cut = cut::cut(&bag, target.from_ns, target.to_ns, &opts.latched_topics)?;
    let format = opts.format.unwrap_or(if bag.format == BagFormat::Ros1 { ClipFormat::Bag } else { ClipFormat::Mcap });
    let file_name = format!("{}.{}", target.name, format.extension());
    let staged = tempfile::Builder::new().prefix(".clip-").tempfile_in(staging_dir(&opts.out)?).map_err(|e| Error::io(std::env::temp_dir(), e))?;
    match format {
        ClipFormat::Bag => write::write_bag(staged.path(), &cut, opts.compression)?,
        ClipFormat::Mcap => write::write_mcap(staged.path(), &cut)?,
    }
    let location = publish::place(staged, &opts.out, &file_name, &opts.s3, runtime)?;
    let url = match opts.presign {
        Some(expires) => Some(publish::presign(&location, expires, &opts.s3, runtime)?),
        None => None,
    };
    let replay_url = opts.replay_url.as_deref().map(|template| replay_link(template, url.as_deref().unwrap_or(&location), target.from_ns, target.to_ns));
    Ok(ClipResult {
        name: target.name.clone(),
        location,
        format,
        from_ns: target.from_ns,
        to_ns: target.to_ns,
        messages: cut.messages.len(),
        latched: cut.latched,
        chunks_read: cut.chunks_read,
        chunks_total: cut.chunks_total,
        url,
        replay_url,
    })
}

/// Where a clip is written before it is in place: the output directory itself (so the final
/// rename stays on one file system), or the temporary directory for S3.
fn staging_dir(out: &str) -> Result<PathBuf> {
    if out.starts_with("s3://") {
        return Ok(std::env::temp_dir());
    }
    let dir = PathBuf::from(out);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Opens the source bag: a local file, or an object on S3 read by ranges (downloaded to a
/// temporary file when it has no usable index). A source that is gone says so.
fn open_source(source: &str, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<(Bag, Option<tempfile::NamedTempFile>)> {
    if source.starts_with("s3://") {
        return open_s3(source, s3, runtime);
    }
    let path = Path::new(source);
    if !path.exists() {
        return Err(Error::invalid(format!("bag {source}"), "is gone from its source (no such file): it was moved or deleted after ingest"));
    }
    Ok((Bag::open(path)?, None))
}

#[cfg(feature = "aws")]
fn open_s3(uri: &str, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<(Bag, Option<tempfile::NamedTempFile>)> {
    use crate::source::s3::S3Bag;
    let object = S3Bag::open(uri, s3, runtime.handle())
        .map_err(|e| Error::invalid(format!("bag {uri}"), format!("is gone from its source or cannot be read: {e}")))?;
    match Bag::open_ranged(object.clone().into_reader()) {
        Ok(mut bag) => {
            bag.path = PathBuf::from(uri);
            return Ok((bag, None));
        }
        Err(crate::bag::BagError::NeedsLocalCopy { reason, .. }) => tracing::info!("{uri}: {reason}; reading a local copy"),
        Err(e) => return Err(e.into()),
    }
    let mut copy = tempfile::NamedTempFile::new().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    object.download_to(copy.as_file_mut())?;
    let mut bag = Bag::open(copy.path())?;
    bag.path = PathBuf::from(uri);
    Ok((bag, Some(copy)))
}

#[cfg(not(feature = "aws"))]
fn open_s3(uri: &str, _s3: &S3Config, _runtime: &tokio::runtime::Runtime) -> Result<(Bag, Option<tempfile::NamedTempFile>)> {
    Err(crate::source::inputs::InputError::NoS3Support { input: uri.to_string() }.into())
}

/// A window that misses the bag entirely is an error naming both.
fn check_window(bag: &Bag, target: &ClipTarget) -> Result<()> {
    let (Some(start), Some(end)) = (bag.start_time(), bag.end_time()) else {
        return Ok(());
    };
    if target.to_ns < start || target.from_ns > end {
        return Err(Error::invalid(
            format!("window {} – {} of {}", iso(target.from_ns), iso(target.to_ns), target.name),
            format!("is outside the bag {} ({} – {})", target.source, iso(start), iso(end)),
        ));
    }
    Ok(())
}

/// `ns` since the epoch as RFC 3339 UTC with milliseconds.
pub fn iso(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    match chrono::DateTime::from_timestamp(secs, (ns % 1_000_000_000) as u32) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ns.to_string(),
    }
}
