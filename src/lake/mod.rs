//! The lake: where tables live (`<lake>/topics/<table>/bag_file=<bag>/part-*.parquet`), how topic
//! and bag names become table and partition names, and how part files become Delta commits.

#[cfg(feature = "lake")]
pub mod delta;
#[cfg(feature = "lake")]
pub mod location;
#[cfg(feature = "lake")]
mod numeric_columns;
#[cfg(feature = "lake")]
pub mod parts;
#[cfg(feature = "aws")]
pub mod s3;

use std::path::Path;

#[cfg(feature = "lake")]
pub use lake_root::Lake;

/// Name of the partition column of every table.
pub const PARTITION_COLUMN: &str = "bag_file";

#[cfg(feature = "lake")]
mod lake_root {
    use std::path::PathBuf;

    use super::location::TableLocation;
    use crate::error::{Error, Result};

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
                return Err(Error::Lake {
                    location: uri.to_string(),
                    problem: "not a local directory; remote lakes need the S3 settings (Lake::open_with)".into(),
                });
            }
            let path = PathBuf::from(uri.trim_start_matches("file://"));
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            let root = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
            Ok(Lake {
                root: TableLocation::local(&root)?,
            })
        }

        /// Opens the lake at `uri`: a local directory, or `s3://bucket/prefix/` reached with
        /// `s3` settings and the standard AWS credential chain. Blocking calls to S3 (from
        /// ingest worker threads) run on `handle`.
        #[cfg(feature = "aws")]
        pub fn open_with(uri: &str, s3: &crate::config::S3Config, handle: &tokio::runtime::Handle) -> Result<Lake> {
            if !uri.starts_with("s3://") {
                return Lake::open(uri);
            }
            let (bucket, prefix) = super::s3::split_s3_uri(uri)?;
            let remote = super::s3::connect(&bucket, s3, handle)?;
            Ok(Lake {
                root: TableLocation::remote(remote, &prefix)?,
            })
        }

        /// Without the `aws` feature only local lakes exist.
        #[cfg(not(feature = "aws"))]
        pub fn open_with(uri: &str, _s3: &crate::config::S3Config, _handle: &tokio::runtime::Handle) -> Result<Lake> {
            if uri.starts_with("s3://") {
                return Err(Error::Lake {
                    location: uri.to_string(),
                    problem: "this build has no S3 support (build with the `aws` feature, the default)".into(),
                });
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
}

/// Table name of a topic: `/` → `_`, leading `_` dropped, lowercase, other characters that are
/// not letters, digits or `_` replaced by `_` (`/vehicle/gps/fix` → `vehicle_gps_fix`).
pub fn table_name(topic: &str) -> String {
    let mapped: String = topic
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    let trimmed = mapped.trim_start_matches('_');
    if trimmed.is_empty() {
        "topic".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The bag's `bag_file` identifier: its file name without the `.bag` or `.mcap` extension.
pub fn bag_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bag".into());
    [".bag", ".mcap"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .map(str::to_string)
        .unwrap_or(name)
}

/// Escapes a partition value for a Hive-style directory name (`bag_file=<escaped>`), the way
/// Hive and Delta do: characters outside `[A-Za-z0-9._-]` become `%XX`.
pub fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_the_contract() {
        assert_eq!(table_name("/vehicle/gps/fix"), "vehicle_gps_fix");
        assert_eq!(table_name("/Camera/Image-Raw"), "camera_image_raw");
        assert_eq!(table_name("chatter"), "chatter");
        assert_eq!(table_name("/"), "topic");
    }

    #[test]
    fn bag_names_drop_the_extension() {
        assert_eq!(bag_name(Path::new("/x/small1__2020-11-19-16-21-22_4.bag")), "small1__2020-11-19-16-21-22_4");
        assert_eq!(bag_name(Path::new("drive.bag.active")), "drive.bag.active");
        assert_eq!(escape_partition_value("a b/c"), "a%20b%2Fc");
    }
}
