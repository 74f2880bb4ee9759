//! Image-space lane geometry for `scenes detect`: which lane region a detected box is in, by
//! two rules.
//!
//! - [`ego_footprint`] (the default): the box's bottom-centre; each lane line's x interpolated
//!   along its polyline at that image row; the object is in the ego lane when it lies between the
//!   two lines that straddle `ego_x` at that row.
//! - [`reference_rule`] (parity with the pipeline we replace): the 4 box corners; for each lane
//!   line its nearest point to the corner (strictly within `max_point_distance`); a corner is in
//!   `between_i_and_{i+1}` when its x lies between those two points' x (inclusive). Unlike the
//!   original, empty lines, lines with no point in range and gaps in the list are skipped
//!   instead of crashing.

/// A point in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// A box by its centre and size, in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub center_x: f64,
    pub center_y: f64,
    pub width: f64,
    pub height: f64,
}

impl BBox {
    /// Bottom-centre: where the object touches the ground.
    pub fn footprint(&self) -> Point {
        Point {
            x: self.center_x,
            y: self.center_y + self.height / 2.0,
        }
    }

    /// Corners in the reference order: (x_min,y_min), (x_max,y_min), (x_min,y_max), (x_max,y_max).
    pub fn corners(&self) -> [Point; 4] {
        let (x0, x1) = (self.center_x - self.width / 2.0, self.center_x + self.width / 2.0);
        let (y0, y1) = (self.center_y - self.height / 2.0, self.center_y + self.height / 2.0);
        [Point { x: x0, y: y0 }, Point { x: x1, y: y0 }, Point { x: x0, y: y1 }, Point { x: x1, y: y1 }]
    }
}

/// x of a lane line at image row `y`, interpolated between the two polyline points whose rows
/// bracket `y`. `None` when the line has fewer than two points or does not reach that row.
pub fn x_at_row(line: &[Point], y: f64) -> Option<f64> {
    line.windows(2).find_map(|seg| {
        let (a, b) = (seg[0], seg[1]);
        let (lo, hi) = if a.y <= b.y { (a, b) } else { (b, a) };
        if y < lo.y || y > hi.y {
            return None;
        }
        if hi.y == lo.y {
            return Some((lo.x + hi.x) / 2.0);
        }
        Some(lo.x + (hi.x - lo.x) * (y - lo.y) / (hi.y - lo.y))
    })
}

/// Result of the ego-footprint rule for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct FootprintLane {
    /// Indices (in the lane list) of the lines left and right of the footprint at its row.
    pub region: Option<(usize, usize)>,
    pub in_ego_lane: bool,
}

/// Assigns an object by its footprint. `ego_x` is the image column of the ego vehicle's centre.
pub fn ego_footprint(bbox: &BBox, lanes: &[Vec<Point>], ego_x: f64) -> FootprintLane {
    let foot = bbox.footprint();
    let mut xs: Vec<(usize, f64)> = lanes
        .iter()
        .enumerate()
        .filter_map(|(i, line)| x_at_row(line, foot.y).map(|x| (i, x)))
        .collect();
    xs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let between = |x: f64| {
        let left = xs.iter().rev().find(|(_, lx)| *lx <= x)?;
        let right = xs.iter().find(|(_, rx)| *rx > x)?;
        Some((*left, *right))
    };
    let region = between(foot.x).map(|((l, _), (r, _))| (l, r));
    let in_ego_lane = match between(ego_x) {
        Some(((_, lx), (_, rx))) => lx <= foot.x && foot.x <= rx,
        None => false,
    };
    FootprintLane { region, in_ego_lane }
}

/// The ego-footprint rule with the ego lane given by its two lines (indices into `lanes`, from
/// a lane role field) instead of by `ego_x`.
pub fn ego_footprint_by_roles(bbox: &BBox, lanes: &[Vec<Point>], ego_left: usize, ego_right: usize) -> FootprintLane {
    let foot = bbox.footprint();
    let x_of = |i: usize| lanes.get(i).and_then(|l| x_at_row(l, foot.y));
    let mut result = ego_footprint(bbox, lanes, f64::NAN);
    result.in_ego_lane = match (x_of(ego_left), x_of(ego_right)) {
        (Some(a), Some(b)) => a.min(b) <= foot.x && foot.x <= a.max(b),
        _ => false,
    };
    result
}

/// Result of the reference rule for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceLane {
    /// Corners (0–4) inside any lane region.
    pub corners_in_lane: u32,
    /// Distinct `between_i_and_{i+1}` labels, in first-hit order.
    pub lanes: Vec<String>,
}

impl ReferenceLane {
    pub fn in_lane(&self, min_corners: u32) -> bool {
        self.corners_in_lane >= min_corners
    }
}

/// Nearest point of `line` to `p`, if one is strictly closer than `max_distance`.
fn nearest_point(line: &[Point], p: Point, max_distance: f64) -> Option<Point> {
    let mut best: Option<(f64, Point)> = None;
    for q in line {
        let d = ((q.x - p.x).powi(2) + (q.y - p.y).powi(2)).sqrt();
        if d < max_distance && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, *q));
        }
    }
    best.map(|(_, q)| q)
}

/// The reference rule: corners against the nearest points of consecutive lane lines.
pub fn reference_rule(bbox: &BBox, lanes: &[Vec<Point>], max_point_distance: f64) -> ReferenceLane {
    let mut corners_in_lane = 0;
    let mut labels: Vec<String> = Vec::new();
    for corner in bbox.corners() {
        let nearest: Vec<Option<Point>> = lanes.iter().map(|l| nearest_point(l, corner, max_point_distance)).collect();
        let hit = (0..nearest.len().saturating_sub(1)).find_map(|i| {
            let (a, b) = (nearest[i]?, nearest[i + 1]?);
            let (lo, hi) = if a.x <= b.x { (a.x, b.x) } else { (b.x, a.x) };
            (lo <= corner.x && corner.x <= hi).then(|| format!("between_{i}_and_{}", i + 1))
        });
        if let Some(label) = hit {
            corners_in_lane += 1;
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    ReferenceLane { corners_in_lane, lanes: labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight line sampled every 40 px from the image bottom (720) up to row 440, like the
    /// generator's lane topic.
    fn line(bottom_x: f64, top_x: f64) -> Vec<Point> {
        (0..8)
            .map(|j| {
                let y = 720.0 - 40.0 * j as f64;
                let t = (720.0 - y) / 300.0;
                Point { x: bottom_x + (top_x - bottom_x) * t, y }
            })
            .collect()
    }

    fn lanes() -> Vec<Vec<Point>> {
        vec![line(-260.0, 550.0), line(340.0, 610.0), line(940.0, 670.0), line(1540.0, 730.0)]
    }

    fn bbox_at_foot(x: f64, y: f64) -> BBox {
        BBox { center_x: x, center_y: y - 60.0, width: 40.0, height: 120.0 }
    }

    #[test]
    fn interpolates_along_the_polyline() {
        let l = line(340.0, 610.0);
        assert_eq!(x_at_row(&l, 720.0), Some(340.0));
        let mid = x_at_row(&l, 660.0).unwrap();
        assert!((mid - (340.0 + 270.0 * 0.2)).abs() < 1e-9, "{mid}");
        assert_eq!(x_at_row(&l, 300.0), None, "above the line's top");
        assert_eq!(x_at_row(&[], 500.0), None);
        assert_eq!(x_at_row(&[Point { x: 1.0, y: 500.0 }], 500.0), None, "one point is no line");
    }

    #[test]
    fn footprint_in_ego_lane_and_on_the_sidewalk() {
        let l = lanes();
        let ego = ego_footprint(&bbox_at_foot(640.0, 650.0), &l, 640.0);
        assert_eq!(ego, FootprintLane { region: Some((1, 2)), in_ego_lane: true });
        // Right of the right adjacent line: outside every lane region.
        let x3 = x_at_row(&l[3], 600.0).unwrap();
        let side = ego_footprint(&bbox_at_foot(x3 + 14.0, 600.0), &l, 640.0);
        assert_eq!(side, FootprintLane { region: None, in_ego_lane: false });
        // Adjacent lane: a region, but not the ego lane.
        let adj = ego_footprint(&bbox_at_foot(1100.0, 680.0), &l, 640.0);
        assert_eq!(adj, FootprintLane { region: Some((2, 3)), in_ego_lane: false });
    }

    #[test]
    fn footprint_survives_missing_and_short_lanes() {
        let mut l = lanes();
        l[0].clear(); // empty lane
        l[3] = vec![Point { x: 700.0, y: 430.0 }, Point { x: 710.0, y: 425.0 }]; // does not reach the row
        let r = ego_footprint(&bbox_at_foot(640.0, 650.0), &l, 640.0);
        assert!(r.in_ego_lane);
        assert!(!ego_footprint(&bbox_at_foot(640.0, 650.0), &[], 640.0).in_ego_lane);
    }

    #[test]
    fn reference_rule_counts_corners_and_flags_the_sidewalk_person() {
        let l = lanes();
        let ego = reference_rule(&bbox_at_foot(640.0, 650.0), &l, 1000.0);
        assert_eq!(ego.corners_in_lane, 4);
        assert_eq!(ego.lanes, vec!["between_1_and_2".to_string()]);
        // The sidewalk walker straddles the right adjacent line with its box: the reference rule
        // puts its left corners in lane 2-3 (its classic false positive).
        let x3 = x_at_row(&l[3], 600.0).unwrap();
        let side = reference_rule(&BBox { center_x: x3 + 14.0, center_y: 525.0, width: 52.5, height: 150.0 }, &l, 1000.0);
        assert!(side.in_lane(1), "{side:?}");
        assert_eq!(side.lanes, vec!["between_2_and_3".to_string()]);
    }

    #[test]
    fn roles_pick_the_ego_lane_lines() {
        let l = lanes();
        let in_ego = ego_footprint_by_roles(&bbox_at_foot(640.0, 650.0), &l, 1, 2);
        assert!(in_ego.in_ego_lane);
        assert_eq!(in_ego.region, Some((1, 2)));
        // Same object, but the roles say the ego lane is the right adjacent one.
        assert!(!ego_footprint_by_roles(&bbox_at_foot(640.0, 650.0), &l, 2, 3).in_ego_lane);
        // Missing role line: not in the ego lane, no crash.
        assert!(!ego_footprint_by_roles(&bbox_at_foot(640.0, 650.0), &l, 1, 9).in_ego_lane);
    }

    #[test]
    fn reference_rule_skips_what_crashed_the_original() {
        let mut l = lanes();
        l[1].clear(); // a gap in the middle of the list
        let r = reference_rule(&bbox_at_foot(640.0, 650.0), &l, 1000.0);
        assert_eq!(r.corners_in_lane, 0, "lines 0 and 2 are not consecutive: no region");
        // Every point farther than the limit: no nearest point, no crash.
        let far = reference_rule(&bbox_at_foot(640.0, 650.0), &lanes(), 5.0);
        assert_eq!(far, ReferenceLane { corners_in_lane: 0, lanes: vec![] });
        assert_eq!(reference_rule(&bbox_at_foot(1.0, 1.0), &[], 1000.0).corners_in_lane, 0);
    }
}
