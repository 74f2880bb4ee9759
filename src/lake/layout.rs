//! How the lake names things: topic → table name, bag file → partition value, and the columns
//! every table shares. Pure functions, no I/O: bag tools use them without the `lake` feature.

use std::path::Path;

/// Name of the partition column of every table.
pub const PARTITION_COLUMN: &str = "bag_file";

/// Column holding the raw bytes of a message its definition could not decode losslessly.
pub const RAW_MESSAGE_COLUMN: &str = "_raw_message";

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

/// A bag's readable name: its file name without the `.bag` or `.mcap` extension. Names repeat
/// across vehicles, dates and prefixes, so the name alone does not identify a bag: see [`bag_key`].
pub fn bag_name(path: &Path) -> String {
    // A rosbag2 recording named by its metadata file (on S3) is named by its folder.
    let path = match path.parent() {
        Some(folder) if path.file_name().is_some_and(|n| n == "metadata.yaml") && folder.file_name().is_some() => folder,
        _ => path,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bag".into());
    [".bag", ".mcap", ".db3"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .map(str::to_string)
        .unwrap_or(name)
}

/// Hex digits of the source hash in a [`bag_key`]: 48 bits, so that among a million bags of
/// one name the chance of two sharing a key stays below one in five hundred.
const KEY_HASH_HEX_DIGITS: usize = 12;

/// A bag's identity in the lake, its `bag_file` partition value: `<name>-<12 hex digits>`, the
/// digits the start of the MD5 of its source URI (see [`source_uri`]). Two bags with the same
/// name in different folders, prefixes or buckets get different keys; the same source ingested
/// again gets the same key, so its partition is replaced, not duplicated.
pub fn bag_key(name: &str, source_uri: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(source_uri.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{}", &hex[..KEY_HASH_HEX_DIGITS])
}

/// The name part of a [`bag_key`] (the key itself when it has no hash suffix, as in lakes of
/// earlier versions).
pub fn name_of_key(key: &str) -> &str {
    match key.rsplit_once('-') {
        Some((name, hash)) if hash.len() == KEY_HASH_HEX_DIGITS && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => key,
    }
}

/// Where a bag comes from, as hashed into its key: `s3://bucket/key` for an object, the
/// absolute path (symbolic links resolved) for a local file.
pub fn source_uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.starts_with("s3://") {
        return text.into_owned();
    }
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
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

    #[test]
    fn bag_keys_tell_apart_sources_of_one_name_and_keep_the_name() {
        let a = bag_key("drive_0", "/data/vehicle_a/drive_0.bag");
        let b = bag_key("drive_0", "/data/vehicle_b/drive_0.bag");
        let c = bag_key("drive_0", "s3://other-bucket/data/vehicle_a/drive_0.bag");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, bag_key("drive_0", "/data/vehicle_a/drive_0.bag"), "stable");
        assert!(a.starts_with("drive_0-") && a.len() == "drive_0-".len() + 12, "{a}");
        assert_eq!(name_of_key(&a), "drive_0");
        assert_eq!(name_of_key("small1__2020-11-19-16-21-22_4"), "small1__2020-11-19-16-21-22_4", "an old key is its name");
        assert_eq!(source_uri(Path::new("s3://b/k/x.bag")), "s3://b/k/x.bag");
    }
}
