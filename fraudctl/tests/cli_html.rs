//! `fraudctl drift --html`: the page beside the unchanged JSON output. (`monitor --html` is
//! checked on the demo's state in cli.rs, which has served traffic.)

use std::path::{Path, PathBuf};
use std::process::Command;

/// The seed's data files, beside the checkout; `None` (with a note) on a laptop without them.
fn seed_file(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing in CI",
        path.display()
    );
    eprintln!("skipped: {} is not beside the checkout", path.display());
    None
}

#[test]
fn drift_html_writes_the_page_and_keeps_the_json() {
    let (Some(reference), Some(current)) = (
        seed_file("german_credit_resampled.csv"),
        seed_file("shifted_data.csv"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("drift.html");
    let output = Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["drift", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .args(["--format", "json", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["drift"], true);
    // The JSON carries what the charts are drawn from.
    let telephone = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "telephone")
        .unwrap();
    assert_eq!(telephone["distribution"]["binning"], "codes");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Drift: "), "verdict missing");
    assert!(html.contains("telephone"));
    assert_eq!(html.matches("<svg").count(), 20);
    assert!(!html.contains("<script"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("HTML report written to"));

    // A folder that does not exist is an error, not a panic.
    let bad = Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["drift", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .arg("--html")
        .arg(dir.path().join("missing/drift.html"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot write the HTML report"));
}
