//! Camera frames of generated drives, as real JPEGs (`scenes generate --camera-jpeg`): the road
//! between the outer lane lines, the lane lines, and each detected object as a filled box where
//! its detection says it is, so a report or viewer shows what the detector saw.

use super::{lane_x, IMAGE_HEIGHT, IMAGE_WIDTH, VANISH};

/// Frames are drawn at half the detection coordinates' resolution (same 16:9 aspect).
const SCALE: f32 = 0.5;

/// An object to draw: centre x, centre y, width, height (detection pixels), and its colour.
pub(super) struct Drawn {
    pub center_x: f32,
    pub center_y: f32,
    pub width: f32,
    pub height: f32,
    pub rgb: [u8; 3],
}

/// The JPEG of one frame with `lines` (indexes of the lane lines present) and `objects`.
pub(super) fn frame_jpeg(lines: &[usize], objects: &[Drawn]) -> Result<Vec<u8>, String> {
    let (w, h) = ((IMAGE_WIDTH * SCALE) as usize, (IMAGE_HEIGHT * SCALE) as usize);
    let mut pixels = vec![0u8; w * h * 3];
    for row in 0..h {
        let y = row as f32 / SCALE;
        for col in 0..w {
            let x = col as f32 / SCALE;
            let rgb = if y < VANISH.1 {
                let t = y / VANISH.1;
                [(120.0 + 80.0 * t) as u8, (170.0 + 50.0 * t) as u8, 230]
            } else if x > lane_x(0, y) && x < lane_x(3, y) {
                [88, 90, 96]
            } else {
                [86, 128, 70]
            };
            pixels[(row * w + col) * 3..][..3].copy_from_slice(&rgb);
        }
    }
    for &line in lines {
        for row in 0..h {
            let y = row as f32 / SCALE;
            if y < super::LANE_TOP_Y {
                continue;
            }
            let x = lane_x(line, y) * SCALE;
            let half = 1.0 + 2.0 * (y - VANISH.1) / (IMAGE_HEIGHT - VANISH.1);
            for col in (x - half).max(0.0) as usize..((x + half).max(0.0) as usize).min(w) {
                pixels[(row * w + col) * 3..][..3].copy_from_slice(&[235, 235, 225]);
            }
        }
    }
    for o in objects {
        let left = ((o.center_x - o.width / 2.0) * SCALE).max(0.0) as usize;
        let right = (((o.center_x + o.width / 2.0) * SCALE).max(0.0) as usize).min(w);
        let top = ((o.center_y - o.height / 2.0) * SCALE).max(0.0) as usize;
        let bottom = (((o.center_y + o.height / 2.0) * SCALE).max(0.0) as usize).min(h);
        for row in top..bottom {
            for col in left..right {
                pixels[(row * w + col) * 3..][..3].copy_from_slice(&o.rgb);
            }
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 75)
        .encode(&pixels, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("cannot encode a camera frame: {e}"))?;
    Ok(jpeg)
}
