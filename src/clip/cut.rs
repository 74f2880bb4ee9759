//! Which messages a clip holds: every message of the bag whose record time lies in the window,
//! and, for each latched or static topic, the last message before the window (so a viewer has
//! the transforms, camera calibration and map from the clip's first instant). Only the chunks
//! the window needs are read: those whose index times overlap it, then, for latched topics
//! still missing, earlier chunks from the window backwards (and only those that the index says
//! hold such a topic).

use std::collections::{BTreeMap, HashSet};

use crate::bag::{Bag, ChunkItem, ChunkRef, Connection};
use crate::error::Result;

/// The messages of a clip, in time order, with the connections they belong to.
#[derive(Debug, Default)]
pub struct Cut {
    pub connections: Vec<Connection>,
    /// (connection id, record time ns, payload).
    pub messages: Vec<(u32, u64, Vec<u8>)>,
    /// Of `messages`, those from before the window (latched or static topics).
    pub latched: usize,
    pub chunks_read: usize,
    pub chunks_total: usize,
}

/// Whether `topic` matches one of `patterns` (`*` matches any run of characters).
pub fn topic_matches(patterns: &[String], topic: &str) -> bool {
    patterns.iter().any(|p| glob(p.as_bytes(), topic.as_bytes()))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.split_first().is_some_and(|(t, text)| t == c && glob(rest, text)),
    }
}

/// The messages of `bag` in `[from_ns, to_ns]`, plus the last earlier message of each latched
/// connection (its `latching` flag, or its topic matching `latched_topics`).
pub fn cut(bag: &Bag, from_ns: u64, to_ns: u64, latched_topics: &[String]) -> Result<Cut> {
    let latched: HashSet<u32> = bag.connections.iter().filter(|c| c.latching || topic_matches(latched_topics, &c.topic)).map(|c| c.id).collect();
    let overlaps = |c: &ChunkRef| match (c.start_time, c.end_time) {
        (Some(start), Some(end)) => start <= to_ns && end >= from_ns,
        _ => true,
    };
    let in_window: Vec<ChunkRef> = bag.chunks.iter().filter(|c| overlaps(c)).cloned().collect();
    let mut out = Cut { connections: Vec::new(), chunks_total: bag.chunks.len(), ..Cut::default() };
    let mut before: BTreeMap<u32, (u64, Vec<u8>)> = BTreeMap::new();
    for chunk in bag.read_chunks(&in_window) {
        let chunk = chunk?;
        out.chunks_read += 1;
        for item in chunk.records() {
            if let ChunkItem::Message { conn, time, data } = item {
                if (from_ns..=to_ns).contains(&time) {
                    out.messages.push((conn, time, data.to_vec()));
                } else if time < from_ns && latched.contains(&conn) {
                    keep_latest(&mut before, conn, time, data);
                }
            }
        }
    }
    find_latched_before(bag, from_ns, &latched, &mut before, &mut out)?;
    out.latched = before.len();
    out.messages.extend(before.into_iter().map(|(conn, (time, data))| (conn, time, data)));
    out.messages.sort_by_key(|(_, time, _)| *time);
    let used: HashSet<u32> = out.messages.iter().map(|(conn, _, _)| *conn).collect();
    out.connections = bag.connections.iter().filter(|c| used.contains(&c.id)).cloned().collect();
    Ok(out)
}

fn keep_latest(before: &mut BTreeMap<u32, (u64, Vec<u8>)>, conn: u32, time: u64, data: &[u8]) {
    if before.get(&conn).is_none_or(|(t, _)| time >= *t) {
        before.insert(conn, (time, data.to_vec()));
    }
}

/// Reads the chunks before the window, latest first, until every latched connection that has
/// a message before the window has been found.
fn find_latched_before(bag: &Bag, from_ns: u64, latched: &HashSet<u32>, before: &mut BTreeMap<u32, (u64, Vec<u8>)>, out: &mut Cut) -> Result<()> {
    let mut earlier: Vec<&ChunkRef> = bag.chunks.iter().filter(|c| c.end_time.is_some_and(|end| end < from_ns)).collect();
    earlier.sort_by_key(|c| std::cmp::Reverse(c.end_time));
    for chunk in earlier {
        let missing: HashSet<u32> = latched.iter().copied().filter(|c| !before.contains_key(c)).collect();
        if missing.is_empty() {
            break;
        }
        // The index says which connections a chunk holds; skip those without a missing one.
        if !chunk.counts.is_empty() && !chunk.counts.iter().any(|(conn, n)| *n > 0 && missing.contains(conn)) {
            continue;
        }
        for plain in bag.read_chunks(std::slice::from_ref(chunk)) {
            let plain = plain?;
            out.chunks_read += 1;
            for item in plain.records() {
                if let ChunkItem::Message { conn, time, data } = item {
                    if time < from_ns && missing.contains(&conn) {
                        keep_latest(before, conn, time, data);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_with_stars() {
        let patterns = vec!["/tf_static".to_string(), "*camera_info".to_string(), "/map*".to_string()];
        assert!(topic_matches(&patterns, "/tf_static"));
        assert!(topic_matches(&patterns, "/camera/front/camera_info"));
        assert!(topic_matches(&patterns, "/map_metadata"));
        assert!(!topic_matches(&patterns, "/tf"));
        assert!(!topic_matches(&patterns, "/camera/front/image"));
    }
}
