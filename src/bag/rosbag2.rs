//! rosbag2 recordings as one bag: a folder (`metadata.yaml` and its storage files, in the order
//! it lists them: SQLite `.db3` or MCAP, split by size or time, compressed per file or per
//! message), or a lone `.db3` file.
//!
//! The messages of every storage file are copied, in order, into one temporary MCAP file
//! (uncompressed chunks; deleted when the bag is dropped), which the rest of ingest reads like
//! any MCAP file. The bag keeps the recording's own path, so it has one key, one partition and
//! one record however many files it was split into.
//!
//! Message definitions come from the recording (`.db3` `message_definitions` table, written
//! since ROS 2 Iron; MCAP schemas), else from the caller's resolver (message search paths).
//! A topic whose type still has no definition is kept: its messages are stored raw, and its
//! connection says which type is missing and how to provide it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection as Sqlite, OpenFlags};
use serde::Deserialize;

use super::{Bag, BagError, BagFormat, ChunkItem, Encoding, Result};

/// Finds the full definition text (`ros2msg`) of a type the recording does not define; `Err`
/// says why it cannot (which type is missing, where it was looked for, what to do).
pub type Resolve<'a> = &'a dyn Fn(&str) -> std::result::Result<String, String>;

/// The first bytes of an SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Bytes of messages per chunk of the temporary MCAP file: ingest splits a bag into ranges of
/// chunks, so a recording is read in parallel as a native MCAP file would be.
const CHUNK_BYTES: u64 = 4 << 20;

/// Whether `path` is a rosbag2 recording: a folder with `metadata.yaml`, or an SQLite file.
pub fn is_rosbag2(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("metadata.yaml").is_file();
    }
    let mut head = [0u8; 16];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == SQLITE_MAGIC
}

/// What a rosbag2 `metadata.yaml` says about its recording (the fields we use).
#[derive(Debug, Deserialize)]
struct MetadataFile {
    rosbag2_bagfile_information: Metadata,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    storage_identifier: String,
    #[serde(default)]
    relative_file_paths: Vec<String>,
    #[serde(default)]
    compression_format: String,
    #[serde(default)]
    compression_mode: String,
    #[serde(default)]
    topics_with_message_count: Vec<TopicWithCount>,
}

#[derive(Debug, Deserialize)]
struct TopicWithCount {
    topic_metadata: TopicMetadata,
}

#[derive(Debug, Deserialize)]
struct TopicMetadata {
    name: String,
    #[serde(rename = "type")]
    msg_type: String,
    #[serde(default)]
    serialization_format: String,
}

/// How the storage files or messages of a recording are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compressed {
    No,
    /// Each storage file is a zstd file (`x_0.db3.zstd`).
    Files,
    /// Each message's data is a zstd frame.
    Messages,
}

/// One recording: its storage files in order, and how they are compressed.
struct Recording {
    files: Vec<PathBuf>,
    compressed: Compressed,
    /// Topics the metadata lists (they exist even when they recorded no message).
    topics: Vec<TopicMetadata>,
    /// What identifies this version of the recording.
    version: String,
}

/// Opens the rosbag2 recording at `path` (a folder or a `.db3` file) as one bag.
pub fn open(path: &Path, resolve: Resolve<'_>) -> Result<Bag> {
    let recording = if path.is_dir() { read_folder(path)? } else { lone_file(path)? };
    let mut merged = Merged::new(path)?;
    for file in &recording.files {
        let stored = match recording.compressed {
            Compressed::Files => Stored::Decompressed(decompress_file(file)?),
            _ => Stored::AsIs(file.clone()),
        };
        let messages_compressed = recording.compressed == Compressed::Messages;
        if is_sqlite(stored.path()) {
            merged.copy_sqlite(file, stored.path(), messages_compressed, resolve)?;
        } else {
            merged.copy_mcap(file, stored.path())?;
        }
    }
    merged.add_listed_topics(&recording.topics, resolve)?;
    let mut bag = merged.finish()?;
    bag.source_version = Some(recording.version);
    Ok(bag)
}

/// What identifies one version of a recording: the metadata file's and every storage file's
/// size and modification time (a recording is rewritten file by file).
pub fn source_version(path: &Path) -> Result<String> {
    let recording = if path.is_dir() { read_folder(path)? } else { lone_file(path)? };
    Ok(recording.version)
}

fn read_folder(dir: &Path) -> Result<Recording> {
    let yaml = dir.join("metadata.yaml");
    let text = std::fs::read_to_string(&yaml).map_err(|e| BagError::io(&yaml, e))?;
    let parsed: MetadataFile = serde_yaml_ng::from_str(&text).map_err(|e| BagError::Rosbag2 { path: yaml.clone(), reason: format!("not a rosbag2 metadata file: {e}") })?;
    let info = parsed.rosbag2_bagfile_information;
    let compressed = match (info.compression_format.as_str(), info.compression_mode.to_ascii_uppercase().as_str()) {
        ("", _) | (_, "" | "NONE") => Compressed::No,
        ("zstd", "FILE") => Compressed::Files,
        ("zstd", "MESSAGE") => Compressed::Messages,
        (format, mode) => {
            return Err(BagError::Rosbag2 { path: yaml, reason: format!("compression '{format}' per '{mode}' is not supported (zstd per file or per message is)") })
        }
    };
    if !matches!(info.storage_identifier.as_str(), "" | "sqlite3" | "mcap") {
        return Err(BagError::Rosbag2 { path: yaml, reason: format!("storage '{}' is not supported (sqlite3 and mcap are)", info.storage_identifier) });
    }
    let mut files = Vec::new();
    let mut version = vec![crate::source::local_version(&std::fs::metadata(&yaml).map_err(|e| BagError::io(&yaml, e))?)];
    for relative in &info.relative_file_paths {
        // Older recorders list paths with the folder's name in front.
        let direct = dir.join(relative);
        let file = if direct.is_file() { direct } else { dir.join(Path::new(relative).file_name().unwrap_or_default()) };
        let meta = std::fs::metadata(&file).map_err(|e| BagError::Rosbag2 { path: yaml.clone(), reason: format!("lists {relative}, which cannot be read: {e}") })?;
        version.push(crate::source::local_version(&meta));
        files.push(file);
    }
    if info.relative_file_paths.is_empty() {
        // Written by hand, or by a tool that leaves the list out: the folder's storage files,
        // in split order (`name_0`, `name_1`, …, `name_10`).
        for file in storage_files_in(dir)? {
            let meta = std::fs::metadata(&file).map_err(|e| BagError::io(&file, e))?;
            version.push(crate::source::local_version(&meta));
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(BagError::Rosbag2 { path: yaml, reason: "lists no storage files (relative_file_paths), and the folder has no .db3 or .mcap file".into() });
    }
    let topics = info.topics_with_message_count.into_iter().map(|t| t.topic_metadata).collect();
    Ok(Recording { files, compressed, topics, version: format!("rosbag2;{}", version.join(";")) })
}

/// The `.db3` and `.mcap` files (possibly `.zstd`) of a folder, in split order.
fn storage_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| BagError::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = name.strip_suffix(".zstd").unwrap_or(&name);
            path.is_file() && (name.ends_with(".db3") || name.ends_with(".mcap"))
        })
        .collect();
    files.sort_by_key(|path| (split_index(path), path.clone()));
    Ok(files)
}

/// The number after the last `_` of a storage file's stem (`drive_12.db3` → 12).
fn split_index(path: &Path) -> u64 {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    stem.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn lone_file(path: &Path) -> Result<Recording> {
    let meta = std::fs::metadata(path).map_err(|e| BagError::io(path, e))?;
    Ok(Recording { files: vec![path.to_path_buf()], compressed: Compressed::No, topics: Vec::new(), version: crate::source::local_version(&meta) })
}

fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == SQLITE_MAGIC
}

/// A storage file as read: the file itself, or its decompressed copy (deleted when dropped).
enum Stored {
    AsIs(PathBuf),
    Decompressed(tempfile::TempPath),
}

impl Stored {
    fn path(&self) -> &Path {
        match self {
            Stored::AsIs(path) => path,
            Stored::Decompressed(temp) => temp,
        }
    }
}

/// Decompresses a zstd storage file into a temporary file.
fn decompress_file(file: &Path) -> Result<tempfile::TempPath> {
    let input = File::open(file).map_err(|e| BagError::io(file, e))?;
    let mut temp = tempfile::NamedTempFile::new().map_err(|e| BagError::io(std::env::temp_dir(), e))?;
    zstd::stream::copy_decode(input, temp.as_file_mut()).map_err(|e| BagError::Rosbag2 { path: file.to_path_buf(), reason: format!("not a zstd file as the metadata says: {e}") })?;
    Ok(temp.into_temp_path())
}

/// A channel of the merged file: topic, type, and how its messages are serialized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ChannelKey {
    topic: String,
    msg_type: String,
    serialization: String,
}

/// The merged MCAP file being written.
struct Merged {
    path: PathBuf,
    writer: mcap::Writer<BufWriter<File>>,
    channels: HashMap<ChannelKey, u16>,
    /// Schema ids by (type, definition text).
    schemas: HashMap<(String, String), u16>,
    /// Channels (by topic) that cannot be decoded: their type, and why (their connections
    /// say it).
    undefined: BTreeMap<String, (String, Encoding)>,
    sequence: u32,
}

impl Merged {
    fn new(path: &Path) -> Result<Merged> {
        let file = tempfile::tempfile().map_err(|e| BagError::io(std::env::temp_dir(), e))?;
        let options = mcap::WriteOptions::new().compression(None).chunk_size(Some(CHUNK_BYTES)).profile("ros2");
        let writer = options.create(BufWriter::new(file)).map_err(|e| merge_error(path, e))?;
        Ok(Merged { path: path.to_path_buf(), writer, channels: HashMap::new(), schemas: HashMap::new(), undefined: BTreeMap::new(), sequence: 0 })
    }

    /// The channel of `key`, added on first use with `definition` (`None`: no definition).
    fn channel(&mut self, key: &ChannelKey, definition: Option<(&str, &str)>) -> Result<u16> {
        if let Some(id) = self.channels.get(key) {
            return Ok(*id);
        }
        let schema_id = match definition {
            Some((encoding, text)) => match self.schemas.get(&(key.msg_type.clone(), text.to_string())) {
                Some(id) => *id,
                None => {
                    let id = self.writer.add_schema(&key.msg_type, encoding, text.as_bytes()).map_err(|e| merge_error(&self.path, e))?;
                    self.schemas.insert((key.msg_type.clone(), text.to_string()), id);
                    id
                }
            },
            None => 0,
        };
        let id = self.writer.add_channel(schema_id, &key.topic, &key.serialization, &BTreeMap::new()).map_err(|e| merge_error(&self.path, e))?;
        self.channels.insert(key.clone(), id);
        Ok(id)
    }

    fn write(&mut self, channel: u16, time: u64, data: &[u8]) -> Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let header = mcap::records::MessageHeader { channel_id: channel, sequence: self.sequence, log_time: time, publish_time: time };
        self.writer.write_to_known_channel(&header, data).map_err(|e| merge_error(&self.path, e))
    }

    /// The definition of `msg_type` for a channel: the recording's, else the resolver's, else
    /// none (the reason is kept for the channel's connection).
    fn definition_of(&mut self, topic: &str, msg_type: &str, in_file: Option<&(String, String)>, resolve: Resolve<'_>) -> Option<(String, String)> {
        if let Some((encoding, text)) = in_file.filter(|(encoding, text)| !text.trim().is_empty() && (encoding == "ros2msg" || encoding == "ros2idl")) {
            return Some((encoding.clone(), text.clone()));
        }
        match resolve(msg_type) {
            Ok(text) => Some(("ros2msg".to_string(), text)),
            Err(reason) => {
                let why = match in_file {
                    Some((encoding, _)) if !matches!(encoding.as_str(), "ros2msg" | "ros2idl" | "" | "unknown") => {
                        format!("its definition in the recording is '{encoding}', which is not read, and {reason}")
                    }
                    _ => reason,
                };
                self.undefined.insert(topic.to_string(), (msg_type.to_string(), Encoding::MissingDefinition(why)));
                None
            }
        }
    }

    /// Copies every message of an SQLite storage file, in time order.
    fn copy_sqlite(&mut self, listed: &Path, file: &Path, messages_compressed: bool, resolve: Resolve<'_>) -> Result<()> {
        let db = open_sqlite(listed, file)?;
        let sql_error = |e: rusqlite::Error| BagError::Rosbag2 { path: listed.to_path_buf(), reason: format!("SQLite: {e}") };
        let definitions = read_definitions(&db).map_err(sql_error)?;
        let mut topics: HashMap<i64, u16> = HashMap::new();
        {
            let mut statement = db.prepare("SELECT id, name, type, serialization_format FROM topics").map_err(sql_error)?;
            let rows = statement
                .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?)))
                .map_err(sql_error)?;
            for row in rows {
                let (id, topic, msg_type, serialization) = row.map_err(sql_error)?;
                let key = ChannelKey { topic, msg_type: ros2_type_name(&msg_type), serialization };
                let channel = self.channel_with_definition(&key, definitions.get(&key.msg_type), resolve)?;
                topics.insert(id, channel);
            }
        }
        let mut statement = db.prepare("SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp, id").map_err(sql_error)?;
        let mut rows = statement.query([]).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let topic_id: i64 = row.get(0).map_err(sql_error)?;
            let time: i64 = row.get(1).map_err(sql_error)?;
            let data = row.get_ref(2).map_err(sql_error)?.as_blob().map_err(|e| sql_error(e.into()))?;
            let Some(&channel) = topics.get(&topic_id) else {
                return Err(BagError::Rosbag2 { path: listed.to_path_buf(), reason: format!("a message names topic id {topic_id}, which the topics table does not have") });
            };
            let time = u64::try_from(time).unwrap_or(0);
            if messages_compressed {
                let plain = zstd::decode_all(data).map_err(|e| BagError::Rosbag2 { path: listed.to_path_buf(), reason: format!("a message at {time} ns is not a zstd frame as the metadata says: {e}") })?;
                self.write(channel, time, &plain)?;
            } else {
                self.write(channel, time, data)?;
            }
        }
        Ok(())
    }

    fn channel_with_definition(&mut self, key: &ChannelKey, in_file: Option<&(String, String)>, resolve: Resolve<'_>) -> Result<u16> {
        if let Some(id) = self.channels.get(key) {
            return Ok(*id);
        }
        let definition = if key.serialization == "cdr" { self.definition_of(&key.topic, &key.msg_type, in_file, resolve) } else { None };
        if key.serialization != "cdr" {
            let why = format!("'{}' serialization (cdr is read)", key.serialization);
            self.undefined.insert(key.topic.clone(), (key.msg_type.clone(), Encoding::Unsupported(why)));
        }
        self.channel(key, definition.as_ref().map(|(encoding, text)| (encoding.as_str(), text.as_str())))
    }

    /// Copies every message of an MCAP storage file (a split of a rosbag2 folder).
    fn copy_mcap(&mut self, listed: &Path, file: &Path) -> Result<()> {
        let split = Bag::open(file)?;
        let mut channels: HashMap<u32, u16> = HashMap::new();
        for conn in &split.connections {
            let (serialization, schema_encoding) = match &conn.encoding {
                Encoding::Ros1 => ("ros1", "ros1msg"),
                Encoding::Ros2Cdr => ("cdr", "ros2msg"),
                Encoding::Ros2Idl => ("cdr", "ros2idl"),
                other @ (Encoding::Unsupported(_) | Encoding::MissingDefinition(_)) => {
                    self.undefined.insert(conn.topic.clone(), (conn.msg_type.clone(), other.clone()));
                    ("cdr", "")
                }
            };
            let key = ChannelKey { topic: conn.topic.clone(), msg_type: conn.msg_type.clone(), serialization: serialization.into() };
            let definition = (!schema_encoding.is_empty()).then_some((schema_encoding, conn.definition.as_str()));
            channels.insert(conn.id, self.channel(&key, definition)?);
        }
        for chunk in split.read_chunks(&split.chunks) {
            let mut chunk = chunk?;
            for item in chunk.records() {
                if let ChunkItem::Message { conn, time, data } = item {
                    let Some(&channel) = channels.get(&conn) else { continue };
                    self.write(channel, time, data)?;
                }
            }
            if let Some(problem) = chunk.take_problem() {
                return Err(BagError::Rosbag2 { path: listed.to_path_buf(), reason: problem });
            }
        }
        Ok(())
    }

    /// Channels for the topics the metadata lists that no storage file had (they recorded no
    /// message, but the recording has them).
    fn add_listed_topics(&mut self, topics: &[TopicMetadata], resolve: Resolve<'_>) -> Result<()> {
        for topic in topics {
            if self.channels.keys().any(|k| k.topic == topic.name) {
                continue;
            }
            let serialization = if topic.serialization_format.is_empty() { "cdr".to_string() } else { topic.serialization_format.clone() };
            let key = ChannelKey { topic: topic.name.clone(), msg_type: ros2_type_name(&topic.msg_type), serialization };
            self.channel_with_definition(&key, None, resolve)?;
        }
        Ok(())
    }

    /// Closes the merged file and opens it as a bag of the recording at `self.path`.
    fn finish(mut self) -> Result<Bag> {
        self.writer.finish().map_err(|e| merge_error(&self.path, e))?;
        let file = self.writer.into_inner().into_inner().map_err(|e| BagError::io(&self.path, e.into_error()))?;
        let mut bag = Bag::open_file(&self.path, &file)?;
        bag.format = BagFormat::Rosbag2;
        for conn in &mut bag.connections {
            if let Some((msg_type, encoding)) = self.undefined.get(&conn.topic) {
                conn.msg_type = msg_type.clone();
                conn.encoding = encoding.clone();
            }
        }
        Ok(bag)
    }
}

fn merge_error(path: &Path, e: impl std::fmt::Display) -> BagError {
    BagError::Rosbag2 { path: path.to_path_buf(), reason: format!("copying its messages into one file: {e}") }
}

/// Opens an SQLite storage file for reading only. A recording is read as a file that will not
/// change (no locks, no journal), so read-only folders and files work.
fn open_sqlite(listed: &Path, file: &Path) -> Result<Sqlite> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let uri = format!("file:{}?immutable=1", uri_path(file));
    Sqlite::open_with_flags(&uri, flags).map_err(|e| BagError::Rosbag2 { path: listed.to_path_buf(), reason: format!("cannot open as SQLite: {e}") })
}

/// `path` for an SQLite `file:` URI (characters with a meaning there escaped).
fn uri_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' | '?' | '#' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The `message_definitions` table (ROS 2 Iron and later): (encoding, text) by type name.
fn read_definitions(db: &Sqlite) -> rusqlite::Result<HashMap<String, (String, String)>> {
    let exists: bool = db.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'message_definitions'", [], |row| row.get::<_, i64>(0))? > 0;
    let mut out = HashMap::new();
    if !exists {
        return Ok(out);
    }
    let mut statement = db.prepare("SELECT topic_type, encoding, encoded_message_definition FROM message_definitions")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))?;
    for row in rows {
        let (msg_type, encoding, text) = row?;
        out.insert(ros2_type_name(&msg_type), (encoding, text));
    }
    Ok(out)
}

/// `pkg/Name` (recorders before Foxy) → `pkg/msg/Name`; other names unchanged.
fn ros2_type_name(name: &str) -> String {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, ty] => format!("{pkg}/msg/{ty}"),
        _ => name.to_string(),
    }
}
