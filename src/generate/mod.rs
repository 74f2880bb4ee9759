//! Synthetic drives for tests, demos and benchmarks: a ROS1 bag with GPS (NavSatFix, 10 Hz), IMU
//! (100 Hz), ego speed (TwistStamped, 50 Hz), 2D detections and image-space lane lines (10 Hz),
//! and optionally a small CompressedImage topic (10 Hz). Pedestrians walk into the ego lane at
//! known times while others stay on the sidewalk beside the right adjacent lane line; a
//! ground-truth JSON lists the person-in-ego-lane scenes on the 100 ms timeline.

use std::path::Path;

mod camera;

use serde::Serialize;

use crate::bag::writer::{BagWriter, ConnectionSpec};
use crate::bag::Compression;
use crate::error::{Error, Result};
use crate::decode::Registry;

/// Topics the generator writes.
pub const GPS_TOPIC: &str = "/vehicle/gps/fix";
pub const IMU_TOPIC: &str = "/imu/data";
pub const TWIST_TOPIC: &str = "/vehicle/twist";
pub const DETECTIONS_TOPIC: &str = "/perception/rgb_front/detections";
pub const LANES_TOPIC: &str = "/perception/rgb_front/lane_points";
pub const IMAGE_TOPIC: &str = "/camera/rgb_front/image_raw/compressed";
pub const LIDAR_TOPIC: &str = "/lidar/top/points";

/// Image size of the synthetic camera.
pub const IMAGE_WIDTH: f32 = 1280.0;
pub const IMAGE_HEIGHT: f32 = 720.0;

const HEADER_DEF: &str = "# Standard metadata for higher-level stamped data types.\nuint32 seq\ntime stamp\n# Frame this data is associated with\nstring frame_id\n";
const VECTOR3_DEF: &str = "float64 x\nfloat64 y\nfloat64 z\n";
const QUATERNION_DEF: &str = "float64 x\nfloat64 y\nfloat64 z\nfloat64 w\n";
const SEP: &str = "================================================================================\n";

fn block(name: &str, body: &str) -> String {
    format!("{SEP}MSG: {name}\n{body}")
}

fn navsatfix_def() -> String {
    let root = "# Navigation Satellite fix for any Global Navigation Satellite System\nHeader header\nNavSatStatus status\nfloat64 latitude\nfloat64 longitude\nfloat64 altitude\nfloat64[9] position_covariance\nuint8 COVARIANCE_TYPE_UNKNOWN = 0\nuint8 COVARIANCE_TYPE_APPROXIMATED = 1\nuint8 COVARIANCE_TYPE_DIAGONAL_KNOWN = 2\nuint8 COVARIANCE_TYPE_KNOWN = 3\nuint8 position_covariance_type\n";
    let status = "int8 STATUS_NO_FIX =  -1        # unable to fix position\nint8 STATUS_FIX =      0        # unaugmented fix\nint8 STATUS_SBAS_FIX = 1        # with satellite-based augmentation\nint8 STATUS_GBAS_FIX = 2        # with ground-based augmentation\nint8 status\nuint16 SERVICE_GPS =     1\nuint16 SERVICE_GLONASS = 2\nuint16 SERVICE_COMPASS = 4      # includes BeiDou.\nuint16 SERVICE_GALILEO = 8\nuint16 service\n";
    format!("{root}\n{}\n{}", block("std_msgs/Header", HEADER_DEF), block("sensor_msgs/NavSatStatus", status))
}

fn imu_def() -> String {
    let root = "Header header\n\ngeometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance # Row major about x, y, z axes\n\ngeometry_msgs/Vector3 angular_velocity\nfloat64[9] angular_velocity_covariance # Row major about x, y, z axes\n\ngeometry_msgs/Vector3 linear_acceleration\nfloat64[9] linear_acceleration_covariance # Row major x, y z \n";
    format!(
        "{root}\n{}\n{}\n{}",
        block("std_msgs/Header", HEADER_DEF),
        block("geometry_msgs/Quaternion", QUATERNION_DEF),
        block("geometry_msgs/Vector3", VECTOR3_DEF)
    )
}

fn twist_stamped_def() -> String {
    format!(
        "# A twist with reference coordinate frame and timestamp\nHeader header\nTwist twist\n\n{}\n{}\n{}",
        block("std_msgs/Header", HEADER_DEF),
        block("geometry_msgs/Twist", "# This expresses velocity in free space broken into its linear and angular parts.\nVector3  linear\nVector3  angular\n"),
        block("geometry_msgs/Vector3", VECTOR3_DEF)
    )
}

fn detections_def() -> String {
    format!(
        "# 2D object detections in one camera image\nHeader header\nDetection2D[] detections\n\n{}\n{}\n{}",
        block("std_msgs/Header", HEADER_DEF),
        block("perception_msgs/Detection2D", "uint32 id\nstring class_label   # person, car, bicycle, ...\nfloat32 confidence\nBoundingBox2D bbox\n"),
        block("perception_msgs/BoundingBox2D", "# Box centre and size in image pixels\nfloat32 center_x\nfloat32 center_y\nfloat32 width\nfloat32 height\n")
    )
}

fn lanes_def() -> String {
    format!(
        "# Lane lines detected in one camera image, left to right\nHeader header\nuint32 image_width\nuint32 image_height\nLane[] lanes\n\n{}\n{}\n{}",
        block("std_msgs/Header", HEADER_DEF),
        block("perception_msgs/Lane", "int8 ROLE_OTHER = 0\nint8 ROLE_EGO_LEFT = 1\nint8 ROLE_EGO_RIGHT = 2\nint8 role\nImagePoint[] points\n"),
        block("perception_msgs/ImagePoint", "float32 x\nfloat32 y\n")
    )
}

fn point_cloud2_def() -> String {
    format!(
        "Header header\nuint32 height\nuint32 width\nPointField[] fields\nbool is_bigendian\nuint32 point_step\nuint32 row_step\nuint8[] data\nbool is_dense\n\n{}\n{}",
        block("std_msgs/Header", HEADER_DEF),
        block(
            "sensor_msgs/PointField",
            "uint8 INT8=1\nuint8 UINT8=2\nuint8 INT16=3\nuint8 UINT16=4\nuint8 INT32=5\nuint8 UINT32=6\nuint8 FLOAT32=7\nuint8 FLOAT64=8\nstring name\nuint32 offset\nuint8 datatype\nuint32 count\n"
        )
    )
}

fn compressed_image_def() -> String {
    format!(
        "Header header\nstring format\nuint8[] data\n\n{}",
        block("std_msgs/Header", HEADER_DEF)
    )
}

/// Builds a connection spec with the md5 computed from the definition.
fn spec(topic: &str, msg_type: &str, definition: String, callerid: &str) -> Result<ConnectionSpec> {
    let md5sum = Registry::parse(msg_type, &definition)?
        .md5sum(msg_type)
        .ok_or_else(|| Error::invalid(msg_type, "cannot compute the md5sum of its definition"))?;
    Ok(ConnectionSpec {
        topic: topic.into(),
        msg_type: msg_type.into(),
        md5sum,
        definition,
        callerid: Some(callerid.into()),
        latching: false,
    })
}

/// ROS1 serialization of primitive values.
#[derive(Default)]
struct Ser(Vec<u8>);

impl Ser {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn i8(&mut self, v: i8) -> &mut Self {
        self.0.push(v as u8);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f32(&mut self, v: f32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    fn time(&mut self, ns: u64) -> &mut Self {
        self.u32((ns / 1_000_000_000) as u32).u32((ns % 1_000_000_000) as u32)
    }
    fn header(&mut self, seq: u32, ns: u64, frame: &str) -> &mut Self {
        self.u32(seq).time(ns).string(frame)
    }
}

/// Small deterministic PRNG (xorshift64*), so a seed always gives the same drive.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DriveSpec {
    pub duration_s: u32,
    pub seed: u64,
    pub compression: Compression,
    /// Add a CompressedImage topic with payloads of this many bytes (0 = none).
    pub image_bytes: usize,
    /// Add a PointCloud2 topic (10 Hz) with this many x/y/z/intensity points per scan (0 = none).
    pub lidar_points: usize,
    /// Start of the drive (ns since the epoch); a multiple of 100 ms.
    pub start_ns: u64,
    /// Fraction of the in-lane persons' detections the detector misses (flicker); the ground
    /// truth keeps the real episodes.
    pub missed_detections: f64,
    /// Fraction of lane messages that lack the right line of the ego lane.
    pub lane_dropouts: f64,
    /// Stops (hard braking, standing, pulling away) and turns every 45–90 s.
    pub maneuvers: bool,
    /// Camera frames as real JPEGs of the road, lanes and objects (instead of `image_bytes`
    /// of noise).
    pub camera_jpeg: bool,
}

impl Default for DriveSpec {
    fn default() -> Self {
        DriveSpec {
            duration_s: 40,
            seed: 1,
            compression: Compression::Lz4,
            image_bytes: 0,
            lidar_points: 0,
            start_ns: 1_700_000_000_000_000_000,
            missed_detections: 0.0,
            lane_dropouts: 0.0,
            maneuvers: true,
            camera_jpeg: false,
        }
    }
}

/// One PointCloud2 scan of `points` x/y/z/intensity float32 points (16 bytes each).
fn point_cloud(rng: &mut Rng, seq: u32, t: u64, points: usize) -> Vec<u8> {
    let mut s = Ser::default();
    s.header(seq, t, "lidar_top").u32(1).u32(points as u32).u32(4);
    for (i, name) in ["x", "y", "z", "intensity"].iter().enumerate() {
        s.string(name).u32(i as u32 * 4).u8(7).u32(1);
    }
    let mut data = Vec::with_capacity(points * 16);
    for _ in 0..points {
        for _ in 0..4 {
            data.extend_from_slice(&(rng.range(-50.0, 50.0) as f32).to_le_bytes());
        }
    }
    s.u8(0).u32(16).u32(points as u32 * 16).bytes(&data).u8(1);
    s.0
}

/// One person-in-ego-lane scene on the 100 ms timeline.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroundTruthScene {
    /// First tick (ns) whose latest detection frame has a person in the ego lane.
    pub start_time_ns: u64,
    /// First tick after it whose latest detection frame has none (exclusive end).
    pub end_time_ns: u64,
    pub max_people_in_scene: u32,
}

/// One event of a vehicle scenario (hard braking, stopped, turning) on the 100 ms timeline.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroundTruthEvent {
    /// First tick at or after the event's start.
    pub start_time_ns: u64,
    /// First tick at or after its end (exclusive).
    pub end_time_ns: u64,
}

/// The ground-truth file written beside each generated bag.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    pub bag_file: String,
    pub tick_ns: u64,
    pub rule: &'static str,
    pub target_class: &'static str,
    pub image_width_px: f32,
    pub detections_topic: &'static str,
    pub lanes_topic: &'static str,
    pub scenes: Vec<GroundTruthScene>,
    /// The vehicle's events by scenario (`HardBraking`, `Stopped`, `HighYawRate`, as the
    /// shipped `detect.scenarios` name them).
    pub events: std::collections::BTreeMap<String, Vec<GroundTruthEvent>>,
    /// Frames with a person on the sidewalk beside the right adjacent lane line.
    pub sidewalk_person_frames: u32,
    pub messages: u64,
}

/// The four lane lines, left to right, as (x at the image bottom). They converge towards a
/// vanishing point at (640, 380).
const LANE_BOTTOM_X: [f32; 4] = [-260.0, 340.0, 940.0, 1540.0];
const VANISH: (f32, f32) = (640.0, 380.0);
const LANE_TOP_Y: f32 = 420.0;

/// x of lane line `i` at image row `y` (straight lines here; stored as polylines).
fn lane_x(i: usize, y: f32) -> f32 {
    let (vx, vy) = VANISH;
    let t = (y - vy) / (IMAGE_HEIGHT - vy);
    vx + (LANE_BOTTOM_X[i] - vx) * t
}

/// A pedestrian's placement in one frame: footprint (bottom-centre) in image pixels.
#[derive(Clone, Copy)]
struct Person {
    foot_x: f32,
    foot_y: f32,
    height: f32,
}

/// Where each actor is at frame `k` (10 Hz). Returns the persons and whether each is in the ego lane.
struct Scenario {
    /// (first frame, last frame exclusive) of each crossing through the ego lane.
    episodes: Vec<(u32, u32)>,
    /// Frames during which a second person is in the ego lane too.
    second_person: Vec<(u32, u32)>,

}

impl Scenario {
    fn new(rng: &mut Rng, frames: u32) -> Scenario {
        let mut episodes = Vec::new();
        let mut second_person = Vec::new();
        // Keep clear of the first and last 3 s so no scene is open at the bag's edges.
        let mut k = 30 + (rng.range(0.0, 40.0) as u32);
        while k + 60 < frames.saturating_sub(30) {
            let len = 15 + rng.range(0.0, 35.0) as u32;
            episodes.push((k, k + len));
            if rng.unit() < 0.5 {
                let a = k + len / 4;
                second_person.push((a, a + len / 3));
            }
            k += len + 40 + rng.range(0.0, 80.0) as u32;
        }
        Scenario { episodes, second_person }
    }

    fn in_any(ranges: &[(u32, u32)], k: u32) -> bool {
        ranges.iter().any(|&(a, b)| k >= a && k < b)
    }

    /// Persons visible at frame k, with their in-ego-lane flag by construction.
    fn persons(&self, k: u32, rng: &mut Rng) -> Vec<(Person, bool)> {
        let mut out = Vec::new();
        let jitter = |rng: &mut Rng| rng.range(-4.0, 4.0) as f32;
        // Sidewalk walker: always present, just right of the right adjacent lane line, which it
        // straddles with its box (the reference rule's classic false positive).
        let y = 560.0 + jitter(rng);
        out.push((Person { foot_x: lane_x(3, y) + 14.0 + jitter(rng), foot_y: y, height: 150.0 }, false));
        // Person crossing into the ego lane: in the adjacent lane just before and after.
        for &(a, b) in &self.episodes {
            let y = 600.0 + jitter(rng);
            let centre = (lane_x(1, y) + lane_x(2, y)) / 2.0;
            if k >= a && k < b {
                out.push((Person { foot_x: centre + jitter(rng), foot_y: y, height: 170.0 }, true));
            } else if k + 5 >= a && k < a {
                let adj = (lane_x(2, y) + lane_x(3, y)) / 2.0;
                out.push((Person { foot_x: adj + jitter(rng), foot_y: y, height: 170.0 }, false));
            }
        }
        if Self::in_any(&self.second_person, k) {
            let y = 640.0 + jitter(rng);
            let x = lane_x(1, y) + 60.0 + jitter(rng);
            out.push((Person { foot_x: x, foot_y: y, height: 180.0 }, true));
        }
        out
    }
}

/// Hard braking at this deceleration (m/s²) to a stop.
const BRAKE_MPS2: f64 = 4.0;
/// Pulling away again (m/s²), gently, to this speed (m/s).
const PULL_AWAY_MPS2: f64 = 1.5;
const CRUISE_MPS: f64 = 8.0;
/// Yaw rate of a turn (rad/s).
const TURN_RAD_S: f64 = 0.5;

/// What the vehicle is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Motion {
    Cruising,
    Braking { since_ms: u64 },
    Standing { since_ms: u64, until_ms: u64 },
    PullingAway,
}

/// The vehicle's maneuvers: stops (hard braking, standing, pulling away) and turns, alternating
/// every 45–90 s, drawn from their own random sequence so the rest of a drive is the same with
/// or without them. Records each event's span (ms) by scenario.
struct Maneuvers {
    /// (start ms, kind: true = stop, false = turn, length ms of a stand or turn).
    plan: Vec<(u64, bool, u64)>,
    next: usize,
    motion: Motion,
    turn_until_ms: u64,
    events: std::collections::BTreeMap<&'static str, Vec<(u64, u64)>>,
}

impl Maneuvers {
    fn new(seed: u64, total_ms: u64, enabled: bool) -> Maneuvers {
        let mut rng = Rng::new(seed ^ 0x6d61_6e65_7576_6572);
        let mut plan = Vec::new();
        let mut at = 10_000 + rng.range(0.0, 20_000.0) as u64;
        let mut stop = true;
        while enabled && at + 20_000 < total_ms {
            let length = if stop { 3_000 + rng.range(0.0, 3_000.0) as u64 } else { 2_000 + rng.range(0.0, 2_000.0) as u64 };
            plan.push((at, stop, length));
            stop = !stop;
            at += 45_000 + rng.range(0.0, 45_000.0) as u64;
        }
        Maneuvers { plan, next: 0, motion: Motion::Cruising, turn_until_ms: 0, events: Default::default() }
    }

    /// The speed at `ms` (every 20 ms), from the last speed and a cruising step `noise`.
    fn speed(&mut self, ms: u64, speed: f64, noise: f64) -> f64 {
        let dt = 0.02;
        if let Some(&(start, true, _)) = self.plan.get(self.next) {
            if self.motion == Motion::Cruising && ms >= start {
                self.next += 1;
                self.motion = Motion::Braking { since_ms: ms };
            }
        }
        match self.motion {
            Motion::Cruising => (speed + noise).clamp(4.0, 15.0),
            Motion::Braking { since_ms } => {
                let v = speed - BRAKE_MPS2 * dt;
                if v > 0.0 {
                    return v;
                }
                self.events.entry("HardBraking").or_default().push((since_ms, ms));
                let stand = self.plan.get(self.next - 1).map_or(3_000, |p| p.2);
                self.motion = Motion::Standing { since_ms: ms, until_ms: ms + stand };
                0.0
            }
            Motion::Standing { since_ms, until_ms } => {
                if ms >= until_ms {
                    self.events.entry("Stopped").or_default().push((since_ms, ms));
                    self.motion = Motion::PullingAway;
                }
                0.0
            }
            Motion::PullingAway => {
                let v = speed + PULL_AWAY_MPS2 * dt;
                if v >= CRUISE_MPS {
                    self.motion = Motion::Cruising;
                }
                v
            }
        }
    }

    /// The yaw rate at `ms` (every 10 ms), on top of the sensor's `noise`.
    fn yaw_rate(&mut self, ms: u64, noise: f64) -> f64 {
        if let Some(&(start, false, length)) = self.plan.get(self.next) {
            if ms >= start {
                self.next += 1;
                self.turn_until_ms = ms + length;
                self.events.entry("HighYawRate").or_default().push((ms, ms + length));
            }
        }
        if ms < self.turn_until_ms {
            TURN_RAD_S + noise
        } else {
            noise
        }
    }

    /// The events on the tick timeline of a drive starting at `t0`.
    fn ground_truth(&self, t0: u64) -> std::collections::BTreeMap<String, Vec<GroundTruthEvent>> {
        let tick_at_or_after = |ms: u64| t0 + ms.div_ceil(100) * 100_000_000;
        ["HardBraking", "Stopped", "HighYawRate"]
            .into_iter()
            .map(|name| {
                let spans = self.events.get(name).map(Vec::as_slice).unwrap_or_default();
                let events = spans.iter().map(|&(a, b)| GroundTruthEvent { start_time_ns: tick_at_or_after(a), end_time_ns: tick_at_or_after(b) }).collect();
                (name.to_string(), events)
            })
            .collect()
    }
}

/// Writes a synthetic drive to `path` and returns its ground truth.
pub fn generate_drive(path: &Path, spec: &DriveSpec) -> Result<GroundTruth> {
    let mut rng = Rng::new(spec.seed);
    let mut writer = BagWriter::create(path, spec.compression)?;
    let gps = writer.add_connection(self::spec(GPS_TOPIC, "sensor_msgs/NavSatFix", navsatfix_def(), "/gps_driver")?);
    let imu = writer.add_connection(self::spec(IMU_TOPIC, "sensor_msgs/Imu", imu_def(), "/imu_driver")?);
    let twist = writer.add_connection(self::spec(TWIST_TOPIC, "geometry_msgs/TwistStamped", twist_stamped_def(), "/vehicle_interface")?);
    let det = writer.add_connection(self::spec(DETECTIONS_TOPIC, "perception_msgs/Detection2DArray", detections_def(), "/detector")?);
    let lanes = writer.add_connection(self::spec(LANES_TOPIC, "perception_msgs/LaneArray", lanes_def(), "/lane_detector")?);
    let image = if spec.image_bytes > 0 || spec.camera_jpeg {
        Some(writer.add_connection(self::spec(IMAGE_TOPIC, "sensor_msgs/CompressedImage", compressed_image_def(), "/camera")?))
    } else {
        None
    };
    let lidar = if spec.lidar_points > 0 {
        Some(writer.add_connection(self::spec(LIDAR_TOPIC, "sensor_msgs/PointCloud2", point_cloud2_def(), "/lidar")?))
    } else {
        None
    };
    let frames = spec.duration_s * 10;
    let scenario = Scenario::new(&mut rng, frames);
    let t0 = spec.start_ns - spec.start_ns % 100_000_000;
    let mut messages = 0u64;
    let mut in_lane_counts = vec![0u32; frames as usize];
    let mut sidewalk_frames = 0u32;
    // 1 ms steps; each sensor publishes on its own period with a small phase offset.
    let total_ms = spec.duration_s as u64 * 1000;
    let mut maneuvers = Maneuvers::new(spec.seed, total_ms, spec.maneuvers);
    let mut speed = 8.0f64;
    let (mut lat, mut lon) = (37.7749f64, -122.4194f64);
    for ms in 0..total_ms {
        let t = t0 + ms * 1_000_000;
        if ms % 10 == 3 {
            let seq = (ms / 10) as u32;
            let mut s = Ser::default();
            let yaw = (ms as f64 / 20_000.0).sin() * 0.3;
            s.header(seq, t, "imu_link")
                .f64(0.0).f64(0.0).f64((yaw / 2.0).sin()).f64((yaw / 2.0).cos());
            for i in 0..9 { s.f64(if i % 4 == 0 { 1e-4 } else { 0.0 }); }
            let (wx, wy, wz) = (rng.range(-0.01, 0.01), rng.range(-0.01, 0.01), rng.range(-0.05, 0.05));
            s.f64(wx).f64(wy).f64(maneuvers.yaw_rate(ms, wz));
            for i in 0..9 { s.f64(if i % 4 == 0 { 2e-4 } else { 0.0 }); }
            s.f64(rng.range(-0.3, 0.3)).f64(rng.range(-0.2, 0.2)).f64(9.81 + rng.range(-0.05, 0.05));
            for i in 0..9 { s.f64(if i % 4 == 0 { 3e-3 } else { 0.0 }); }
            writer.write(imu, t, &s.0)?;
            messages += 1;
        }
        if ms % 20 == 7 {
            speed = maneuvers.speed(ms, speed, rng.range(-0.05, 0.05));
            let mut s = Ser::default();
            s.header((ms / 20) as u32, t, "base_link")
                .f64(speed).f64(0.0).f64(0.0)
                .f64(0.0).f64(0.0).f64(rng.range(-0.02, 0.02));
            writer.write(twist, t, &s.0)?;
            messages += 1;
        }
        if ms % 100 == 50 {
            lat += speed * 0.1 / 111_000.0;
            lon += rng.range(-1e-7, 1e-7);
            let mut s = Ser::default();
            s.header((ms / 100) as u32, t, "gps").i8(0).u16(1).f64(lat).f64(lon).f64(16.0 + rng.range(-0.2, 0.2));
            for i in 0..9 { s.f64(if i % 4 == 0 { 0.25 } else { 0.0 }); }
            s.u8(2);
            writer.write(gps, t, &s.0)?;
            messages += 1;
        }
        if ms % 100 == 20 {
            let k = (ms / 100) as u32;
            let frame_t = t0 + k as u64 * 100_000_000 + 20_000_000;
            // Lanes
            // A dropout loses the right line of the ego lane (index 2). The generator draws
            // from its random sequence only when dropouts or misses are asked for, so drives
            // without them stay as they were.
            let dropout = spec.lane_dropouts > 0.0 && rng.unit() < spec.lane_dropouts;
            let lines: Vec<usize> = (0..4).filter(|i| !(dropout && *i == 2)).collect();
            let lines_drawn = lines.clone();
            let mut s = Ser::default();
            s.header(k, frame_t, "camera_front").u32(IMAGE_WIDTH as u32).u32(IMAGE_HEIGHT as u32).u32(lines.len() as u32);
            for i in lines {
                let role: i8 = match i { 1 => 1, 2 => 2, _ => 0 };
                s.i8(role);
                let ys: Vec<f32> = (0..=7).map(|j| IMAGE_HEIGHT - j as f32 * 40.0).filter(|y| *y >= LANE_TOP_Y).collect();
                s.u32(ys.len() as u32);
                for y in ys {
                    s.f32(lane_x(i, y) + rng.range(-1.5, 1.5) as f32).f32(y);
                }
            }
            writer.write(lanes, frame_t, &s.0)?;
            messages += 1;
            // Detections: persons + a car ahead in the ego lane (not a person).
            let persons = scenario.persons(k, &mut rng);
            // Missed detections: the person is there (and in the ground truth), the message
            // lacks it.
            let detected: Vec<bool> =
                persons.iter().map(|(_, in_lane)| !(*in_lane && spec.missed_detections > 0.0 && rng.unit() < spec.missed_detections)).collect();
            for (_, in_lane) in &persons {
                if *in_lane {
                    in_lane_counts[k as usize] += 1;
                }
            }
            let mut s = Ser::default();
            s.header(k, frame_t, "camera_front").u32(detected.iter().filter(|d| **d).count() as u32 + 1);
            let mut id = 0u32;
            for ((p, in_lane), _) in persons.iter().zip(&detected).filter(|(_, d)| **d) {
                let width = p.height * 0.35;
                s.u32(id).string("person").f32(rng.range(0.6, 0.99) as f32)
                    .f32(p.foot_x).f32(p.foot_y - p.height / 2.0).f32(width).f32(p.height);
                id += 1;
                if !*in_lane && p.foot_x > lane_x(3, p.foot_y) {
                    sidewalk_frames += 1;
                }
            }
            let car_y = 470.0;
            s.u32(id).string("car").f32(0.9).f32(VANISH.0 + rng.range(-5.0, 5.0) as f32).f32(car_y - 30.0).f32(90.0).f32(60.0);
            writer.write(det, frame_t, &s.0)?;
            messages += 1;
            if let Some(image) = image {
                let mut s = Ser::default();
                let data = if spec.camera_jpeg {
                    let mut drawn: Vec<camera::Drawn> = persons
                        .iter()
                        .zip(&detected)
                        .filter(|(_, d)| **d)
                        .map(|((p, _), _)| camera::Drawn { center_x: p.foot_x, center_y: p.foot_y - p.height / 2.0, width: p.height * 0.35, height: p.height, rgb: [40, 52, 120] })
                        .collect();
                    drawn.push(camera::Drawn { center_x: VANISH.0, center_y: car_y - 30.0, width: 90.0, height: 60.0, rgb: [150, 30, 30] });
                    camera::frame_jpeg(&lines_drawn, &drawn).map_err(|reason| crate::bag::BagError::Corrupt { path: path.to_path_buf(), offset: 0, reason })?
                } else {
                    let mut data = vec![0u8; spec.image_bytes];
                    data.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
                    data[..2].copy_from_slice(&[0xFF, 0xD8]);
                    data
                };
                s.header(k, frame_t, "camera_front").string("jpeg").bytes(&data);
                writer.write(image, frame_t, &s.0)?;
                messages += 1;
            }
            if let Some(lidar) = lidar {
                writer.write(lidar, frame_t, &point_cloud(&mut rng, k, frame_t, spec.lidar_points))?;
                messages += 1;
            }
        }
    }
    writer.finish()?;
    Ok(GroundTruth {
        bag_file: crate::lake::bag_name(path),
        tick_ns: 100_000_000,
        rule: "ego_footprint",
        target_class: "person",
        image_width_px: IMAGE_WIDTH,
        detections_topic: DETECTIONS_TOPIC,
        lanes_topic: LANES_TOPIC,
        scenes: scenes_from_frames(t0, &in_lane_counts),
        events: maneuvers.ground_truth(t0),
        sidewalk_person_frames: sidewalk_frames,
        messages,
    })
}

/// Frame k (stamped t0 + k·100 ms + 20 ms) is the latest detection at tick t0 + (k+1)·100 ms;
/// a run of frames [a, b) with people in lane is therefore the scene [t0+(a+1)·100 ms, t0+(b+1)·100 ms).
fn scenes_from_frames(t0: u64, counts: &[u32]) -> Vec<GroundTruthScene> {
    let tick = 100_000_000u64;
    let mut scenes = Vec::new();
    let mut k = 0;
    while k < counts.len() {
        if counts[k] == 0 {
            k += 1;
            continue;
        }
        let a = k;
        let mut max = 0;
        while k < counts.len() && counts[k] > 0 {
            max = max.max(counts[k]);
            k += 1;
        }
        scenes.push(GroundTruthScene {
            start_time_ns: t0 + (a as u64 + 1) * tick,
            end_time_ns: t0 + (k as u64 + 1) * tick,
            max_people_in_scene: max,
        });
    }
    scenes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_definitions_hash_like_ros() {
        let md5 = |ty: &str, def: String| Registry::parse(ty, &def).unwrap().md5sum(ty).unwrap();
        assert_eq!(md5("sensor_msgs/NavSatFix", navsatfix_def()), "2d3a8cd499b9b4a0249fb98fd05cfa48");
        assert_eq!(md5("sensor_msgs/Imu", imu_def()), "6a62c6daae103f4ff57a132d6f95cec2");
        assert_eq!(md5("geometry_msgs/TwistStamped", twist_stamped_def()), "98d34b0043a2093cf9d9345ab6eef12e");
        assert_eq!(md5("sensor_msgs/CompressedImage", compressed_image_def()), "8f7a12909da2c9d3332d540a0977563f");
    }

    #[test]
    fn scenes_map_frames_to_ticks() {
        let s = scenes_from_frames(0, &[0, 1, 2, 0, 0, 1]);
        assert_eq!(s[0], GroundTruthScene { start_time_ns: 200_000_000, end_time_ns: 400_000_000, max_people_in_scene: 2 });
        assert_eq!(s[1].start_time_ns, 600_000_000);
    }
}
