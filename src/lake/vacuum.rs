//! Removing the files of a table that its Delta log no longer (or never) references: part files
//! a killed ingest or batch wrote but never committed, and files replaced by a commit that were
//! kept (`ingest.delete_replaced_files = false`). Only files older than the retention window
//! go: a writer running now has committed, or will commit, only files younger than that, and the
//! current snapshot's files are never touched, so readers of the current version are unaffected.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::delta;
use super::location::TableLocation;
use crate::lake::error::Result;

/// What vacuum found in one table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VacuumReport {
    /// Files removed (or, in a dry run, that would be), relative to the table.
    pub removed: Vec<String>,
    /// Files outside the log but younger than the retention window: kept.
    pub kept_recent: usize,
}

/// Removes the data files of the table at `location` that its current snapshot does not
/// reference and that were last modified more than `retain` ago. The log (`_delta_log/`) is
/// left alone. With `dry_run`, nothing is removed.
pub async fn vacuum_table(location: &TableLocation, retain: Duration, dry_run: bool) -> Result<VacuumReport> {
    // Part file names are unique (run id, range, sequence), so names identify files whatever
    // the escaping of their partition directory.
    let active: HashSet<String> = delta::active_files(location).await?.into_iter().map(|f| file_name(&f.relative_path).to_string()).collect();
    let cutoff = SystemTime::now().checked_sub(retain).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = VacuumReport::default();
    let mut files = location.list_files().await?;
    files.sort();
    for (relative, modified) in files {
        let is_data = relative.ends_with(".parquet") && !relative.starts_with("_delta_log/");
        if !is_data || active.contains(file_name(&relative)) {
            continue;
        }
        if modified > cutoff {
            report.kept_recent += 1;
            continue;
        }
        if !dry_run {
            location.delete(&relative).await?;
        }
        report.removed.push(relative);
    }
    Ok(report)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
