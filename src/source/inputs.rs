//! Command-line bag inputs → a list of bags: files, directories (a drive folder of `*.bag`,
//! `*.mcap`, `*.db3` and rosbag2 recordings, or a rosbag2 recording itself: a folder with
//! `metadata.yaml`, which is one bag), quoted globs, `s3://bucket/key` and `s3://bucket/prefix/`.
//! Duplicates are dropped, first occurrence kept.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::S3Config;

/// A bag to read: a local file, or an object on S3 (read by ranges, never downloaded whole).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BagInput {
    Local(PathBuf),
    S3(String),
}

impl BagInput {
    /// The input as the user would write it.
    pub fn display(&self) -> String {
        match self {
            BagInput::Local(path) => path.display().to_string(),
            BagInput::S3(uri) => uri.clone(),
        }
    }
}

/// Why an input names no bag.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{input}: only local paths and s3:// URIs can be ingested; copy the bag to local disk and ingest the copy")]
    UnsupportedScheme { input: String },
    #[error("{input}: cannot list directory: {source}")]
    ListDirectory { input: String, source: std::io::Error },
    #[error("{input}: directory holds no .bag, .mcap or .db3 files and no rosbag2 recording (a folder with metadata.yaml)")]
    EmptyDirectory { input: String },
    #[error("{input}: bad glob pattern: {source}")]
    BadGlob { input: String, source: glob::PatternError },
    #[error("{input}: no file matches this pattern")]
    NoGlobMatch { input: String },
    #[error("{input}: no such file")]
    NoSuchFile { input: String },
    #[error("{input}: no .bag or .mcap objects under this prefix")]
    EmptyPrefix { input: String },
    #[error("{input}: this build has no S3 support (build with the `aws` feature, the default)")]
    NoS3Support { input: String },
    #[cfg(feature = "aws")]
    #[error(transparent)]
    S3(#[from] super::s3::S3Error),
}

/// Expands `inputs` into a de-duplicated list of bags. Prefixes on S3 are listed on `runtime`.
pub fn expand_inputs(inputs: &[String], s3: &S3Config, runtime: &tokio::runtime::Handle) -> Result<Vec<BagInput>, InputError> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("s3://") {
            out.extend(expand_s3(input, s3, runtime)?);
        } else if input.contains("://") {
            return Err(InputError::UnsupportedScheme { input: input.clone() });
        } else {
            out.extend(expand_local(input)?.into_iter().map(BagInput::Local));
        }
    }
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

/// A file, a directory's `.bag`/`.mcap` files in name order, or a glob's matches.
fn expand_local(input: &str) -> Result<Vec<PathBuf>, InputError> {
    let path = Path::new(input);
    if path.is_dir() {
        return bags_in_directory(input, path);
    }
    if path.exists() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !input.contains(['*', '?', '[']) {
        return Err(InputError::NoSuchFile { input: input.to_string() });
    }
    let pattern = glob::glob(input).map_err(|source| InputError::BadGlob { input: input.to_string(), source })?;
    let matches: Vec<PathBuf> = pattern.filter_map(|m| m.ok()).collect();
    if matches.is_empty() {
        return Err(InputError::NoGlobMatch { input: input.to_string() });
    }
    Ok(matches)
}

/// A rosbag2 recording (a folder with `metadata.yaml`: one bag, however many storage files it
/// has), or a drive folder: its `.bag`, `.mcap` and `.db3` files and the rosbag2 recordings in
/// it, in name order.
fn bags_in_directory(input: &str, dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    if is_rosbag2_folder(dir) {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| InputError::ListDirectory { input: input.to_string(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let has_ext = |p: &PathBuf, ext: &str| p.is_file() && p.extension().is_some_and(|x| x == ext);
    let mut found: Vec<PathBuf> = entries
        .iter()
        .filter(|p| has_ext(p, "bag") || has_ext(p, "mcap") || has_ext(p, "db3") || is_rosbag2_folder(p))
        .cloned()
        .collect();
    if found.is_empty() {
        return Err(InputError::EmptyDirectory { input: input.to_string() });
    }
    found.sort();
    Ok(found)
}

/// A rosbag2 recording's folder: it holds `metadata.yaml`.
fn is_rosbag2_folder(path: &Path) -> bool {
    path.is_dir() && path.join("metadata.yaml").is_file()
}

/// `s3://bucket/key.bag` as is; `s3://bucket/prefix/` as every `.bag`/`.mcap` object below it.
#[cfg(feature = "aws")]
fn expand_s3(input: &str, s3: &S3Config, runtime: &tokio::runtime::Handle) -> Result<Vec<BagInput>, InputError> {
    if !input.ends_with('/') {
        return Ok(vec![BagInput::S3(input.to_string())]);
    }
    let found = super::s3::S3Bag::list(input, s3, runtime)?;
    if found.is_empty() {
        return Err(InputError::EmptyPrefix { input: input.to_string() });
    }
    Ok(found.into_iter().map(BagInput::S3).collect())
}

#[cfg(not(feature = "aws"))]
fn expand_s3(input: &str, _s3: &S3Config, _runtime: &tokio::runtime::Handle) -> Result<Vec<BagInput>, InputError> {
    Err(InputError::NoS3Support { input: input.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(inputs: &[&str]) -> Result<Vec<BagInput>, InputError> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        expand_inputs(&inputs, &S3Config::default(), runtime.handle())
    }

    #[test]
    fn a_directory_gives_its_bags_in_name_order_and_duplicates_go() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.bag", "a.mcap", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let d = dir.path().to_str().unwrap();
        let a = dir.path().join("a.mcap");
        let found = expand(&[d, a.to_str().unwrap()]).unwrap();
        assert_eq!(found, vec![BagInput::Local(a.clone()), BagInput::Local(dir.path().join("b.bag"))]);
    }

    #[test]
    fn a_rosbag2_recording_is_one_input_and_a_folder_of_them_lists_each() {
        let dir = tempfile::tempdir().unwrap();
        let recording = dir.path().join("rec");
        std::fs::create_dir_all(&recording).unwrap();
        for name in ["metadata.yaml", "rec_0.db3", "rec_1.db3"] {
            std::fs::write(recording.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join("lone.db3"), b"x").unwrap();
        assert_eq!(expand(&[recording.to_str().unwrap()]).unwrap(), vec![BagInput::Local(recording.clone())]);
        assert_eq!(expand(&[dir.path().to_str().unwrap()]).unwrap(), vec![BagInput::Local(dir.path().join("lone.db3")), BagInput::Local(recording)]);
    }

    #[test]
    fn inputs_that_name_no_bag_say_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        assert!(matches!(expand(&[&d]), Err(InputError::EmptyDirectory { .. })));
        assert!(matches!(expand(&["/no/such/file.bag"]), Err(InputError::NoSuchFile { .. })));
        assert!(matches!(expand(&["http://x/y.bag"]), Err(InputError::UnsupportedScheme { .. })));
        let pattern = format!("{d}/*.bag");
        assert!(matches!(expand(&[&pattern]), Err(InputError::NoGlobMatch { .. })));
    }

    #[test]
    fn a_glob_gives_its_matches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("one.bag"), b"x").unwrap();
        let pattern = format!("{}/*.bag", dir.path().display());
        assert_eq!(expand(&[&pattern]).unwrap(), vec![BagInput::Local(dir.path().join("one.bag"))]);
    }
}
