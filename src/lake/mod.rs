//! The lake: where tables live (`<lake>/topics/<table>/bag_file=<bag>/part-*.parquet`), how topic
//! and bag names become table and partition names, and how part files become Delta commits.

#[cfg(feature = "lake")]
pub mod delta;
#[cfg(feature = "lake")]
pub mod parts;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the partition column of every table.
pub const PARTITION_COLUMN: &str = "bag_file";

/// A lake rooted at a local directory.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
}

impl Lake {
    /// Opens (creating if needed) the lake at `uri`, a local directory path.
    pub fn open(uri: &str) -> Result<Lake> {
        if uri.starts_with("s3://") || uri.contains("://") && !uri.starts_with("file://") {
            return Err(Error::Lake {
                location: uri.to_string(),
                problem: "only local directory lakes are supported by this build; S3 lakes are not available yet".into(),
            });
        }
        let path = PathBuf::from(uri.trim_start_matches("file://"));
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let root = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Lake { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of a topic table.
    pub fn topic_table_dir(&self, table: &str) -> PathBuf {
        self.root.join("topics").join(table)
    }

    /// Directory of a derived table (`synced`, `enriched`, `scenes`).
    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }

    /// Where the embedded metadata store keeps its file.
    pub fn metadata_file(&self) -> PathBuf {
        self.root.join("_scenes").join("metadata.sqlite")
    }

    /// Names of the topic tables that exist (directories with a Delta log).
    pub fn topic_tables(&self) -> Result<Vec<String>> {
        let dir = self.root.join("topics");
        let mut names = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            if entry.path().join("_delta_log").is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
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
