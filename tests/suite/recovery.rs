//! Recovery of damaged bags, with exact expectations: an unindexed bag (index_pos 0, index
//! section missing), a bag torn in the middle of a chunk, a recorder killed with a chunk still
//! open, and a chunk whose data is overwritten. The expected counts come from a minimal record
//! walker written here, independent of the library's reader, run over the intact file.

use std::collections::BTreeMap;

use crate::common::*;
use serde_json::Value;

/// One top-level or in-chunk record: where it is, its op code and header fields.
struct Rec {
    pos: usize,
    data_start: usize,
    end: usize,
    fields: BTreeMap<String, Vec<u8>>,
}

impl Rec {
    fn op(&self) -> u8 {
        self.fields["op"][0]
    }
    fn u32(&self, name: &str) -> u32 {
        u32::from_le_bytes(self.fields[name][..4].try_into().unwrap())
    }
    fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.fields[name]).into_owned()
    }
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Complete records in `bytes[start..end]`, stopping at the first one that does not fit.
fn walk(bytes: &[u8], start: usize, end: usize) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos + 4 <= end {
        let header_len = le32(bytes, pos);
        let header_end = pos + 4 + header_len;
        if header_end + 4 > end {
            break;
        }
        let data_start = header_end + 4;
        let rec_end = data_start + le32(bytes, header_end);
        if rec_end > end {
            break;
        }
        let mut fields = BTreeMap::new();
        let mut f = pos + 4;
        while f < header_end {
            let len = le32(bytes, f);
            let field = &bytes[f + 4..f + 4 + len];
            let eq = field.iter().position(|&b| b == b'=').unwrap();
            fields.insert(String::from_utf8_lossy(&field[..eq]).into_owned(), field[eq + 1..].to_vec());
            f += 4 + len;
        }
        out.push(Rec { pos, data_start, end: rec_end, fields });
        pos = rec_end;
    }
    out
}

const CHUNK: u8 = 5;
const MESSAGE: u8 = 2;
const CONNECTION: u8 = 7;

/// The intact uncompressed sample bag, its top-level records, and connection id → topic.
fn intact() -> (Vec<u8>, Vec<Rec>, BTreeMap<u32, String>) {
    let bytes = std::fs::read(manifest_dir().join("sample-bags/drive_c.bag")).unwrap();
    let top = walk(&bytes, 13, bytes.len());
    let mut topics = BTreeMap::new();
    for r in top.iter().filter(|r| r.op() == CONNECTION) {
        topics.insert(r.u32("conn"), r.text("topic"));
    }
    (bytes, top, topics)
}

/// Messages per topic in the records of `bytes[start..end]` (uncompressed chunk data).
fn count_messages(bytes: &[u8], start: usize, end: usize, topics: &BTreeMap<u32, String>, into: &mut BTreeMap<String, u64>) {
    for r in walk(bytes, start, end).iter().filter(|r| r.op() == MESSAGE) {
        *into.entry(topics[&r.u32("conn")].clone()).or_default() += 1;
    }
}

fn zero_index_pos(bytes: &mut [u8]) {
    let needle = b"index_pos=";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    bytes[at..at + 8].fill(0);
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `scenes info --json` topics as topic → (messages, lost, recovered_from_cut_chunk), and the damage.
fn info_of(path: &std::path::Path) -> (BTreeMap<String, (u64, u64, u64)>, Value) {
    let out = scenes(&["--json", "info", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let infos: Value = serde_json::from_slice(&out.stdout).unwrap();
    let info = &infos[0];
    let mut topics = BTreeMap::new();
    for t in info["topics"].as_array().unwrap() {
        topics.insert(
            t["topic"].as_str().unwrap().to_string(),
            (t["messages"].as_u64().unwrap(), t["lost"].as_u64().unwrap(), t["recovered_from_cut_chunk"].as_u64().unwrap()),
        );
    }
    (topics, info["damage"].clone())
}

/// `scenes ingest --json` per-topic (messages_ingested, messages_lost, recovered_from_cut_chunk).
fn ingest_of(path: &std::path::Path) -> BTreeMap<String, (u64, u64, u64)> {
    let lake = tempfile::tempdir().unwrap();
    let report = ingest_json(path, lake.path(), &[]);
    let mut topics = BTreeMap::new();
    for t in report["ingested"][0]["topics"].as_array().unwrap() {
        topics.insert(
            t["topic"].as_str().unwrap().to_string(),
            (
                t["messages_ingested"].as_u64().unwrap(),
                t["messages_lost"].as_u64().unwrap(),
                t["recovered_from_cut_chunk"].as_u64().unwrap(),
            ),
        );
    }
    topics
}

fn with_zero_losses(counts: &BTreeMap<String, u64>, topics: &BTreeMap<u32, String>) -> BTreeMap<String, (u64, u64, u64)> {
    topics.values().map(|t| (t.clone(), (counts.get(t).copied().unwrap_or(0), 0, 0))).collect()
}

#[test]
fn unindexed_bag_without_index_section_recovers_everything() {
    let (bytes, top, topics) = intact();
    let chunks: Vec<&Rec> = top.iter().filter(|r| r.op() == CHUNK).collect();
    let mut expected = BTreeMap::new();
    for c in &chunks {
        count_messages(&bytes, c.data_start, c.end, &topics, &mut expected);
    }
    // A bag whose recorder never wrote the index: index_pos 0 and the file ends after the last
    // chunk's index records.
    let index_start = top.iter().rposition(|r| r.op() == CHUNK).map(|i| {
        top[i + 1..].iter().take_while(|r| r.op() == 4).last().map(|r| r.end).unwrap_or(top[i].end)
    });
    let mut damaged = bytes[..index_start.unwrap()].to_vec();
    zero_index_pos(&mut damaged);
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "unindexed.bag", &damaged);

    let want = with_zero_losses(&expected, &topics);
    let (info, damage) = info_of(&path);
    assert_eq!(info, want);
    eprintln!("unindexed, per topic (recovered, lost, from cut chunk): {info:?}");
    assert!(damage["cut_chunk"].is_null());
    assert_eq!(ingest_of(&path), want);
    assert!(expected.values().sum::<u64>() > 1000, "the test bag has messages to recover");
}

#[test]
fn bag_torn_mid_chunk_reports_what_the_cut_chunk_gave() {
    let (bytes, top, topics) = intact();
    let chunks: Vec<&Rec> = top.iter().filter(|r| r.op() == CHUNK).collect();
    let cut_chunk = chunks[chunks.len() / 2];
    let cut = cut_chunk.data_start + (cut_chunk.end - cut_chunk.data_start) * 2 / 3;
    let mut expected = BTreeMap::new();
    for c in chunks.iter().filter(|c| c.pos < cut_chunk.pos) {
        count_messages(&bytes, c.data_start, c.end, &topics, &mut expected);
    }
    let mut from_cut = BTreeMap::new();
    count_messages(&bytes, cut_chunk.data_start, cut, &topics, &mut from_cut);
    for (t, n) in &from_cut {
        *expected.entry(t.clone()).or_default() += n;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "torn.bag", &bytes[..cut]);

    let want: BTreeMap<String, (u64, u64, u64)> = topics
        .values()
        .map(|t| (t.clone(), (expected.get(t).copied().unwrap_or(0), 0, from_cut.get(t).copied().unwrap_or(0))))
        .collect();
    let (info, damage) = info_of(&path);
    assert_eq!(info, want);
    eprintln!("torn mid-chunk, per topic (recovered, lost, from cut chunk): {info:?}; cut chunk {}", damage["cut_chunk"]);
    assert_eq!(damage["cut_chunk"]["pos"].as_u64(), Some(cut_chunk.pos as u64));
    assert_eq!(damage["cut_chunk"]["present_bytes"].as_u64(), Some((cut - cut_chunk.data_start) as u64));
    assert_eq!(damage["cut_chunk"]["declared_bytes"].as_u64(), Some((cut_chunk.end - cut_chunk.data_start) as u64));
    assert_eq!(ingest_of(&path), want);
    assert!(from_cut.values().sum::<u64>() > 0, "the cut chunk gave messages");

    let text = scenes(&["info", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("recovery per topic"), "{text}");
    assert!(text.contains("of them from the cut chunk"), "{text}");
}

/// A recorder killed mid-recording leaves its open chunk with size 0 in the header and the
/// message records written raw after it; the last record may be cut.
#[test]
fn recorder_killed_with_an_open_chunk() {
    let (bytes, top, topics) = intact();
    let chunks: Vec<&Rec> = top.iter().filter(|r| r.op() == CHUNK).collect();
    let open = chunks[chunks.len() - 1];
    let inner = walk(&bytes, open.data_start, open.end);
    let messages: Vec<&Rec> = inner.iter().filter(|r| r.op() == MESSAGE).collect();
    let torn_message = messages[messages.len() / 2];

    let mut damaged = bytes[..open.pos].to_vec();
    // The chunk header as written when the chunk was opened: size=0, data length 0.
    let mut header = bytes[open.pos..open.data_start].to_vec();
    let size_at = header.windows(5).position(|w| w == b"size=").unwrap() + 5;
    header[size_at..size_at + 4].fill(0);
    let len = header.len();
    header[len - 4..].fill(0);
    damaged.extend_from_slice(&header);
    // Its records up to the middle of one message's data.
    let cut = torn_message.data_start + 2;
    damaged.extend_from_slice(&bytes[open.data_start..cut]);
    zero_index_pos(&mut damaged);

    let mut expected = BTreeMap::new();
    for c in chunks.iter().filter(|c| c.pos < open.pos) {
        count_messages(&bytes, c.data_start, c.end, &topics, &mut expected);
    }
    let mut outside = BTreeMap::new();
    count_messages(&bytes, open.data_start, torn_message.pos, &topics, &mut outside);
    for (t, n) in &outside {
        *expected.entry(t.clone()).or_default() += n;
    }
    let torn_topic = topics[&torn_message.u32("conn")].clone();
    let want: BTreeMap<String, (u64, u64, u64)> = topics
        .values()
        .map(|t| (t.clone(), (expected.get(t).copied().unwrap_or(0), u64::from(*t == torn_topic), 0)))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "recording.bag.active", &damaged);
    let (info, damage) = info_of(&path);
    assert_eq!(info, want);
    eprintln!("open chunk, per topic (recovered, lost, from cut chunk): {info:?}; outside chunks {}", damage["messages_outside_chunks"]);
    assert_eq!(damage["messages_outside_chunks"].as_u64(), Some(outside.values().sum::<u64>()));
    assert!(outside.values().sum::<u64>() > 10);
    assert_eq!(ingest_of(&path), want);
}

/// Garbage in the middle of a chunk: the chunk's index records still say how many messages it
/// held, so the loss is counted exactly, and the chunks after it are read in full.
#[test]
fn overwritten_chunk_data_counts_exact_losses() {
    let (bytes, top, topics) = intact();
    let chunks: Vec<&Rec> = top.iter().filter(|r| r.op() == CHUNK).collect();
    let hit = chunks[1];
    let inner = walk(&bytes, hit.data_start, hit.end);
    let victim = inner.iter().filter(|r| r.op() == MESSAGE).nth(5).unwrap();
    let mut damaged = bytes.clone();
    zero_index_pos(&mut damaged);
    // An impossible header length where the sixth message record starts.
    damaged[victim.pos..victim.pos + 4].copy_from_slice(&u32::MAX.to_le_bytes());

    let mut total = BTreeMap::new();
    for c in &chunks {
        count_messages(&bytes, c.data_start, c.end, &topics, &mut total);
    }
    let mut lost = BTreeMap::new();
    count_messages(&bytes, victim.pos, hit.end, &topics, &mut lost);
    let want: BTreeMap<String, (u64, u64, u64)> = topics
        .values()
        .map(|t| {
            let l = lost.get(t).copied().unwrap_or(0);
            (t.clone(), (total.get(t).copied().unwrap_or(0) - l, l, 0))
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "overwritten.bag", &damaged);
    let (info, _) = info_of(&path);
    assert_eq!(info, want);
    eprintln!("overwritten chunk, per topic (recovered, lost, from cut chunk): {info:?}");
    assert!(lost.values().sum::<u64>() > 0);
    assert_eq!(ingest_of(&path), want);
}
