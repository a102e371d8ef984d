//! `fraudctl outcomes load`: outcome files by prediction id, the per-item report, the
//! all-or-nothing rule for a bad file, and the waiting rows by source in `status`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use chrono::Utc;
use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::ports::{PredictionLog, PredictionLogEntry, RecordStore};
use fraudrisk::request::seed_example_corrected;
use uuid::Uuid;

fn fraudctl(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "fraudctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Logs `count` predictions in the state's database, as serving would, and returns their ids.
async fn logged_predictions(state: &Path, count: usize) -> Vec<Uuid> {
    let store = SqliteStore::open(&state.join("fraudrisk.sqlite3")).unwrap();
    store.migrate().await.unwrap();
    let entries: Vec<PredictionLogEntry> = (0..count)
        .map(|i| {
            let mut features = seed_example_corrected();
            features["age_years"] = serde_json::json!(30 + i);
            PredictionLogEntry {
                prediction_id: Uuid::now_v7(),
                created_at: Utc::now(),
                model_version: 1,
                threshold: 0.5,
                probability_of_fraud: 0.2,
                fraud: false,
                features,
                username: Some("merlin".to_string()),
                reason_codes: Vec::new(),
            }
        })
        .collect();
    store.log_predictions(&entries).await.unwrap();
    entries.iter().map(|e| e.prediction_id).collect()
}

#[tokio::test]
async fn an_outcomes_file_is_recorded_with_a_report_per_item() {
    let state = tempfile::tempdir().unwrap();
    let ids = logged_predictions(state.path(), 3).await;
    let unknown = Uuid::now_v7();
    let file = state.path().join("outcomes.csv");
    std::fs::write(
        &file,
        format!(
            "prediction_id,fraud,observed_at\n{},true,2026-11-01T00:00:00Z\n\n{},false,\n{unknown},1,\n",
            ids[0], ids[1]
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let report = json(&fraudctl(
        state.path(),
        &["outcomes", "load", path, "--format", "json"],
    ));
    assert_eq!(report["counts"]["recorded"], 2, "{report}");
    assert_eq!(report["counts"]["unknown_prediction"], 1);
    assert_eq!(
        report["outcomes"][2]["index"], 5,
        "the line of the unknown id"
    );
    assert_eq!(report["outcomes"][2]["result"], "unknown_prediction");

    // The table lists what needs attention, with its line.
    let table = fraudctl(state.path(), &["outcomes", "load", path]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success());
    assert!(
        text.contains("unchanged") && text.contains(&unknown.to_string()),
        "{text}"
    );

    // JSON lines, and a different outcome with --overwrite.
    let lines = state.path().join("flip.jsonl");
    std::fs::write(
        &lines,
        format!("{{\"prediction_id\": \"{}\", \"fraud\": false}}\n", ids[0]),
    )
    .unwrap();
    let lines_path = lines.to_str().unwrap();
    let conflict = json(&fraudctl(
        state.path(),
        &["outcomes", "load", lines_path, "--format", "json"],
    ));
    assert_eq!(conflict["outcomes"][0]["result"], "conflict");
    let replaced = json(&fraudctl(
        state.path(),
        &[
            "outcomes",
            "load",
            lines_path,
            "--overwrite",
            "--format",
            "json",
        ],
    ));
    assert_eq!(replaced["outcomes"][0]["result"], "replaced");

    // The rows wait for the retrain, by source.
    let status = json(&fraudctl(state.path(), &["status", "--format", "json"]));
    assert_eq!(status["waiting_by_source"]["outcome"], 2, "{status}");
    let table = fraudctl(state.path(), &["status"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("waiting from outcome"));
}

#[tokio::test]
async fn a_bad_line_refuses_the_whole_file() {
    let state = tempfile::tempdir().unwrap();
    let ids = logged_predictions(state.path(), 2).await;
    let file = state.path().join("bad.csv");
    std::fs::write(
        &file,
        format!("prediction_id,fraud\n{},true\n{},maybe\n", ids[0], ids[1]),
    )
    .unwrap();
    let output = fraudctl(state.path(), &["outcomes", "load", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 3, column fraud") && stderr.contains("maybe"),
        "{stderr}"
    );
    let store = SqliteStore::open(&state.path().join("fraudrisk.sqlite3")).unwrap();
    assert!(
        store.pending_by_source().await.unwrap().is_empty(),
        "nothing of the file was stored"
    );
}
