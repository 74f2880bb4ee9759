//! `scenes report`: the page of the sample drives has a section and chart per bag and a card per
//! scene, loads nothing from the network and references only files beside it
//! (tests/py/check_report.py); a drive with real camera frames renders in Debian's headless
//! chromium with the frames and the boxes and lane lines drawn over them
//! (tests/py/check_screenshot.py).

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn check_report(dir: &Path) -> serde_json::Value {
    let out = Command::new(python()).arg(py_script("check_report.py")).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_report_of_the_sample_drives_has_every_bag_and_scene_and_only_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, manifest_dir().join("sample-bags").to_str().unwrap()]);
    run_ok(&["batch", "-q", "--all", "--lake", l]);
    let out = dir.path().join("report");
    let summary: serde_json::Value = serde_json::from_str(&run_ok(&["--json", "report", "--lake", l, "--out", out.to_str().unwrap(), "--clips"])).unwrap();
    let scenes: u64 = run_ok(&["query", "--lake", l, "--format", "csv", "SELECT count(*) AS n FROM scenes"]).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(summary["bags"], 4, "{summary}");
    assert_eq!(summary["scenes"], scenes, "{summary}");
    let page = check_report(&out);
    println!("{page}");
    assert_eq!(page["sections"], 4, "{page}");
    assert_eq!(page["charts"], 4, "{page}");
    assert_eq!(page["cards"], scenes, "{page}");
    assert_eq!(page["spans"], scenes, "each scene marked on its timeline: {page}");
    assert!(page["boxes"].as_u64().unwrap() >= scenes, "{page}");
    assert!(page["lanes"].as_u64().unwrap() >= 3 * scenes, "{page}");
    // The sample camera's payloads are not JPEGs: no frame is written or referenced.
    assert_eq!(page["frames"], 0, "{page}");
    // Every clip is linked (and, checked above, there).
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(html.matches("href=\"clips/").count() as u64, scenes);
}

#[test]
fn a_drive_with_camera_frames_renders_in_headless_chromium_with_the_drawing_over_the_frames() {
    let browser = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    if !require("chromium (Debian's headless browser; tests/run.sh installs it)", browser) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("camera.bag");
    run_ok(&["generate", bag.to_str().unwrap(), "--duration-s", "30", "--seed", "2", "--camera-jpeg"]);
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    run_ok(&["ingest", "-q", "--lake", l, bag.to_str().unwrap()]);
    run_ok(&["batch", "-q", "--all", "--lake", l]);
    let out = dir.path().join("report");
    run_ok(&["report", "--lake", l, "--out", out.to_str().unwrap()]);
    let page = check_report(&out);
    assert!(page["cards"].as_u64().unwrap() >= 1, "{page}");
    assert_eq!(page["frames"], page["cards"], "a frame per scene: {page}");

    let shot = dir.path().join("shot.png");
    let url = format!("file://{}", out.join("index.html").display());
    let ran = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1400"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(ran.status.success() && shot.is_file(), "{}", String::from_utf8_lossy(&ran.stderr));
    let checked = Command::new(python()).arg(py_script("check_screenshot.py")).arg(&shot).output().unwrap();
    assert!(checked.status.success(), "{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    println!("{}", String::from_utf8_lossy(&checked.stdout));
}
