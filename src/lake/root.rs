//! [`Lake`]: a lake rooted at a local directory or an S3 prefix, and where its tables, its
//! metadata file and its topic tables are.

use std::path::PathBuf;

use super::location::TableLocation;
#[cfg(feature = "aws")]
use crate::source::{s3, S3Config};
use crate::lake::error::{LakeError, Result};

/// Derived tables written by sync and detect (beside the topic tables).
pub const DERIVED_TABLES: [&str; 3] = ["synced", "enriched", "scenes"];

/// A table of the lake: its name in SQL, its directory relative to the lake root, and where it is.
#[derive(Debug, Clone)]
pub struct NamedTable {
    pub name: String,
    pub relative_path: String,
    pub location: TableLocation,
}

/// A lake rooted at a local directory or at an S3 prefix.
#[derive(Debug, Clone)]
pub struct Lake {
    root: TableLocation,
}

impl Lake {
    /// Opens (creating if needed) the lake at `uri`, a local directory path. S3 lakes are
    /// opened with [`Lake::open_with`], which has the connection settings.
    pub fn open(uri: &str) -> Result<Lake> {
        if uri.contains("://") && !uri.starts_with("file://") {
            return Err(LakeError::location(uri.to_string(), "not a local directory; remote lakes need the S3 settings (Lake::open_with)"));
        }
        let path = PathBuf::from(uri.trim_start_matches("file://"));
        std::fs::create_dir_all(&path).map_err(|e| LakeError::io(&path, e))?;
        let root = std::fs::canonicalize(&path).map_err(|e| LakeError::io(&path, e))?;
        Ok(Lake {
            root: TableLocation::local(&root)?,
        })
    }

    /// Opens the lake at `uri`: a local directory, or `s3://bucket/prefix/` reached with
    /// `s3` settings and the standard AWS credential chain. Blocking calls to S3 (from
    /// ingest worker threads) run on `handle`.
    #[cfg(feature = "aws")]
    pub fn open_with(uri: &str, settings: &S3Config, handle: &tokio::runtime::Handle) -> Result<Lake> {
        if !uri.starts_with("s3://") {
            return Lake::open(uri);
        }
        let (bucket, prefix) = s3::split_s3_uri(uri)?;
        let remote = s3::connect(&bucket, settings, handle)?;
        Ok(Lake {
            root: TableLocation::remote(remote, &prefix)?,
        })
    }

    /// Without the `aws` feature only local lakes exist.
    #[cfg(not(feature = "aws"))]
    pub fn open_with(uri: &str, _s3: &crate::source::S3Config, _handle: &tokio::runtime::Handle) -> Result<Lake> {
        if uri.starts_with("s3://") {
            return Err(LakeError::location(uri.to_string(), "this build has no S3 support (build with the `aws` feature, the default)"));
        }
        Lake::open(uri)
    }

    /// The lake's root location.
    pub fn root_location(&self) -> &TableLocation {
        &self.root
    }

    /// The lake's directory, when it is local.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.root.local_dir()
    }

    /// The lake's directory or URL, for messages.
    pub fn display(&self) -> String {
        self.root.display()
    }

    /// Location of a topic table.
    pub fn topic_table(&self, table: &str) -> TableLocation {
        self.root.child(&format!("topics/{table}"))
    }

    /// Location of a derived table (`synced`, `enriched`, `scenes`).
    pub fn table(&self, table: &str) -> TableLocation {
        self.root.child(table)
    }

    /// Where the embedded metadata store keeps its file; `None` for a lake on S3 (use the
    /// DynamoDB store there).
    pub fn metadata_file(&self) -> Option<PathBuf> {
        self.local_root().map(|root| root.join("_scenes").join("metadata.sqlite"))
    }

    /// Every table of the lake with a Delta log: the topic tables (`topics/<name>`), then the
    /// derived tables of sync and detect.
    pub async fn tables(&self) -> Result<Vec<NamedTable>> {
        let mut tables: Vec<NamedTable> = self
            .topic_tables()
            .await?
            .into_iter()
            .map(|name| NamedTable { relative_path: format!("topics/{name}"), location: self.topic_table(&name), name })
            .collect();
        for derived in DERIVED_TABLES {
            let location = self.table(derived);
            if location.has_delta_log().await? {
                tables.push(NamedTable { name: derived.to_string(), relative_path: derived.to_string(), location });
            }
        }
        Ok(tables)
    }

    /// Names of the topic tables that exist (directories with a Delta log).
    pub async fn topic_tables(&self) -> Result<Vec<String>> {
        let topics = self.root.child("topics");
        let mut names = Vec::new();
        for name in topics.list_children().await? {
            if topics.child(&name).has_delta_log().await? {
                names.push(name);
            }
        }
        Ok(names)
    }
}
