//! How well found scenes match ground truth (`detect --report`).

use serde::Serialize;

/// Precision and recall of found scenes against ground-truth scenes (start/end ns), matched one
/// to one: each true scene is matched to at most one found scene that overlaps it (largest
/// overlaps first), so a true scene reported in pieces counts one piece as correct and the
/// others as false. `exact` counts found scenes equal to a true one to the tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    pub found: usize,
    pub truth: usize,
    /// Found scenes matched to a true scene.
    pub matched: usize,
    pub exact: usize,
    pub precision: f64,
    pub recall: f64,
}

pub fn quality(found: &[(i64, i64)], truth: &[(i64, i64)]) -> Quality {
    let overlap = |a: &(i64, i64), b: &(i64, i64)| a.1.min(b.1) - a.0.max(b.0);
    let mut pairs: Vec<(i64, usize, usize)> = Vec::new();
    for (i, f) in found.iter().enumerate() {
        for (j, t) in truth.iter().enumerate() {
            let o = overlap(f, t);
            if o > 0 {
                pairs.push((o, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut found_used, mut truth_used) = (vec![false; found.len()], vec![false; truth.len()]);
    let mut matched = 0;
    for (_, i, j) in pairs {
        if !found_used[i] && !truth_used[j] {
            found_used[i] = true;
            truth_used[j] = true;
            matched += 1;
        }
    }
    let exact = found.iter().filter(|f| truth.contains(f)).count();
    let ratio = |n: usize, d: usize| if d == 0 { 1.0 } else { n as f64 / d as f64 };
    Quality {
        found: found.len(),
        truth: truth.len(),
        matched,
        exact,
        precision: ratio(matched, found.len()),
        recall: ratio(matched, truth.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scene_found_in_pieces_counts_once() {
        let truth = [(0, 100), (200, 300)];
        let pieces = [(0, 40), (50, 100), (200, 300), (400, 450)];
        let q = quality(&pieces, &truth);
        assert_eq!((q.found, q.matched, q.exact), (4, 2, 1));
        assert_eq!(q.precision, 0.5);
        assert_eq!(q.recall, 1.0);
        let whole = quality(&truth, &truth);
        assert_eq!((whole.precision, whole.recall, whole.exact), (1.0, 1.0, 2));
        let none = quality(&[], &truth);
        assert_eq!((none.precision, none.recall), (1.0, 0.0));
    }
}
