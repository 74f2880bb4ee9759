//! `scenes report`: one static HTML page of the lake's scenes that works offline and on S3
//! static hosting (no scripts, fonts or network): per bag, a timeline chart of ego speed and
//! people in lane with the scenes marked; per scene, the camera frame at its start (the JPEG as
//! recorded, never re-encoded) with the detected boxes and lane lines drawn over it in SVG, its
//! numbers, and its clip and replay links. [`gather`] reads the lake, [`html`] writes the page.

mod gather;
mod html;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::meta::MetaStore;
pub use gather::{BagView, SceneView};

/// What `scenes report` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportSummary {
    pub page: PathBuf,
    pub bags: usize,
    pub scenes: usize,
    /// Camera frames written beside the page.
    pub frames: usize,
}

/// Writes `out/index.html` and the scenes' camera frames (`out/frames/`) for the bags of the
/// lake (or only `only`, bag keys), linking each scene's clip in `clips_dir` (relative to the
/// page) when one is there.
pub async fn write_report(lake: &Lake, store: &dyn MetaStore, cfg: &crate::detect::DetectConfig, out: &Path, only: Option<&[String]>) -> Result<ReportSummary> {
    let bags = gather::bag_views(lake, store, cfg, only).await?;
    let frames_dir = out.join("frames");
    std::fs::create_dir_all(&frames_dir).map_err(|e| Error::io(&frames_dir, e))?;
    let mut frames = 0;
    for scene in bags.iter().flat_map(|b| &b.scenes) {
        if let Some(jpeg) = &scene.frame_jpeg {
            let path = frames_dir.join(format!("{}.jpg", html::file_stem(&scene.record.scene_id)));
            std::fs::write(&path, jpeg).map_err(|e| Error::io(&path, e))?;
            frames += 1;
        }
    }
    let page = out.join("index.html");
    let text = html::page(&bags, out, cfg.replay_url.as_deref());
    std::fs::write(&page, text).map_err(|e| Error::io(&page, e))?;
    Ok(ReportSummary { page, bags: bags.len(), scenes: bags.iter().map(|b| b.scenes.len()).sum(), frames })
}
