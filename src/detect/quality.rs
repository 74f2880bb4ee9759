//! How well found scenes match ground truth (`detect --report`).

use serde::Serialize;

/// Precision and recall of found scenes against ground-truth scenes (start/end ns). A found
/// scene is correct when it overlaps a true one; a true scene is found when any found scene
/// overlaps it. `exact` counts found scenes equal to a true one to the tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    pub found: usize,
    pub truth: usize,
    pub exact: usize,
    pub precision: f64,
    pub recall: f64,
}

pub fn quality(found: &[(i64, i64)], truth: &[(i64, i64)]) -> Quality {
    let overlaps = |a: &(i64, i64), b: &(i64, i64)| a.0 < b.1 && b.0 < a.1;
    let correct = found.iter().filter(|f| truth.iter().any(|t| overlaps(f, t))).count();
    let recalled = truth.iter().filter(|t| found.iter().any(|f| overlaps(f, t))).count();
    let exact = found.iter().filter(|f| truth.contains(f)).count();
    let ratio = |n: usize, d: usize| if d == 0 { 1.0 } else { n as f64 / d as f64 };
    Quality {
        found: found.len(),
        truth: truth.len(),
        exact,
        precision: ratio(correct, found.len()),
        recall: ratio(recalled, truth.len()),
    }
}
