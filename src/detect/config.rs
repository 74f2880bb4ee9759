//! What the detect stage reads and its thresholds: which synced columns and dotted field paths
//! hold boxes, classes and lane points, the lane rule that decides scenes, and scene lengths.

use serde::{Deserialize, Serialize};

/// Lane assignment rule that decides the scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    EgoFootprint,
    Reference,
}

/// A named scenario: a SQL boolean expression over the per-tick timeline (every `synced`
/// column, and the `enriched` columns `objects_in_lane` and `num_people_in_lane*`; window
/// functions over `ORDER BY tick_ns` allowed). Its scenes are the runs of ticks where it holds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Letters and digits; part of each scene id (`<bag>_<name>_<start s>`).
    pub name: String,
    /// The condition, e.g. `abs(imu_data['angular_velocity']['z']) > 0.3`.
    pub when: String,
    /// Scenes shorter than this are dropped [default: `detect.min_scene_duration_ms`].
    #[serde(default)]
    pub min_duration_ms: Option<u64>,
    /// Scenes closer than this merge [default: `detect.max_gap_ms`].
    #[serde(default)]
    pub max_gap_ms: Option<u64>,
}

/// The scenario whose scenes are the person-in-lane scenes (first in the defaults).
pub const PERSON_IN_LANE: &str = "PersonInLane";

fn scenario(name: &str, when: &str, min_duration_ms: Option<u64>, max_gap_ms: Option<u64>) -> Scenario {
    Scenario { name: name.into(), when: when.into(), min_duration_ms, max_gap_ms }
}

/// The shipped scenarios: person in the ego lane, hard braking (more than 3 m/s² over half a
/// second), ego vehicle stopped (a second or more), high yaw rate (more than 0.3 rad/s).
pub fn default_scenarios() -> Vec<Scenario> {
    vec![
        scenario(PERSON_IN_LANE, "num_people_in_lane > 0", None, None),
        scenario(
            "HardBraking",
            "(lag(vehicle_twist['twist']['linear']['x'], 5) OVER (ORDER BY tick_ns) - vehicle_twist['twist']['linear']['x']) / 0.5 > 3.0",
            None,
            None,
        ),
        scenario("Stopped", "abs(vehicle_twist['twist']['linear']['x']) < 0.2", Some(1000), None),
        scenario("HighYawRate", "abs(imu_data['angular_velocity']['z']) > 0.3", None, None),
    ]
}

/// Where detections and lanes are, and the thresholds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub rule: Rule,
    /// Synced column (topic table) holding the detections message.
    pub detections_table: String,
    /// List field of the detections message holding the objects.
    pub objects_field: String,
    /// Paths inside one object.
    pub class_field: String,
    pub confidence_field: String,
    pub center_x_field: String,
    pub center_y_field: String,
    pub width_field: String,
    pub height_field: String,
    /// Synced column holding the lanes message, its list of lane lines, the list of points of a
    /// line, and the point coordinates.
    pub lanes_table: String,
    pub lanes_field: String,
    pub points_field: String,
    pub point_x_field: String,
    pub point_y_field: String,
    /// Image column of the ego vehicle's centre (default: half of `image_width_px`).
    pub ego_x_px: Option<f64>,
    /// Field of a lane line that says its role; when set, the ego lane is between the lines
    /// whose role is `ego_left_role` and `ego_right_role` instead of those straddling `ego_x_px`.
    pub lane_role_field: Option<String>,
    pub ego_left_role: i64,
    pub ego_right_role: i64,
    pub image_width_px: f64,
    pub target_class: String,
    pub max_point_distance_px: f64,
    pub min_corners_in_lane: u32,
    /// Scenes shorter than this are dropped (0 = keep all).
    pub min_scene_duration_ms: u64,
    /// Scenes separated by a gap of at most this are merged (0 = never, the replaced pipeline's
    /// semantics). Bridges detections missed for a frame or two and lane messages lacking a line.
    pub max_gap_ms: u64,
    /// Synced column and field path of the ego speed (m/s), for speed min/max per scene;
    /// empty table name = none.
    pub speed_table: String,
    pub speed_field: String,
    /// The scenarios whose scenes go to the `scenes` table (column `scenario`).
    pub scenarios: Vec<Scenario>,
    /// A viewer link per clip (`scenes clip`): a template with `{url}` (the clip's URL,
    /// percent-encoded), `{start_iso}` and `{end_iso}`; `None` = no link.
    pub replay_url: Option<String>,
}

impl DetectConfig {
    /// The shortest scene and the longest gap bridged for `scenario`: its own, or the defaults.
    pub fn limits(&self, scenario: &Scenario) -> (u64, u64) {
        (scenario.min_duration_ms.unwrap_or(self.min_scene_duration_ms), scenario.max_gap_ms.unwrap_or(self.max_gap_ms))
    }

    /// [`DetectConfig::limits`] of the person-in-lane scenario (the defaults without one).
    pub fn person_limits(&self) -> (u64, u64) {
        match self.scenarios.iter().find(|s| s.name == PERSON_IN_LANE) {
            Some(s) => self.limits(s),
            None => (self.min_scene_duration_ms, self.max_gap_ms),
        }
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            rule: Rule::EgoFootprint,
            detections_table: "perception_rgb_front_detections".into(),
            objects_field: "detections".into(),
            class_field: "class_label".into(),
            confidence_field: "confidence".into(),
            center_x_field: "bbox.center_x".into(),
            center_y_field: "bbox.center_y".into(),
            width_field: "bbox.width".into(),
            height_field: "bbox.height".into(),
            lanes_table: "perception_rgb_front_lane_points".into(),
            lanes_field: "lanes".into(),
            points_field: "points".into(),
            point_x_field: "x".into(),
            point_y_field: "y".into(),
            ego_x_px: None,
            lane_role_field: None,
            ego_left_role: 1,
            ego_right_role: 2,
            image_width_px: 1280.0,
            target_class: "person".into(),
            max_point_distance_px: 1000.0,
            min_corners_in_lane: 1,
            min_scene_duration_ms: 0,
            max_gap_ms: 500,
            speed_table: "vehicle_twist".into(),
            speed_field: "twist.linear.x".into(),
            scenarios: default_scenarios(),
            replay_url: None,
        }
    }
}
