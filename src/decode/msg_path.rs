//! Message definitions from `.msg` files on a search path, for recordings that do not carry
//! them (rosbag2 SQLite files written before ROS 2 Iron): the way ROS tools find them.
//!
//! The search path is, in order: the directories given (`--msg-path`, config
//! `ingest.msg_paths`), then `share/` of every `AMENT_PREFIX_PATH` entry (ROS 2), then every
//! `ROS_PACKAGE_PATH` entry (ROS 1). A type `pkg/msg/Name` (or `pkg/Name`) is the first of
//! `<dir>/<pkg>/msg/<Name>.msg` or `<dir>/share/<pkg>/msg/<Name>.msg` found. Its nested types
//! are found the same way, and the whole is put together in the text format MCAP `ros2msg`
//! schemas use (the root's text, then a `MSG: pkg/msg/Name` block per nested type).

use std::path::{Path, PathBuf};

use super::definition::{DefinitionError, Registry};

/// Where `.msg` files are looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgPath {
    dirs: Vec<PathBuf>,
}

/// A type whose definition could not be put together, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The type that has no `.msg` file on the path (the root or one it nests).
    pub missing: String,
    /// Where it was looked for.
    pub looked_in: Vec<PathBuf>,
    /// A definition found but not understood (its parse error), when that is the problem.
    pub error: Option<String>,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(error) = &self.error {
            return write!(f, "{error}");
        }
        let (pkg, name) = split_type(&self.missing).unwrap_or(("<package>", self.missing.as_str()));
        write!(f, "no definition of {} in the recording, and no {pkg}/msg/{name}.msg ", self.missing)?;
        if self.looked_in.is_empty() {
            write!(f, "on the message path (it is empty)")?;
        } else {
            let dirs: Vec<String> = self.looked_in.iter().map(|d| d.display().to_string()).collect();
            write!(f, "under {}", dirs.join(", "))?;
        }
        write!(f, "; give the directory holding {pkg}/msg/{name}.msg with --msg-path DIR (or ingest.msg_paths), or source the ROS environment that has it")
    }
}

/// Longest chain of nested types followed before giving up (a definition that keeps naming
/// new types is not a real one).
const MAX_NESTED_TYPES: usize = 512;

impl MsgPath {
    /// The given directories, then the ROS environment's (see the module documentation).
    pub fn new(dirs: &[PathBuf]) -> MsgPath {
        Self::with_environment(dirs, std::env::var_os("AMENT_PREFIX_PATH"), std::env::var_os("ROS_PACKAGE_PATH"))
    }

    /// As [`MsgPath::new`], with the environment variables' values given.
    pub fn with_environment(dirs: &[PathBuf], ament_prefix_path: Option<std::ffi::OsString>, ros_package_path: Option<std::ffi::OsString>) -> MsgPath {
        let mut all: Vec<PathBuf> = dirs.to_vec();
        if let Some(prefixes) = ament_prefix_path {
            all.extend(std::env::split_paths(&prefixes).filter(|p| !p.as_os_str().is_empty()).map(|p| p.join("share")));
        }
        if let Some(packages) = ros_package_path {
            all.extend(std::env::split_paths(&packages).filter(|p| !p.as_os_str().is_empty()));
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|d| seen.insert(d.clone()));
        MsgPath { dirs: all }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The `.msg` file of `msg_type` (`pkg/msg/Name` or `pkg/Name`), if one is on the path.
    pub fn find(&self, msg_type: &str) -> Option<PathBuf> {
        let (pkg, name) = split_type(msg_type)?;
        self.dirs.iter().find_map(|dir| {
            [dir.join(pkg).join("msg"), dir.join("share").join(pkg).join("msg")]
                .into_iter()
                .map(|msg_dir| msg_dir.join(format!("{name}.msg")))
                .find(|file| file.is_file())
        })
    }

    /// The full definition text of `msg_type` with every type it nests, as a `ros2msg` schema.
    pub fn definition(&self, msg_type: &str) -> Result<String, Unresolved> {
        let unresolved = |missing: &str, error: Option<String>| Unresolved { missing: missing.to_string(), looked_in: self.dirs.clone(), error };
        let root = ros2_name(msg_type);
        let mut text = self.read(&root).ok_or_else(|| unresolved(&root, None))?;
        for _ in 0..MAX_NESTED_TYPES {
            let missing = match Registry::parse_ros2(&root, &text) {
                Ok(_) => return Ok(text),
                Err(DefinitionError::UndefinedFieldType { written, package, .. }) => nested_name(&written, &package),
                Err(e) => return Err(unresolved(&root, Some(e.to_string()))),
            };
            let nested = self.read(&missing).ok_or_else(|| unresolved(&missing, None))?;
            text.push_str(&format!("\n================================================================================\nMSG: {missing}\n{nested}"));
        }
        Err(unresolved(&root, Some(format!("{root} nests more than {MAX_NESTED_TYPES} types"))))
    }

    fn read(&self, msg_type: &str) -> Option<String> {
        let file = self.find(msg_type)?;
        std::fs::read_to_string(file).ok()
    }
}

/// `pkg/msg/Name` or `pkg/Name` → (`pkg`, `Name`).
fn split_type(msg_type: &str) -> Option<(&str, &str)> {
    match msg_type.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, "msg", name] | [pkg, name] if !pkg.is_empty() && !name.is_empty() => Some((pkg, name)),
        _ => None,
    }
}

/// `pkg/Name` → `pkg/msg/Name` (already so: unchanged).
fn ros2_name(msg_type: &str) -> String {
    match split_type(msg_type) {
        Some((pkg, name)) => format!("{pkg}/msg/{name}"),
        None => msg_type.to_string(),
    }
}

/// The full name of a field type written as `written` in a type of `package`: `Header` is
/// `std_msgs`'s; other names without a package are of the same package.
fn nested_name(written: &str, package: &str) -> String {
    let base = written.split('[').next().unwrap_or(written).trim();
    if base.contains('/') {
        ros2_name(base)
    } else if base == "Header" {
        "std_msgs/msg/Header".to_string()
    } else {
        format!("{package}/msg/{base}")
    }
}

/// `dir` made absolute against the current directory (so a search path stays valid when the
/// process changes directory).
pub fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, relative: &str, text: &str) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_type_and_the_types_it_nests_are_put_together_from_the_path() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pkg/msg/Outer.msg", "Inner[] items\nstd_msgs/Header header\nbuiltin_interfaces/Time t\n");
        write(dir.path(), "pkg/msg/Inner.msg", "float32 x\nuint8 K=3\n");
        // An AMENT prefix: share/<pkg>/msg.
        let prefix = tempfile::tempdir().unwrap();
        write(prefix.path(), "share/std_msgs/msg/Header.msg", "builtin_interfaces/Time stamp\nstring frame_id\n");
        let path = MsgPath::with_environment(&[dir.path().to_path_buf()], Some(prefix.path().as_os_str().to_owned()), None);
        let text = path.definition("pkg/Outer").unwrap();
        let registry = Registry::parse_ros2("pkg/msg/Outer", &text).unwrap();
        assert_eq!(registry.root().fields.len(), 3);
        assert!(registry.get("pkg/Inner").is_some() && registry.get("std_msgs/Header").is_some(), "{text}");
    }

    #[test]
    fn a_missing_type_is_named_with_where_it_was_looked_for_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pkg/msg/Outer.msg", "other_pkg/Thing thing\n");
        let path = MsgPath::with_environment(&[dir.path().to_path_buf()], None, None);
        let error = path.definition("pkg/msg/Outer").unwrap_err();
        assert_eq!(error.missing, "other_pkg/msg/Thing");
        let text = error.to_string();
        assert!(text.contains("other_pkg/msg/Thing.msg") && text.contains(&dir.path().display().to_string()) && text.contains("--msg-path"), "{text}");
        let empty = MsgPath::with_environment(&[], None, None).definition("a/B").unwrap_err().to_string();
        assert!(empty.contains("it is empty"), "{empty}");
    }

    #[test]
    fn the_ros_environment_adds_its_directories_after_the_given_ones() {
        let joined = std::env::join_paths(["/opt/ros/humble", "/ws/install/pkg"]).unwrap();
        let path = MsgPath::with_environment(&[PathBuf::from("/mine")], Some(joined), Some("/catkin/src".into()));
        assert_eq!(path.dirs(), &[PathBuf::from("/mine"), PathBuf::from("/opt/ros/humble/share"), PathBuf::from("/ws/install/pkg/share"), PathBuf::from("/catkin/src")]);
    }
}
