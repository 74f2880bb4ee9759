//! Scenes from per-tick counts: a scene is a maximal run of ticks with at least one object of
//! the target class in lane, `start` = its first tick, `end` = the first tick back at zero
//! (exclusive); runs closer than `max_gap_ms` merge and runs shorter than `min_duration_ms` drop.

use serde::Serialize;

/// One detected scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scene {
    pub start_time_ns: i64,
    /// First tick back at zero; `None` when the bag ends during the scene.
    pub end_time_ns: Option<i64>,
    pub num_people_in_scene_start: u32,
    pub max_people_in_scene: u32,
    /// The scene was already under way at the bag's first tick.
    pub open_at_start: bool,
    pub open_at_end: bool,
}

/// Maximal runs of ticks with a positive count, then gap merging and the minimum duration.
pub fn scenes_from_counts(ticks: &[i64], counts: &[u32], min_duration_ms: u64, max_gap_ms: u64) -> Vec<Scene> {
    let mut scenes: Vec<Scene> = Vec::new();
    let mut i = 0;
    while i < counts.len() {
        if counts[i] == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut max = 0;
        while i < counts.len() && counts[i] > 0 {
            max = max.max(counts[i]);
            i += 1;
        }
        scenes.push(Scene {
            start_time_ns: ticks[start],
            end_time_ns: ticks.get(i).copied(),
            num_people_in_scene_start: counts[start],
            max_people_in_scene: max,
            open_at_start: start == 0,
            open_at_end: i == counts.len(),
        });
    }
    let max_gap = max_gap_ms as i64 * 1_000_000;
    let mut merged: Vec<Scene> = Vec::new();
    for s in scenes {
        match merged.last_mut() {
            Some(prev) if max_gap > 0 && prev.end_time_ns.is_some_and(|e| s.start_time_ns - e <= max_gap) => {
                prev.end_time_ns = s.end_time_ns;
                prev.max_people_in_scene = prev.max_people_in_scene.max(s.max_people_in_scene);
                prev.open_at_end = s.open_at_end;
            }
            _ => merged.push(s),
        }
    }
    let min = min_duration_ms as i64 * 1_000_000;
    merged.retain(|s| s.end_time_ns.is_none_or(|e| e - s.start_time_ns >= min));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_runs_with_exclusive_ends_and_open_flags() {
        let t: Vec<i64> = (0..8).map(|k| k * 100).collect();
        let s = scenes_from_counts(&t, &[1, 0, 2, 3, 0, 0, 1, 1], 0, 0);
        assert_eq!(s.len(), 3);
        assert!(s[0].open_at_start && s[0].end_time_ns == Some(100));
        assert_eq!((s[1].start_time_ns, s[1].end_time_ns, s[1].num_people_in_scene_start, s[1].max_people_in_scene), (200, Some(400), 2, 3));
        assert!(s[2].open_at_end && s[2].end_time_ns.is_none());
    }

    #[test]
    fn gaps_merge_and_short_scenes_drop() {
        let t: Vec<i64> = (0..10).map(|k| k * 100_000_000).collect();
        let c = [0, 1, 0, 1, 1, 0, 0, 0, 1, 0];
        let merged = scenes_from_counts(&t, &c, 0, 100);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].start_time_ns, merged[0].end_time_ns), (100_000_000, Some(500_000_000)));
        let long_only = scenes_from_counts(&t, &c, 200, 0);
        assert_eq!(long_only.len(), 1);
        assert_eq!(long_only[0].start_time_ns, 300_000_000);
    }
}
