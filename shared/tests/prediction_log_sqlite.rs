//! The embedded store's prediction log: entries come back whole by their id, a retried
//! batch is not stored twice, and a log from before ids (or reason codes) is upgraded with its
//! rows kept.

use chrono::{SubsecRound, Utc};
use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::ports::{PredictionLog, PredictionLogEntry, RecordStore};
use uuid::Uuid;

fn entry(probability: f64, username: Option<&str>) -> PredictionLogEntry {
    PredictionLogEntry {
        prediction_id: Uuid::now_v7(),
        created_at: Utc::now().trunc_subsecs(6),
        model_version: 2,
        threshold: 0.5,
        probability_of_fraud: probability,
        fraud: probability >= 0.5,
        features: serde_json::json!({ "age_years": 33, "note": "'); DROP TABLE predictions; --" }),
        username: username.map(str::to_string),
        reason_codes: vec!["R01".to_string()],
    }
}

#[tokio::test]
async fn entries_are_found_by_id_and_retries_are_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
    store.migrate().await.unwrap();
    let entries = [entry(0.9, Some("merlin")), entry(0.1, None)];
    store.log_predictions(&entries).await.unwrap();
    for logged in &entries {
        let stored = store.prediction_by_id(logged.prediction_id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(logged));
    }
    assert_eq!(store.prediction_by_id(Uuid::now_v7()).await.unwrap(), None);

    // The background writer retries a batch whose commit it could not confirm.
    store.log_predictions(&entries).await.unwrap();
    assert_eq!(store.prediction_stats(None).await.unwrap().count, 2);
}

#[tokio::test]
async fn a_log_from_before_ids_keeps_its_rows_without_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.migrate().await.unwrap();
    }
    {
        // Back to the schema of migration 0006, with two predictions logged then.
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "DROP INDEX predictions_prediction_id;
                 ALTER TABLE predictions DROP COLUMN prediction_id;
                 ALTER TABLE predictions DROP COLUMN threshold;
                 DELETE FROM schema_migrations WHERE name = '0007_prediction_ids';
                 INSERT INTO predictions
                   (created_at, model_version, probability_of_fraud, fraud, features, username)
                 VALUES ('2026-01-01T00:00:00+00:00', 1, 0.8, 1, '{}', NULL),
                        ('2026-01-01T00:00:01+00:00', 1, 0.2, 0, '{}', NULL);",
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrate().await.unwrap(), ["0007_prediction_ids"]);
    let logged = entry(0.6, Some("merlin"));
    store
        .log_predictions(std::slice::from_ref(&logged))
        .await
        .unwrap();
    assert_eq!(
        store.prediction_by_id(logged.prediction_id).await.unwrap(),
        Some(logged)
    );
    assert_eq!(store.prediction_stats(None).await.unwrap().count, 3);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let without: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM predictions WHERE prediction_id IS NULL AND threshold IS NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(without, 2, "old rows keep NULL ids");
}

#[tokio::test]
async fn rows_logged_before_reason_codes_read_back_without_any() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
    store.migrate().await.unwrap();
    let logged = entry(0.7, None);
    store
        .log_predictions(std::slice::from_ref(&logged))
        .await
        .unwrap();
    let connection = rusqlite::Connection::open(dir.path().join("db.sqlite3")).unwrap();
    connection
        .execute("UPDATE predictions SET reason_codes = NULL", [])
        .unwrap();
    let stored = store.prediction_by_id(logged.prediction_id).await.unwrap();
    assert_eq!(
        stored.map(|e| e.reason_codes),
        Some(Vec::<String>::new()),
        "a NULL column reads as no codes"
    );
}
