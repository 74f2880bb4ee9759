//! The crate's structure as src/lib.rs promises it: data flows one way (source → bag → decode →
//! lake/meta → stages → batch → query → config → cli), no import circles between files, and no
//! stage imports another. Checked from the source by tests/py/module_graph.py.

use std::process::Command;

use crate::common::*;

#[test]
fn imports_follow_the_data_flow_without_circles() {
    let out = Command::new(python()).arg(py_script("module_graph.py")).arg(manifest_dir().join("src")).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the module graph breaks the layering:\n{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(" edges between "), "{report}");
}

#[test]
fn the_checker_finds_a_circle_and_an_edge_against_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("bag")).unwrap();
    // bag/a.rs and bag/b.rs name each other; bag names a stage.
    std::fs::write(src.join("bag/mod.rs"), "pub mod a;\npub mod b;\nuse crate::ingest::Thing;\n").unwrap();
    std::fs::write(src.join("bag/a.rs"), "use super::b::B;\n").unwrap();
    std::fs::write(src.join("bag/b.rs"), "use super::a::A;\n").unwrap();
    std::fs::write(src.join("ingest.rs"), "pub struct Thing;\n").unwrap();
    let out = Command::new(python()).arg(py_script("module_graph.py")).arg(src).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("import circle: bag/a <-> bag/b"), "{report}");
    assert!(report.contains("against the data flow: bag -> ingest: Thing"), "{report}");
}
