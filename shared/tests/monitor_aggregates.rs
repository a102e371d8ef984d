//! The monitor's aggregate path (SQL `GROUP BY` per feature plus a streamed pass over the
//! scores) against its row-level path (every logged prediction read with its inputs), on the
//! same window: every figure of the report equal, the categorical tests' p-values and the KS
//! statistic to the bit, the rest to 1e-12 relative. In SQLite here, in PostgreSQL in the
//! test that needs services.

mod it_common;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use fraudrisk::adapters::postgres::PostgresStore;
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::monitor::{
    monitor_report, reference_scores_key, MonitorInput, MonitorReport, MonitorSettings,
    ReferenceScores,
};
use fraudrisk::outcomes::Outcome;
use fraudrisk::pipeline::{self, MonitorRequest, PipelineSettings};
use fraudrisk::ports::{
    ArtifactStore, OutcomeStore, PredictionLog, PredictionLogEntry, RecordRole, RecordStore,
};
use fraudrisk::schema::{Applicant, FeatureKind, FEATURES};
use fraudrisk::services::Services;
use serde_json::Value;
use uuid::Uuid;

/// A champion trained on 2,000 generated reference rows, in SQLite and folders.
async fn trained(dir: &std::path::Path) -> Services {
    let services = Services::local(dir).await.unwrap();
    let reference = generated_rows(
        GeneratedKind::Reference,
        GeneratorConfig {
            seed: 5,
            reference_rows: 2_000,
            shifted_rows: 0,
        },
    );
    services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    services
        .initial_train(&PipelineSettings::default())
        .await
        .unwrap();
    services
}

/// Hand-made log entries: reference-like and shifted inputs, scores rounded to 1/200 so that
/// many tie (with each other and with the reference scores' grid), two model versions, and
/// times over four ISO weeks before `now`.
fn crafted_entries(now: DateTime<Utc>, n: usize) -> Vec<PredictionLogEntry> {
    let generate = |kind, reference_rows, shifted_rows| {
        generated_rows(
            kind,
            GeneratorConfig {
                seed: 9,
                reference_rows,
                shifted_rows,
            },
        )
    };
    let mut rows = generate(GeneratedKind::Reference, n / 2, 0);
    rows.extend(generate(GeneratedKind::Shifted, 0, n - n / 2));
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let applicant = &row.record.applicant;
            let raw = (i * 7919 % 1000) as f64 / 1000.0;
            let probability = (raw * 200.0).round() / 200.0;
            PredictionLogEntry {
                prediction_id: Uuid::now_v7(),
                created_at: now - Duration::minutes((i as i64 * 37) % (28 * 24 * 60)),
                model_version: 1 + (i % 3 == 0) as u32,
                threshold: 0.5,
                probability_of_fraud: probability,
                fraud: probability >= 0.5,
                features: applicant.to_json(),
                username: None,
                reason_codes: Vec::new(),
            }
        })
        .collect()
}

/// Outcomes for two thirds of the entries: fraud more often at high scores.
fn outcomes(entries: &[PredictionLogEntry], now: DateTime<Utc>) -> Vec<Outcome> {
    entries
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 1)
        .map(|(i, e)| Outcome {
            prediction_id: e.prediction_id,
            fraud: ((i * 31) % 100) as f64 / 100.0 < e.probability_of_fraud,
            observed_at: now,
        })
        .collect()
}

/// The row-level report over the same window as `aggregated`.
async fn row_level_report(
    records: &dyn RecordStore,
    predictions: &dyn PredictionLog,
    artifacts: &dyn ArtifactStore,
    aggregated: &MonitorReport,
) -> MonitorReport {
    let champion = pipeline::load_champion(artifacts).await.unwrap().unwrap();
    let version = champion.pointer.version;
    let reference: Vec<Applicant> = records
        .absorbed_records()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.absorbed_by.is_some_and(|v| v <= version))
        .map(|s| s.record.applicant)
        .collect();
    // The score reference the monitor uses: the holdout scores stored with the model.
    let stored = artifacts
        .get(&reference_scores_key(version))
        .await
        .unwrap()
        .expect("initialtrain stores the holdout scores");
    let scores = ReferenceScores::from_json_bytes(&stored).unwrap().scores;
    let window = &aggregated.window;
    assert_eq!(window.score_reference_rows, scores.len());
    let served = predictions
        .predictions_in_window(window.since, window.until, usize::MAX)
        .await
        .unwrap();
    assert_eq!(served.len(), window.served);
    let input = MonitorInput {
        reference: &reference,
        reference_scores: &scores,
        threshold: champion.model.threshold(),
        served: &served,
    };
    monitor_report(input, window.clone(), &MonitorSettings::default())
}

/// Every leaf of the two reports equal: numbers to 1e-12 relative (1e-300 absolute).
fn assert_same(path: &str, row_level: &Value, aggregated: &Value) {
    match (row_level, aggregated) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let tolerance = 1e-12 * a.abs().max(b.abs()) + 1e-300;
            assert!((a - b).abs() <= tolerance, "{path}: {a} vs {b}");
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(b), "{path}");
            for (key, value) in a {
                assert_same(&format!("{path}.{key}"), value, &b[key]);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same(&format!("{path}[{i}]"), x, y);
            }
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

/// Runs both paths on the window and compares them; returns the aggregated report.
async fn both_paths_agree(
    records: &dyn RecordStore,
    predictions: &dyn PredictionLog,
    artifacts: &dyn ArtifactStore,
    request: MonitorRequest,
) -> MonitorReport {
    let settings = MonitorSettings::default();
    let aggregated = pipeline::monitor(records, predictions, artifacts, request, &settings)
        .await
        .unwrap();
    let row_level = row_level_report(records, predictions, artifacts, &aggregated).await;
    assert_same(
        "report",
        &serde_json::to_value(&row_level).unwrap(),
        &serde_json::to_value(&aggregated).unwrap(),
    );
    // Counts are tested to the bit: the categorical tests and the KS statistic.
    for (r, a) in row_level
        .input_drift
        .features
        .iter()
        .zip(&aggregated.input_drift.features)
    {
        if r.kind != FeatureKind::Numeric {
            assert_eq!(r.p_value.to_bits(), a.p_value.to_bits(), "{}", r.feature);
        }
    }
    let (r, a) = (&row_level.prediction_drift, &aggregated.prediction_drift);
    assert_eq!(r.ks_statistic.to_bits(), a.ks_statistic.to_bits());
    assert_eq!(r.ks_p_value.to_bits(), a.ks_p_value.to_bits());
    aggregated
}

/// Logs the crafted traffic with outcomes through `predictions` / `outcome_store`, then
/// compares the paths over everything and over a two-week window.
async fn check_store(
    services: &Services,
    predictions: &dyn PredictionLog,
    outcome_store: &dyn OutcomeStore,
    n: usize,
) -> MonitorReport {
    let now = Utc::now().trunc_subsecs(6);
    let entries = crafted_entries(now, n);
    predictions.log_predictions(&entries).await.unwrap();
    outcome_store
        .record_outcomes(&outcomes(&entries, now), false, None)
        .await
        .unwrap();
    let records = services.records.as_ref();
    let artifacts = services.artifacts.as_ref();
    let all = MonitorRequest {
        since: Some(now - Duration::days(60)),
        until: None,
    };
    let report = both_paths_agree(records, predictions, artifacts, all).await;
    assert_eq!(report.window.served, n);
    let part = MonitorRequest {
        since: Some(now - Duration::days(20)),
        until: Some(now - Duration::days(6)),
    };
    let window = both_paths_agree(records, predictions, artifacts, part).await;
    assert!(window.window.served > 0 && window.window.served < n);
    report
}

#[tokio::test]
async fn sqlite_aggregates_equal_the_row_level_report() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained(dir.path()).await;
    let report = check_store(
        &services,
        services.predictions.as_ref(),
        services.outcomes.as_ref(),
        3_000,
    )
    .await;
    // The crafted traffic exercises what is compared: shifted inputs, two versions, four
    // weeks, outcomes of both kinds, tied scores.
    assert!(report.input_drift.drift);
    assert_eq!(report.performance.by_version.len(), 2);
    assert!(report.performance.by_week.len() >= 4);
    assert!(report.performance.overall.roc_auc.is_some());
    assert!(report.data_quality.is_clean());
    assert!(report.segments.len() > 4);
}

/// Hand-edited log rows (a text value, a missing key, an out-of-range number, a non-object)
/// are counted alike by both paths: the aggregate path reads the data quality row by row
/// when its counts show a bad value, and leaves the bad cells out of the tests.
#[tokio::test]
async fn sqlite_bad_logged_values_are_counted_alike() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained(dir.path()).await;
    let now = Utc::now().trunc_subsecs(6);
    let mut entries = crafted_entries(now, 400);
    let age = FEATURES.iter().position(|f| f.name == "age_years").unwrap();
    for (i, entry) in entries.iter_mut().take(12).enumerate() {
        let object = entry.features.as_object_mut().unwrap();
        match i % 4 {
            0 => {
                object.insert(FEATURES[age].name.to_string(), Value::from("old"));
            }
            1 => {
                object.remove(FEATURES[3].name);
            }
            2 => {
                object.insert(FEATURES[0].name.to_string(), Value::from(99));
            }
            _ => entry.features = Value::from(vec![1, 2, 3]),
        }
    }
    services
        .predictions
        .log_predictions(&entries)
        .await
        .unwrap();
    let request = MonitorRequest {
        since: Some(now - Duration::days(60)),
        until: None,
    };
    let report = both_paths_agree(
        services.records.as_ref(),
        services.predictions.as_ref(),
        services.artifacts.as_ref(),
        request,
    )
    .await;
    assert_eq!(report.data_quality.rows_with_issues, 12);
    assert!(report.alerts.iter().any(|a| a.kind == "data_quality"));
}

#[tokio::test]
#[ignore = "needs services"]
async fn postgres_aggregates_equal_the_row_level_report() {
    it_common::start();
    let database = it_common::TestDatabase::create("monitor_aggregates").await;
    let store = PostgresStore::connect(&database.settings()).await.unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The champion and its training rows in SQLite and folders; the log in PostgreSQL.
    let services = trained(dir.path()).await;
    let report = check_store(&services, &store, &store, 3_000).await;
    assert!(report.input_drift.drift);
    assert_eq!(report.performance.by_version.len(), 2);
}
