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
