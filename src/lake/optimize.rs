//! `scenes optimize`: compacts the small part files of each bag's partition into fewer, larger
//! ones (Delta OPTIMIZE semantics). A partition gets several files from the workers of its
//! ingest and from re-runs; readers open each one, so fewer files read faster.
//!
//! The files are rewritten by our own Parquet writer, with the table's exact Arrow types
//! (nanosecond timestamps, unsigned integers): `deltalake`'s own optimize writes the Delta
//! schema's types instead (`long` for nanosecond times, `decimal(20,0)` for uint64). The commit
//! is an OPTIMIZE commit made with `deltalake` (see [`delta::commit_compaction`]): readers of
//! the current or an older version keep reading the old files until a vacuum removes them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::delta::{self, ActiveFile};
use super::location::TableLocation;
use super::parquet::{ParquetOptions, PartWriter};
use crate::lake::error::Result;

/// What optimize did to one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OptimizeReport {
    /// Partitions whose files were compacted.
    pub partitions: usize,
    /// Files replaced, and the files that replaced them.
    pub files_removed: usize,
    pub files_added: usize,
    pub bytes_removed: u64,
    pub bytes_added: u64,
    /// The commit's table version; `None` when there was nothing to compact.
    pub version: Option<i64>,
}

/// Groups of files to compact into one: per partition, in name order (the bag's record order),
/// consecutive files smaller than `target_bytes` whose sizes add up to at most `target_bytes`;
/// only groups of two or more.
pub fn plan_bins(files: &[ActiveFile], target_bytes: u64) -> Vec<(String, Vec<ActiveFile>)> {
    let mut by_bag: BTreeMap<&str, Vec<&ActiveFile>> = BTreeMap::new();
    for file in files {
        if let Some(bag) = file.bag_file.as_deref() {
            by_bag.entry(bag).or_default().push(file);
        }
    }
    let mut bins = Vec::new();
    for (bag, mut files) in by_bag {
        files.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
        let mut bin: Vec<ActiveFile> = Vec::new();
        let mut size = 0;
        for file in files {
            let fits = file.size < target_bytes && size + file.size <= target_bytes;
            if !fits {
                if bin.len() > 1 {
                    bins.push((bag.to_string(), std::mem::take(&mut bin)));
                }
                bin.clear();
                size = 0;
                if file.size >= target_bytes {
                    continue;
                }
            }
            size += file.size;
            bin.push(file.clone());
        }
        if bin.len() > 1 {
            bins.push((bag.to_string(), bin));
        }
    }
    bins
}

/// Compacts the small files of every partition of the table at `location` (see [`plan_bins`])
/// and commits the result in one OPTIMIZE commit.
pub async fn optimize_table(location: &TableLocation, target_bytes: u64, opts: &ParquetOptions) -> Result<OptimizeReport> {
    let files = delta::table_files(location).await?.files;
    let bins = plan_bins(&files, target_bytes);
    let mut report = OptimizeReport::default();
    let mut compacted = Vec::new();
    for (bag, bin) in &bins {
        let Some(part) = rewrite(location, bag, bin, opts).await? else { continue };
        report.partitions += 1;
        report.files_removed += bin.len();
        report.bytes_removed += bin.iter().map(|f| f.size).sum::<u64>();
        report.files_added += 1;
        report.bytes_added += part.size;
        compacted.push((part, bag.clone(), bin.iter().map(|f| f.relative_path.clone()).collect::<Vec<_>>()));
    }
    if compacted.is_empty() {
        return Ok(report);
    }
    match delta::commit_compaction(location, &compacted, target_bytes).await {
        Ok(version) => report.version = Some(version),
        Err(e) => {
            for (part, _, _) in &compacted {
                delta::discard_parts(location, std::slice::from_ref(part)).await;
            }
            return Err(e);
        }
    }
    Ok(report)
}

/// Writes the rows of `bin` (in order) into one new part file of the partition `bag`. `None`
/// when its files do not all have the same columns (they are left as they are).
async fn rewrite(location: &TableLocation, bag: &str, bin: &[ActiveFile], opts: &ParquetOptions) -> Result<Option<super::parquet::PartFile>> {
    let paths: Vec<String> = bin.iter().map(|f| f.relative_path.clone()).collect();
    let batches = location.read_files(&paths).await?;
    let Some(first) = batches.first() else { return Ok(None) };
    if batches.iter().any(|b| b.schema().fields() != first.schema().fields()) {
        tracing::info!(partition = bag, "files with different columns are not compacted");
        return Ok(None);
    }
    let relative = format!(
        "bag_file={}/part-optimized-{}.parquet",
        crate::lake::escape_partition_value(bag),
        uuid::Uuid::new_v4().simple()
    );
    let mut writer = PartWriter::create(location, &relative, first, opts)?;
    for batch in &batches {
        writer.write(batch)?;
    }
    Ok(Some(writer.finish_async().await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bag: &str, name: &str, size: u64) -> ActiveFile {
        ActiveFile { relative_path: format!("bag_file={bag}/{name}"), size, bag_file: Some(bag.into()), rows: None }
    }

    #[test]
    fn bins_hold_consecutive_small_files_of_one_partition_up_to_the_target() {
        let files = [file("a", "p1", 10), file("a", "p2", 20), file("a", "p3", 80), file("a", "p4", 5), file("b", "q1", 10), file("c", "r1", 200), file("c", "r2", 1)];
        let bins: Vec<(String, Vec<String>)> =
            plan_bins(&files, 100).into_iter().map(|(bag, files)| (bag, files.into_iter().map(|f| f.relative_path).collect())).collect();
        assert_eq!(
            bins,
            vec![
                ("a".to_string(), vec!["bag_file=a/p1".to_string(), "bag_file=a/p2".to_string()]),
                ("a".to_string(), vec!["bag_file=a/p3".to_string(), "bag_file=a/p4".to_string()]),
            ],
            "b has one file; c's large file stays and leaves one small file"
        );
    }
}
