//! Retrain's offline replay on the embedded defaults (SQLite and folders): served traffic
//! whose outcomes came back is re-scored by challenger and champion, without the predictions
//! the challenger was trained on, and its criteria join the promotion gate.

use std::collections::HashSet;

use chrono::Utc;
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SourceRow};
use fraudrisk::model::{evaluate, stratified_split, ModelArtifact};
use fraudrisk::outcomes::Outcome;
use fraudrisk::pipeline::promotion::GateData;
use fraudrisk::pipeline::{self, PipelineSettings, RetrainMode};
use fraudrisk::ports::RecordRole;
use fraudrisk::schema::{Applicant, LabeledRecord};
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

fn key(applicant: &Applicant) -> [u64; 20] {
    applicant.0.map(f64::to_bits)
}

/// Serves the rows and reports every true outcome: each outcome becomes a waiting row.
async fn serve_with_outcomes(services: &Services, served: &[SourceRow]) {
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    let applicants: Vec<Applicant> = served.iter().map(|r| r.record.applicant).collect();
    let answers = pipeline::predict_and_log(
        &champion,
        &applicants,
        services.predictions.as_ref(),
        Some("replay-test"),
    )
    .await
    .unwrap();
    let outcomes: Vec<Outcome> = answers
        .iter()
        .zip(served)
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

async fn model_of_version(services: &Services, version: u32) -> fraudrisk::model::Model {
    let bytes = services
        .artifacts
        .get(&format!("models/v{version}/model.json"))
        .await
        .unwrap()
        .unwrap();
    ModelArtifact::from_json_bytes(&bytes)
        .unwrap()
        .model()
        .unwrap()
}

#[tokio::test]
async fn served_outcomes_the_challenger_did_not_train_on_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    let reference = rows(GeneratedKind::Reference, 7, 3000);
    services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    let mut settings = PipelineSettings::default();
    settings.promotion.replay_min_outcomes = 100;
    services.initial_train(&settings).await.unwrap();

    let served = rows(GeneratedKind::Shifted, 21, 800);
    serve_with_outcomes(&services, &served).await;
    // What retrain will split: the waiting rows (the outcomes' labelled rows) in store order.
    let pending: Vec<LabeledRecord> = services
        .records
        .pending_records()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.record)
        .collect();
    assert_eq!(pending.len(), 800);
    let (recent_train, recent_holdout) = stratified_split(
        &pending,
        settings.recent_holdout_fraction,
        settings.training.seed,
    );

    let summary = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    let comparison = summary.comparison.as_ref().expect("compared");
    let replay = &comparison.replay;
    assert_eq!(replay.served_outcomes, 800);
    let replayed = replay.evaluation.as_ref().expect("the replay counts");
    assert_eq!(replay.skipped, None);
    assert_eq!(replay.excluded + replayed.rows, 800);

    // Left out: exactly the served rows whose inputs the challenger was trained on.
    let trained: HashSet<[u64; 20]> = reference
        .iter()
        .map(|r| r.record)
        .chain(recent_train.iter().copied())
        .map(|r| key(&r.applicant))
        .collect();
    let expected: Vec<LabeledRecord> = served
        .iter()
        .map(|r| r.record)
        .filter(|r| !trained.contains(&key(&r.applicant)))
        .collect();
    assert_eq!(replayed.rows, expected.len());
    assert!(
        replayed.rows >= recent_holdout.len() / 2,
        "{}",
        replayed.rows
    );

    // The figures are both models scoring those rows directly.
    let challenger = model_of_version(&services, 2).await;
    let champion = model_of_version(&services, 1).await;
    let costs = &settings.training.costs;
    for (got, model) in [
        (&replayed.challenger, &challenger),
        (&replayed.champion, &champion),
    ] {
        let want = evaluate(model, &expected, costs).unwrap();
        assert!((got.roc_auc - want.roc_auc).abs() < 1e-12);
        assert!((got.brier - want.brier).abs() < 1e-12);
        let (a, b) = (got.expected_cost.unwrap(), want.expected_cost.unwrap());
        assert!((a - b).abs() < 1e-12, "{a} {b}");
    }

    // Six criteria, the last three on served outcomes; promoted exactly when all passed.
    assert_eq!(comparison.criteria.len(), 6);
    assert!(comparison.criteria[3..]
        .iter()
        .all(|c| c.data == GateData::ServedOutcomes));
    assert_eq!(
        comparison.criteria[3].challenger,
        replayed.challenger.roc_auc
    );
    let all_passed = comparison.criteria.iter().all(|c| c.passed);
    assert_eq!(
        summary.champion_version == 2,
        all_passed,
        "{}",
        summary.reason
    );
    assert!(summary.reason.contains("and "), "{}", summary.reason);
    assert!(
        summary.reason.contains(" served outcomes"),
        "{}",
        summary.reason
    );

    // The retrain run records the gate for MLflow's UI (the local tracker's folders).
    let run_id = summary.run_id.clone().unwrap();
    let gate = dir
        .path()
        .join("tracking/runs")
        .join(&run_id)
        .join("artifacts/promotion_gate.json");
    let gate: serde_json::Value = serde_json::from_slice(&std::fs::read(&gate).unwrap()).unwrap();
    assert_eq!(gate["criteria"].as_array().unwrap().len(), 6);
    assert_eq!(gate["replay"]["served_outcomes"], 800);
}

#[tokio::test]
async fn too_few_served_outcomes_leave_the_replay_out_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    services
        .records
        .load_records(
            "reference",
            RecordRole::Reference,
            &rows(GeneratedKind::Reference, 7, 3000),
        )
        .await
        .unwrap();
    let settings = PipelineSettings::default();
    services.initial_train(&settings).await.unwrap();
    serve_with_outcomes(&services, &rows(GeneratedKind::Shifted, 22, 300)).await;

    let summary = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    let comparison = summary.comparison.as_ref().expect("compared");
    assert_eq!(comparison.criteria.len(), 3);
    assert!(comparison
        .criteria
        .iter()
        .all(|c| c.data == GateData::HeldOutNewRows));
    let replay = &comparison.replay;
    assert_eq!(replay.served_outcomes, 300);
    assert!(replay.evaluation.is_none());
    let why = replay.skipped.as_deref().unwrap();
    assert!(why.ends_with("fewer than 200"), "{why}");
    assert!(
        summary.reason.contains("(no replay: "),
        "{}",
        summary.reason
    );
}
