//! The whole life cycle on the embedded defaults (SQLite and folders), through the same
//! pipeline functions the Lambdas and `fraudctl` call.

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::pipeline::{
    self, PipelineError, PipelineSettings, RetrainMode, RetrainOutcome, CHAMPION_ALIAS,
};
use fraudrisk::ports::RecordRole;
use fraudrisk::request::{applicants_from_json, seed_example_corrected};
use fraudrisk::services::Services;

fn config(seed: u64, reference_rows: usize, shifted_rows: usize) -> GeneratorConfig {
    GeneratorConfig {
        seed,
        reference_rows,
        shifted_rows,
    }
}

async fn trained_services(dir: &std::path::Path) -> (Services, PipelineSettings) {
    let services = Services::local(dir).await.unwrap();
    let settings = PipelineSettings::default();
    let reference = generated_rows(GeneratedKind::Reference, config(7, 3000, 0));
    services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    services.initial_train(&settings).await.unwrap();
    (services, settings)
}

/// Loads `rows` as new rows under `source`, then retrains in `mode`.
async fn load_and_retrain(
    services: &Services,
    settings: &PipelineSettings,
    source: &str,
    rows: &[fraudrisk::dataset::SourceRow],
    mode: RetrainMode,
) -> pipeline::RetrainSummary {
    services
        .records
        .load_records(source, RecordRole::New, rows)
        .await
        .unwrap();
    services.retrain(settings, mode).await.unwrap()
}

#[tokio::test]
async fn life_cycle_from_load_to_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    let settings = PipelineSettings::default();

    // Nothing to train on yet, and no champion to serve.
    let err = services.initial_train(&settings).await.unwrap_err();
    assert!(matches!(err, PipelineError::NoReferenceData), "{err}");
    assert!(pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .is_none());

    // Loading is idempotent.
    let reference = generated_rows(GeneratedKind::Reference, config(7, 3000, 0));
    let first = services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    let second = services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    assert_eq!((first.inserted, second.inserted), (3000, 0));
    assert_eq!(second.already_present, 3000);

    let trained = services.initial_train(&settings).await.unwrap();
    assert_eq!(trained.version, 1);
    assert!(
        trained.metrics.roc_auc > 0.65,
        "{}",
        trained.metrics.roc_auc
    );
    let counts = services.records.record_counts().await.unwrap();
    assert_eq!((counts.absorbed, counts.pending), (3000, 0));
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(champion.pointer.version, 1);
    assert_eq!(champion.artifact.provenance.version, Some(1));
    let alias = services
        .tracker
        .alias_version(&settings.model_name, CHAMPION_ALIAS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alias.version, 1);

    // A prediction is served and logged, never as a training row.
    let (applicants, _) = applicants_from_json(&seed_example_corrected()).unwrap();
    let served = pipeline::predict_and_log(
        &champion,
        &applicants,
        services.predictions.as_ref(),
        Some("merlin"),
    )
    .await
    .unwrap();
    assert_eq!(served[0].model_version, 1);
    let p = served[0].prediction.probability_of_fraud;
    assert!((0.0..=1.0).contains(&p));
    // Logged under the id it was served with, with the threshold the model applied.
    let id = served[0]
        .prediction_id
        .expect("a logged prediction has an id");
    assert_eq!(id.get_version_num(), 7);
    let stored = services.predictions.prediction_by_id(id).await.unwrap();
    let stored = stored.expect("the served id is in the log");
    assert_eq!(
        (
            stored.model_version,
            stored.threshold,
            stored.probability_of_fraud
        ),
        (1, champion.model.threshold(), p)
    );
    assert_eq!(stored.username.as_deref(), Some("merlin"));
    let stats = services.predictions.prediction_stats(None).await.unwrap();
    assert_eq!(stats.count, 1);
    assert_eq!(services.records.record_counts().await.unwrap().pending, 0);

    // No new rows: nothing to do.
    let nothing = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    assert_eq!(nothing.outcome, RetrainOutcome::NoNewRows);

    // if-drift waits for 1,000 rows.
    let few = generated_rows(GeneratedKind::Shifted, config(7, 0, 500));
    services
        .records
        .load_records("shifted-a", RecordRole::New, &few)
        .await
        .unwrap();
    let waiting = services
        .retrain(&settings, RetrainMode::IfDrift)
        .await
        .unwrap();
    assert_eq!(waiting.outcome, RetrainOutcome::WaitingForRows);
    assert_eq!(waiting.new_rows, 500);

    // With 1,500 shifted rows the drift test fires and a challenger is trained.
    let more = generated_rows(GeneratedKind::Shifted, config(8, 0, 1000));
    services
        .records
        .load_records("shifted-b", RecordRole::New, &more)
        .await
        .unwrap();
    let retrained = services
        .retrain(&settings, RetrainMode::IfDrift)
        .await
        .unwrap();
    let drift = retrained.drift.as_ref().unwrap();
    assert!(drift.drift, "the shifted rows should drift");
    assert_eq!(drift.features.len(), 20);
    assert_eq!(retrained.challenger_version, Some(2));
    let comparison = retrained.comparison.as_ref().unwrap();
    // Promoted exactly when every criterion of the gate passed (no outcomes: no replay).
    assert_eq!(comparison.criteria.len(), 3);
    assert!(comparison.replay.evaluation.is_none());
    let promoted = comparison.criteria.iter().all(|c| c.passed);
    assert_eq!(
        retrained.outcome,
        if promoted {
            RetrainOutcome::Promoted
        } else {
            RetrainOutcome::Rejected
        }
    );
    let expected_champion = if promoted { 2 } else { 1 };
    assert_eq!(retrained.champion_version, expected_champion);
    let pointer = pipeline::read_champion_pointer(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pointer.version, expected_champion);
    let versions = services
        .tracker
        .list_versions(&settings.model_name)
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(services.records.record_counts().await.unwrap().pending, 0);
    // The drift report's page: beside the published model, and among the run's artifacts.
    let page =
        std::fs::read_to_string(dir.path().join("artifacts/models/v2/drift_report.html")).unwrap();
    assert!(page.contains("Drift: ") && page.contains("Drift report: retrain"));
    let run_id = retrained.run_id.clone().unwrap();
    let logged = dir
        .path()
        .join("tracking/runs")
        .join(&run_id)
        .join("artifacts/drift_report.html");
    assert_eq!(std::fs::read_to_string(logged).unwrap(), page);
}

#[tokio::test]
async fn if_drift_absorbs_rows_that_did_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let (services, settings) = trained_services(dir.path()).await;
    // Fresh rows from the reference distribution: no drift expected.
    let same = generated_rows(GeneratedKind::Reference, config(99, 1200, 0));
    let summary = load_and_retrain(
        &services,
        &settings,
        "more-reference-like",
        &same,
        RetrainMode::IfDrift,
    )
    .await;
    assert_eq!(
        summary.outcome,
        RetrainOutcome::AbsorbedWithoutRetraining,
        "{}",
        summary.reason
    );
    assert!(!summary.drift.as_ref().unwrap().drift);
    assert_eq!(summary.champion_version, 1);
    // The run that absorbed them carries the drift report's page.
    let run = dir
        .path()
        .join("tracking/runs")
        .join(summary.run_id.clone().unwrap())
        .join("artifacts");
    let page = std::fs::read_to_string(run.join("drift_report.html")).unwrap();
    assert!(page.contains("No drift: none of the 20 features drifted"));
    let counts = services.records.record_counts().await.unwrap();
    assert_eq!(counts.pending, 0);
    let versions = services
        .tracker
        .list_versions(&settings.model_name)
        .await
        .unwrap();
    assert_eq!(
        versions.len(),
        1,
        "no version is registered without training"
    );
    // No traffic was served: the monitor's verdict is there, with nothing tested.
    let served = summary.served_input_drift.unwrap();
    assert_eq!((served.served, served.drift), (0, false));
}

#[tokio::test]
async fn if_drift_trains_when_the_served_inputs_drifted_though_the_waiting_rows_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let (services, settings) = trained_services(dir.path()).await;
    // Production sends the seed's shifted applicants...
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    let shifted = generated_rows(GeneratedKind::Shifted, config(5, 0, 400));
    let applicants: Vec<_> = shifted.iter().map(|r| r.record.applicant).collect();
    pipeline::predict_and_log(&champion, &applicants, services.predictions.as_ref(), None)
        .await
        .unwrap();
    // ...while the labelled rows that come back look like the training data.
    let same = generated_rows(GeneratedKind::Reference, config(99, 1200, 0));
    let summary = load_and_retrain(
        &services,
        &settings,
        "more-reference-like",
        &same,
        RetrainMode::IfDrift,
    )
    .await;
    assert!(!summary.drift.as_ref().unwrap().drift);
    let served = summary.served_input_drift.as_ref().unwrap();
    assert_eq!(served.served, 400);
    assert!(served.drift);
    assert!(
        served.drifted_features.iter().any(|f| f == "telephone"),
        "{served:?}"
    );
    assert!(
        matches!(
            summary.outcome,
            RetrainOutcome::Promoted | RetrainOutcome::Rejected
        ),
        "{:?}: {}",
        summary.outcome,
        summary.reason
    );
    assert_eq!(summary.challenger_version, Some(2));
    assert!(
        summary
            .reason
            .contains("predictions served since the champion's promotion drifted"),
        "{}",
        summary.reason
    );
}

#[tokio::test]
async fn a_second_training_while_one_runs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (services, settings) = trained_services(dir.path()).await;
    let shifted = generated_rows(GeneratedKind::Shifted, config(7, 0, 1200));
    services
        .records
        .load_records("shifted", RecordRole::New, &shifted)
        .await
        .unwrap();
    let held = services
        .records
        .try_lock_training("someone else")
        .await
        .unwrap()
        .unwrap();
    assert!(services
        .records
        .try_lock_training("a third")
        .await
        .unwrap()
        .is_none());
    let err = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::Busy), "{err}");
    held.release().await.unwrap();
    let summary = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    assert_eq!(summary.challenger_version, Some(2));
}

#[tokio::test]
async fn a_failed_pointer_write_leaves_the_champion_and_the_rows_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (services, settings) = trained_services(dir.path()).await;
    let shifted = generated_rows(GeneratedKind::Shifted, config(7, 0, 1200));
    services
        .records
        .load_records("shifted", RecordRole::New, &shifted)
        .await
        .unwrap();
    // A real filesystem fault: the temporary file of the pointer write cannot be created.
    std::fs::create_dir_all(dir.path().join("artifacts").join("champion.partial")).unwrap();
    let settings = PipelineSettings {
        // Promote whatever the comparison says, so the pointer write is reached.
        promotion: fraudrisk::pipeline::PromotionGate {
            margins: fraudrisk::pipeline::GateMargins {
                roc_auc: 1.0,
                expected_cost: f64::MAX,
                brier: 1.0,
            },
            ..settings.promotion
        },
        ..settings
    };
    let err = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::Artifacts(_)), "{err}");
    let pointer = pipeline::read_champion_pointer(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pointer.version, 1, "the champion stays");
    let alias = services
        .tracker
        .alias_version(&settings.model_name, CHAMPION_ALIAS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alias.version, 1, "the alias was moved back");
    assert_eq!(
        services.records.record_counts().await.unwrap().pending,
        1200,
        "the new rows wait for the next retrain"
    );
    // The lock was released: the next retrain runs once the fault is gone.
    std::fs::remove_dir(dir.path().join("artifacts").join("champion.partial")).unwrap();
    let summary = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    assert_eq!(summary.outcome, RetrainOutcome::Promoted);
    assert_eq!(summary.champion_version, 3);
}

#[tokio::test]
async fn a_training_lock_taken_over_fails_the_fencing_check() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    let lock = services
        .records
        .try_lock_training("slow training")
        .await
        .unwrap()
        .unwrap();
    lock.confirm_held().await.unwrap();
    // Another process takes the lock over as stale (as it does after two hours).
    let other = rusqlite::Connection::open(dir.path().join("fraudrisk.sqlite3")).unwrap();
    other
        .execute(
            "UPDATE training_lock SET holder = 'newcomer', acquired_at = '2999-01-01T00:00:00+00:00'",
            [],
        )
        .unwrap();
    let err = lock.confirm_held().await.unwrap_err();
    assert!(err.to_string().contains("not promoting"), "{err}");
    // Releasing our stale handle leaves the newcomer's lock alone.
    lock.release().await.unwrap();
    assert!(services
        .records
        .try_lock_training("third")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn initialtrain_refuses_to_replace_a_champion_retrain_promoted_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (services, mut settings) = trained_services(dir.path()).await;
    // Any challenger is promoted, so the test does not depend on the comparison.
    settings.promotion.margins = fraudrisk::pipeline::GateMargins {
        roc_auc: 1.0,
        expected_cost: f64::MAX,
        brier: 1.0,
    };
    let shifted = generated_rows(GeneratedKind::Shifted, config(5, 0, 400));
    services
        .records
        .load_records("shifted", RecordRole::New, &shifted)
        .await
        .unwrap();
    let retrained = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    assert_eq!(retrained.outcome, RetrainOutcome::Promoted);
    let pointer = pipeline::read_champion_pointer(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pointer.version, pointer.promoted_by.as_deref()),
        (2, Some(pipeline::PROMOTED_BY_RETRAIN))
    );

    let refused = services.initial_train(&settings).await.unwrap_err();
    assert!(
        matches!(refused, PipelineError::ChampionFromRetrain { version: 2 }),
        "{refused}"
    );
    assert!(refused.hint().unwrap().contains("--force"));
    let unchanged = pipeline::read_champion_pointer(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.version, 2, "the refused training changed nothing");

    let forced = services
        .initial_train_with_force(&settings, true)
        .await
        .unwrap();
    assert_eq!(forced.version, 3);
    // A champion initialtrain made may be replaced by initialtrain again.
    assert_eq!(services.initial_train(&settings).await.unwrap().version, 4);
}

#[tokio::test]
async fn a_training_window_bounds_the_rows_a_retrain_trains_on() {
    let dir = tempfile::tempdir().unwrap();
    let (services, mut settings) = trained_services(dir.path()).await;
    settings.training_window.rows = Some(2000);
    let shifted = generated_rows(GeneratedKind::Shifted, config(9, 0, 1500));
    let summary = load_and_retrain(
        &services,
        &settings,
        "shifted",
        &shifted,
        RetrainMode::Always,
    )
    .await;
    let window = summary
        .training_window
        .as_ref()
        .expect("a challenger was trained");
    // 1,500 waiting rows: 30 % held out, so 1,050 train and leave room for 950 absorbed ones.
    assert_eq!(window.absorbed_rows, 3000);
    assert_eq!(window.absorbed_used, 950);
    assert_eq!(window.left_out, 2050);
    let version = summary.challenger_version.unwrap();
    let bytes = services
        .artifacts
        .get(&format!("models/v{version}/model.json"))
        .await
        .unwrap()
        .unwrap();
    let artifact = fraudrisk::model::ModelArtifact::from_json_bytes(&bytes).unwrap();
    assert_eq!(artifact.provenance.training_rows, 2000);
    let card = std::fs::read_to_string(
        dir.path()
            .join(format!("artifacts/models/v{version}/model_card.md")),
    )
    .unwrap();
    assert!(
        card.contains("Training window: the most recent 2000 rows (2050 older rows left out)."),
        "{card}"
    );
}
