//! The report page: plain HTML with inline CSS and SVG, no scripts, fonts or network, so it
//! opens offline and from S3 static hosting. Camera frames are `<img>` of the JPEG as recorded,
//! with an SVG of the boxes and lane lines over them in image coordinates.

use std::fmt::Write as _;
use std::path::Path;

use super::gather::{BagView, SceneView};
use crate::clip::{iso, replay_link};

const CHART_W: f64 = 1000.0;
const CHART_H: f64 = 170.0;
/// Height of the people-in-lane band at the bottom of a chart.
const BAND_H: f64 = 36.0;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2733;background:#f6f7f9}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 4px}.meta{color:#5b6775;font-size:13px;margin-bottom:8px}\
.chart{background:#fff;border:1px solid #dde2e8;border-radius:6px}.legend span{display:inline-block;margin-right:14px;font-size:12px}\
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;border-radius:2px}\
.scenes{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px;margin-top:12px}\
.card{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:10px}.card h3{font-size:14px;margin:0 0 6px;word-break:break-all}\
.frame{position:relative;width:100%;line-height:0;background:#1d2733;border-radius:4px;overflow:hidden}\
.frame img,.frame svg{width:100%;height:auto}.frame svg.over{position:absolute;left:0;top:0;height:100%}\
table{font-size:12px;border-collapse:collapse;margin-top:6px}td{padding:1px 8px 1px 0}td:first-child{color:#5b6775}\
.tag{display:inline-block;font-size:11px;padding:1px 6px;border-radius:8px;color:#fff;margin-right:6px}a{color:#1f5fbf}";

/// Colour of each scenario (the shipped ones, then a palette by position).
fn colour(scenario: &str) -> &'static str {
    match scenario {
        "PersonInLane" => "#d64545",
        "HardBraking" => "#e08a1e",
        "Stopped" => "#3c8dde",
        "HighYawRate" => "#8a5cd6",
        other => ["#2e9e6b", "#c2457a", "#6b7d2e", "#2e7d9e"][other.len() % 4],
    }
}

/// A scene id as a file name (no path separators).
pub fn file_stem(scene_id: &str) -> String {
    scene_id.chars().map(|c| if c == '/' || c == '\\' { '_' } else { c }).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The whole page.
pub fn page(bags: &[BagView], out: &Path, replay_url: Option<&str>) -> String {
    let scenes: usize = bags.iter().map(|b| b.scenes.len()).sum();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>scenes report</title><style>{STYLE}</style></head><body>\n<h1>Scenes</h1><div class=\"meta\">{} bags, {scenes} scenes</div>\n",
        bags.len()
    );
    for bag in bags {
        bag_section(&mut html, bag, out, replay_url);
    }
    html.push_str("</body></html>\n");
    html
}

fn bag_section(html: &mut String, bag: &BagView, out: &Path, replay_url: Option<&str>) {
    let r = &bag.record;
    let duration = match (bag.ticks.first(), bag.ticks.last()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => 0.0,
    };
    let _ = write!(
        html,
        "<section class=\"bag\" id=\"{id}\"><h2>{name}</h2><div class=\"meta\">{key} · {source} · {duration:.1} s · {messages} messages · {n} scenes</div>\n",
        id = escape(&r.bag_file),
        name = escape(r.name()),
        key = escape(&r.bag_file),
        source = escape(r.source_uri.as_deref().unwrap_or(&r.bag_file_prefix)),
        messages = r.message_count,
        n = bag.scenes.len()
    );
    timeline_chart(html, bag);
    html.push_str("<div class=\"scenes\">\n");
    for scene in &bag.scenes {
        scene_card(html, scene, out, replay_url);
    }
    html.push_str("</div></section>\n");
}

/// Speed (line, left axis) and people in lane (bars, bottom band), scenes as shaded spans.
fn timeline_chart(html: &mut String, bag: &BagView) {
    let (Some(&t0), Some(&t1)) = (bag.ticks.first(), bag.ticks.last()) else { return };
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| 40.0 + (t - t0) as f64 / span * (CHART_W - 50.0);
    let max_speed = bag.speed.iter().flatten().copied().fold(1.0_f64, f64::max);
    let speed_top = 12.0;
    let speed_bottom = CHART_H - BAND_H - 14.0;
    let y = |v: f64| speed_bottom - v / max_speed * (speed_bottom - speed_top);
    let _ = write!(html, "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"100%\" role=\"img\" aria-label=\"timeline\">");
    let mut scenarios: Vec<&str> = Vec::new();
    for s in &bag.scenes {
        let (a, b) = (x(s.start_ns), x(s.end_ns.unwrap_or(t1)));
        let _ = write!(
            html,
            "<rect class=\"scene-span\" x=\"{a:.1}\" y=\"4\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.22\"><title>{}</title></rect>",
            (b - a).max(1.5),
            CHART_H - 8.0,
            colour(&s.record.scenario),
            escape(&s.record.scene_id)
        );
        if !scenarios.contains(&s.record.scenario.as_str()) {
            scenarios.push(&s.record.scenario);
        }
    }
    let points: Vec<String> = bag.ticks.iter().zip(&bag.speed).filter_map(|(t, v)| v.map(|v| format!("{:.1},{:.1}", x(*t), y(v)))).collect();
    if !points.is_empty() {
        let _ = write!(html, "<polyline fill=\"none\" stroke=\"#1d2733\" stroke-width=\"1.2\" points=\"{}\"/>", points.join(" "));
    }
    let max_people = bag.people.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar_w = ((CHART_W - 50.0) / bag.ticks.len().max(1) as f64).max(0.6);
    for (t, p) in bag.ticks.iter().zip(&bag.people).filter(|(_, p)| **p > 0) {
        let h = f64::from(*p) / max_people * (BAND_H - 6.0);
        let _ = write!(html, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_w:.2}\" height=\"{h:.1}\" fill=\"#d64545\"/>", x(*t), CHART_H - 4.0 - h);
    }
    let _ = write!(
        html,
        "<text x=\"4\" y=\"{:.0}\" font-size=\"10\" fill=\"#5b6775\">{max_speed:.0} m/s</text><text x=\"4\" y=\"{:.0}\" font-size=\"10\" fill=\"#5b6775\">0</text>\
         <text x=\"4\" y=\"{:.0}\" font-size=\"10\" fill=\"#5b6775\">people</text><text x=\"40\" y=\"{:.0}\" font-size=\"10\" fill=\"#5b6775\">{}</text>\
         <text x=\"{:.0}\" y=\"{:.0}\" font-size=\"10\" fill=\"#5b6775\" text-anchor=\"end\">{}</text></svg>",
        speed_top + 8.0,
        speed_bottom,
        CHART_H - 6.0,
        CHART_H - BAND_H - 2.0,
        iso(t0.max(0) as u64),
        CHART_W - 10.0,
        CHART_H - BAND_H - 2.0,
        iso(t1.max(0) as u64)
    );
    html.push_str("<div class=\"legend\"><span><i style=\"background:#1d2733\"></i>ego speed</span><span><i style=\"background:#d64545\"></i>people in lane</span>");
    for s in scenarios {
        let _ = write!(html, "<span><i style=\"background:{};opacity:.5\"></i>{}</span>", colour(s), escape(s));
    }
    html.push_str("</div>\n");
}

fn scene_card(html: &mut String, scene: &SceneView, out: &Path, replay_url: Option<&str>) {
    let r = &scene.record;
    let stem = file_stem(&r.scene_id);
    let _ = write!(
        html,
        "<article class=\"card\" id=\"{id}\"><h3><span class=\"tag\" style=\"background:{c}\">{scenario}</span>{id}</h3>",
        id = escape(&r.scene_id),
        c = colour(&r.scenario),
        scenario = escape(&r.scenario)
    );
    frame(html, scene, &stem);
    let speed = match (r.ego_speed_min, r.ego_speed_max) {
        (Some(a), Some(b)) => format!("{a:.1}–{b:.1} m/s"),
        _ => "–".into(),
    };
    let length = r.scene_length.map_or("to the bag's end".to_string(), |l| format!("{l:.1} s"));
    let _ = write!(
        html,
        "<table><tr><td>start</td><td>{}</td></tr><tr><td>length</td><td>{length}</td></tr><tr><td>people in lane</td><td>{} at start, {} at most</td></tr>\
         <tr><td>ego speed</td><td>{speed}</td></tr>",
        iso(scene.start_ns.max(0) as u64),
        r.num_people_in_scene_start,
        r.max_people_in_scene
    );
    let clip = ["bag", "mcap"].iter().map(|ext| format!("clips/{stem}.{ext}")).find(|rel| out.join(rel).is_file());
    match &clip {
        Some(rel) => {
            let _ = write!(html, "<tr><td>clip</td><td><a href=\"{0}\">{0}</a></td></tr>", escape(rel));
            if let Some(template) = replay_url {
                let end = scene.end_ns.unwrap_or(scene.start_ns).max(0) as u64;
                let link = replay_link(template, rel, scene.start_ns.max(0) as u64, end);
                let _ = write!(html, "<tr><td>replay</td><td><a href=\"{}\">open in the viewer</a></td></tr>", escape(&link));
            }
        }
        None => {
            let _ = write!(html, "<tr><td>clip</td><td><code>scenes clip {} --out clips/</code></td></tr>", escape(&r.scene_id));
        }
    }
    html.push_str("</table></article>\n");
}

/// The frame with its boxes and lane lines (or, without a camera frame, the drawing alone).
fn frame(html: &mut String, scene: &SceneView, stem: &str) {
    let (w, h) = scene.frame_size;
    html.push_str("<div class=\"frame\">");
    let class = if scene.frame_jpeg.is_some() {
        let _ = write!(html, "<img src=\"frames/{}.jpg\" width=\"{w:.0}\" height=\"{h:.0}\" alt=\"camera frame at the scene's start\">", escape(stem));
        "over"
    } else {
        "alone"
    };
    let _ = write!(html, "<svg class=\"{class}\" viewBox=\"0 0 {w:.0} {h:.0}\" preserveAspectRatio=\"none\">");
    for line in &scene.lanes {
        let points: Vec<String> = line.iter().map(|p| format!("{:.1},{:.1}", p.x, p.y)).collect();
        let _ = write!(html, "<polyline class=\"lane\" fill=\"none\" stroke=\"#f2d43d\" stroke-width=\"4\" points=\"{}\"/>", points.join(" "));
    }
    for o in &scene.objects {
        let b = &o.bbox;
        let colour = if o.in_ego_lane { "#ff3b3b" } else { "#4fd1ff" };
        let _ = write!(
            html,
            "<rect class=\"box\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"4\"><title>{} {:.2}</title></rect>",
            b.center_x - b.width / 2.0,
            b.center_y - b.height / 2.0,
            b.width,
            b.height,
            escape(&o.class),
            o.confidence
        );
    }
    html.push_str("</svg></div>");
}
