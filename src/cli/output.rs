//! Printing what several commands report: an ingest report, the scenes of a bag.

use crate::bag::IndexState;
use crate::ingest::IngestReport;
use crate::meta::SceneRecord;

/// One ingested bag: messages, tables, speed, and what was damaged or lost.
pub fn print_ingest_report(r: &IngestReport) {
    let rate = r.messages_ingested as f64 / r.seconds.max(1e-9);
    let mb_s = r.bytes as f64 / 1e6 / r.seconds.max(1e-9);
    println!(
        "{}: {} messages, {} tables, {} chunks in {:.2}s ({:.0} msg/s, {:.1} MB/s)",
        r.bag_file,
        r.messages_ingested,
        r.tables.len(),
        r.chunks,
        r.seconds,
        rate,
        mb_s
    );
    if let IndexState::Scanned(reason) = &r.index {
        println!("  recovered by scanning: {reason}");
    }
    for p in &r.damage.problems {
        println!("  damage: {p}");
    }
    if let IndexState::Scanned(_) = &r.index {
        print_recovery(r);
    }
    for t in &r.topics {
        if t.decode_errors > 0 || t.first_error.is_some() {
            println!(
                "  {}: {} of {} messages ingested, {} did not match the definition{}",
                t.topic,
                t.messages_ingested,
                t.messages_in_bag,
                t.decode_errors,
                t.first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default()
            );
        }
        if t.lossy_utf8 > 0 {
            println!("  {}: {} messages had non-UTF-8 strings (raw bytes kept in _raw_message)", t.topic, t.lossy_utf8);
        }
    }
}

/// What a salvage scan recovered and lost, per topic.
fn print_recovery(r: &IngestReport) {
    if let Some(cut) = &r.damage.cut_chunk {
        println!(
            "  cut chunk at byte {}: {} of {} bytes present; messages in the missing part are unknown",
            cut.pos, cut.present_bytes, cut.declared_bytes
        );
    }
    for t in &r.topics {
        let from_cut = if t.recovered_from_cut_chunk > 0 {
            format!(" ({} from the cut chunk)", t.recovered_from_cut_chunk)
        } else {
            String::new()
        };
        println!("  {}: recovered {}, lost {}{from_cut}", t.topic, t.messages_in_bag, t.messages_lost);
    }
}

/// The scenes of one bag, one line each.
pub fn print_scenes(bag: &str, scenes: &[SceneRecord], other_rule: Option<usize>) {
    match other_rule {
        Some(n) => println!("{bag}: {} scenes ({n} under the other rule)", scenes.len()),
        None => println!("{bag}: {} scenes", scenes.len()),
    }
    for s in scenes {
        println!(
            "  {}  {:.1}s  people {} (max {}){}{}",
            s.scene_id,
            s.scene_length.unwrap_or(f64::NAN),
            s.num_people_in_scene_start,
            s.max_people_in_scene,
            s.ego_speed_max.map(|v| format!("  ego speed {:.1}-{:.1} m/s", s.ego_speed_min.unwrap_or(v), v)).unwrap_or_default(),
            if s.open_at_start || s.open_at_end { "  (open at the bag's edge)" } else { "" }
        );
    }
}
