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
        }
    }
}
