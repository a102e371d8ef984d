//! The monitor on the embedded defaults (SQLite and folders): served traffic against the
//! champion's training data, with outcomes coming back for part of it.

use chrono::{Duration, Utc};
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SourceRow};
use fraudrisk::drift::ks_2samp;
use fraudrisk::monitor::{
    emf_documents, reference_scores_key, MonitorSettings, ReferenceScores, ScoreReferenceSource,
    METRIC_NAMESPACE,
};
use fraudrisk::outcomes::Outcome;
use fraudrisk::pipeline::{self, MonitorRequest, PipelineError, PipelineSettings};
use fraudrisk::ports::RecordRole;
use fraudrisk::schema::Applicant;
use fraudrisk::services::Services;

fn rows(kind: GeneratedKind, seed: u64, n: usize) -> Vec<SourceRow> {
    let (reference_rows, shifted_rows) = match kind {
        GeneratedKind::Reference => (n, 0),
        GeneratedKind::Shifted => (0, n),
    };
    generated_rows(
        kind,
        GeneratorConfig {
            seed,
            reference_rows,
            shifted_rows,
        },
    )
}

async fn stored_reference_scores(services: &Services, version: u32) -> ReferenceScores {
    let bytes = services
        .artifacts
        .get(&reference_scores_key(version))
        .await
        .unwrap()
        .expect("initialtrain stores the holdout scores beside the model");
    ReferenceScores::from_json_bytes(&bytes).unwrap()
}

async fn trained_services(dir: &std::path::Path) -> Services {
    let services = Services::local(dir).await.unwrap();
    let reference = rows(GeneratedKind::Reference, 7, 3000);
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

/// Serves the rows' applicants and reports the true outcome of the first `with_outcome`.
async fn serve(services: &Services, served: &[SourceRow], with_outcome: usize) {
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    let applicants: Vec<Applicant> = served.iter().map(|r| r.record.applicant).collect();
    let answers = pipeline::predict_and_log(
        &champion,
        &applicants,
        services.predictions.as_ref(),
        Some("monitor-test"),
    )
    .await
    .unwrap();
    let outcomes: Vec<Outcome> = answers
        .iter()
        .zip(served)
        .take(with_outcome)
        .map(|(answer, row)| Outcome {
            prediction_id: answer.prediction_id.unwrap(),
            fraud: row.record.is_fraud(),
            observed_at: Utc::now(),
        })
        .collect();
    services
        .outcomes
        .record_outcomes(&outcomes, false, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn shifted_traffic_drifts_and_its_outcomes_give_realized_performance() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained_services(dir.path()).await;
    let shifted = rows(GeneratedKind::Shifted, 11, 400);
    serve(&services, &shifted, 300).await;

    let report = services
        .monitor(MonitorRequest::default(), &MonitorSettings::default())
        .await
        .unwrap();
    let window = &report.window;
    assert_eq!((window.served, window.reference_rows), (400, 3000));
    assert_eq!(window.champion_version, 1);
    assert_eq!(window.since, Some(window.champion_promoted_at));
    assert!(!window.truncated);

    // The seed's shifts (telephone among them) show in the served inputs.
    assert!(report.input_drift.drift);
    assert_eq!(report.input_drift.current_rows, 400);
    let telephone = report
        .input_drift
        .features
        .iter()
        .find(|f| f.feature == "telephone")
        .unwrap();
    assert!(telephone.significant, "{telephone:?}");
    assert!(report.alerts.iter().any(|a| a.kind == "input_drift"));

    // The score test is scipy's ks_2samp over the champion's scores on its holdout rows,
    // stored beside the model when it was trained.
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    let stored = stored_reference_scores(&services, 1).await;
    assert_eq!(stored.source, ScoreReferenceSource::Holdout);
    assert_eq!(stored.version, Some(1));
    let holdout_rows = champion.artifact.metrics.as_ref().unwrap().support;
    assert_eq!(stored.scores.len(), holdout_rows);
    // Each stored score is the champion's P(fraud) of one distinct reference row.
    let mut training_scores: Vec<f64> = rows(GeneratedKind::Reference, 7, 3000)
        .iter()
        .map(|r| champion.model.probability_of_fraud(&r.record.applicant))
        .collect();
    training_scores.sort_by(f64::total_cmp);
    for score in &stored.scores {
        assert!(
            training_scores
                .binary_search_by(|p| p.total_cmp(score))
                .is_ok(),
            "{score} is not the champion's score of a reference row"
        );
    }
    let served_scores: Vec<f64> = shifted
        .iter()
        .map(|r| champion.model.probability_of_fraud(&r.record.applicant))
        .collect();
    let ks = ks_2samp(&stored.scores, &served_scores).unwrap();
    let scores = &report.prediction_drift;
    assert_eq!((scores.reference_n, scores.current_n), (holdout_rows, 400));
    assert_eq!(window.score_reference, ScoreReferenceSource::Holdout);
    assert_eq!(window.score_reference_rows, holdout_rows);
    assert_eq!(scores.ks_statistic, ks.statistic);
    assert_eq!(scores.ks_p_value, ks.p_value);
    assert_eq!(scores.ks_method, "exact");

    // A model trained before the scores were stored: the champion re-scores its training
    // rows, and the report says so.
    services
        .artifacts
        .delete(&reference_scores_key(1))
        .await
        .unwrap();
    let fallback = services
        .monitor(MonitorRequest::default(), &MonitorSettings::default())
        .await
        .unwrap();
    assert_eq!(
        fallback.window.score_reference,
        ScoreReferenceSource::TrainingRows
    );
    assert_eq!(fallback.prediction_drift.reference_n, 3000);
    let ks = ks_2samp(&training_scores, &served_scores).unwrap();
    assert_eq!(fallback.prediction_drift.ks_statistic, ks.statistic);
    assert_eq!(fallback.prediction_drift.ks_p_value, ks.p_value);
    // A damaged file is an error, not a silent fallback.
    services
        .artifacts
        .put(
            &reference_scores_key(1),
            b"[0.5]".to_vec(),
            "application/json",
        )
        .await
        .unwrap();
    let damaged = services
        .monitor(MonitorRequest::default(), &MonitorSettings::default())
        .await
        .unwrap_err();
    assert!(
        damaged.to_string().contains("reference_scores.json"),
        "{damaged}"
    );

    // Realized performance: 300 of 400 have outcomes.
    let overall = &report.performance.overall;
    assert_eq!((overall.served, overall.labelled), (400, 300));
    assert_eq!(overall.label_coverage, 0.75);
    let frauds = shifted[..300]
        .iter()
        .filter(|r| r.record.is_fraud())
        .count();
    assert_eq!(overall.frauds, frauds);
    let auc = overall.roc_auc.unwrap();
    assert!(auc > 0.6 && auc <= 1.0, "{auc}");
    assert!(overall.brier.unwrap() > 0.0 && overall.brier.unwrap() < 0.3);
    assert_eq!(report.performance.by_version.len(), 1);
    assert_eq!(report.performance.by_version[0].model_version, 1);
    let weekly: usize = report
        .performance
        .by_week
        .iter()
        .map(|w| w.figures.served)
        .sum();
    assert_eq!(weekly, 400);

    // Segments partition the traffic twice: by age band and by sex_marital_status code.
    for segment in ["age_band", "sex_marital_status"] {
        let total: usize = report
            .segments
            .iter()
            .filter(|s| s.segment == segment)
            .map(|s| s.figures.served)
            .sum();
        assert_eq!(total, 400, "{segment}");
    }
    assert!(report.data_quality.is_clean());

    // The JSON has the keys the README documents.
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "window",
        "input_drift",
        "prediction_drift",
        "data_quality",
        "performance",
        "segments",
        "alerts",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    assert_eq!(json["performance"]["label_coverage"], 0.75);

    // The same figures as CloudWatch metrics: every declared metric is at the root.
    let documents = emf_documents(&report, 1_764_500_000_000);
    assert_eq!(documents.len(), 21);
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], METRIC_NAMESPACE);
        assert_eq!(document["_aws"]["Timestamp"], 1_764_500_000_000_i64);
        assert_eq!(document["ModelVersion"], "1");
        let sets = directive["Dimensions"].as_array().unwrap();
        assert_eq!(sets[0][0], "ModelVersion");
        assert!(!sets[1].as_array().unwrap().contains(&"ModelVersion".into()));
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(document[name].is_number(), "{name} in {document}");
        }
    }
    let headline = &documents[0];
    assert_eq!(headline["ServedPredictions"], 400.0);
    assert_eq!(headline["LabelCoverage"], 0.75);
    assert_eq!(headline["RealizedRocAuc"], auc);
    let drifted = report
        .input_drift
        .features
        .iter()
        .filter(|f| f.significant)
        .count();
    assert_eq!(headline["DriftedFeatures"], drifted as f64);
    assert_eq!(documents[20]["Feature"], "foreign_worker");
}

/// The recorded monitor run carries the report and its page (the local tracker's files are
/// under the state folder's `tracking/`).
#[tokio::test]
async fn the_monitor_run_carries_the_report_and_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained_services(dir.path()).await;
    serve(&services, &rows(GeneratedKind::Shifted, 5, 200), 150).await;
    let report = pipeline::monitor_and_record(
        &services,
        MonitorRequest::default(),
        &MonitorSettings::default(),
    )
    .await
    .unwrap();
    let runs: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path().join("tracking/runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("artifacts"))
        .filter(|a| a.join(pipeline::MONITOR_REPORT_PATH).exists())
        .collect();
    assert_eq!(runs.len(), 1, "one monitoring run");
    let page = std::fs::read_to_string(runs[0].join(pipeline::MONITOR_HTML_PATH)).unwrap();
    assert_eq!(page, fraudrisk::report::monitor_html(&report));
    assert!(page.contains("Monitor report: champion version 1"));
    assert!(page.contains("input_drift"));
    assert_eq!(report.performance.reliability.len(), 10);
    assert_eq!(
        report
            .prediction_drift
            .histogram
            .current
            .iter()
            .sum::<u64>(),
        200
    );
}

#[tokio::test]
async fn traffic_like_the_training_data_raises_no_score_alert() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained_services(dir.path()).await;
    serve(&services, &rows(GeneratedKind::Reference, 99, 500), 0).await;
    let report = services
        .monitor(MonitorRequest::default(), &MonitorSettings::default())
        .await
        .unwrap();
    assert!(
        !report.prediction_drift.drift,
        "{:?}",
        report.prediction_drift
    );
    assert!(!report.input_drift.drift);
    assert!(report.alerts.is_empty(), "{:?}", report.alerts);
    assert_eq!(report.performance.overall.labelled, 0);
    assert_eq!(report.performance.overall.roc_auc, None);
}

#[tokio::test]
async fn a_window_without_traffic_says_so_and_no_champion_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Services::local(dir.path()).await.unwrap();
    let err = empty
        .monitor(MonitorRequest::default(), &MonitorSettings::default())
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::NoChampion), "{err}");

    let services = trained_services(&dir.path().join("trained")).await;
    serve(&services, &rows(GeneratedKind::Shifted, 3, 50), 0).await;
    let tomorrow = Utc::now() + Duration::days(1);
    let report = services
        .monitor(
            MonitorRequest {
                since: Some(tomorrow),
                until: None,
            },
            &MonitorSettings::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.window.served, 0);
    assert!(report.alerts.iter().any(|a| a.kind == "no_traffic"));
    assert!(report.prediction_drift.note.is_some());
    // A window that ends before the traffic sees none of it either; one around it sees all.
    let before = services
        .monitor(
            MonitorRequest {
                since: None,
                until: Some(Utc::now() - Duration::days(1)),
            },
            &MonitorSettings::default(),
        )
        .await
        .unwrap();
    assert_eq!(before.window.served, 0);
    let around = services
        .monitor(
            MonitorRequest {
                since: Some(Utc::now() - Duration::days(1)),
                until: Some(tomorrow),
            },
            &MonitorSettings::default(),
        )
        .await
        .unwrap();
    assert_eq!(around.window.served, 50);
}
