//! The whole life cycle on the real services (PostgreSQL, S3, MLflow) through the pipeline
//! functions the Lambdas call, verified from outside with MLflow's Python client and an S3
//! listing; then the faults: MLflow down, an S3 write failing, a dropped database
//! connection, two retrains at once. Nothing may be lost, nothing half promoted.

mod it_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fraudrisk::adapters::mlflow::{MlflowAuth, MlflowTracker};
use fraudrisk::adapters::s3::s3_client;
use fraudrisk::config::{Config, MlflowCredentials};
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SourceRow};
use fraudrisk::pipeline::{
    load_champion, predict_and_log, read_champion_pointer, retrain, PipelineError,
    PipelineSettings, RetrainMode, RetrainOutcome, CHAMPION_ALIAS, CHAMPION_POINTER_KEY,
    DRIFT_TABLE_PATH, NOTE_TAG, NO_PREDICTIONS_TAG,
};
use fraudrisk::ports::{RecordRole, Tracker};
use fraudrisk::schema::Applicant;
use fraudrisk::services::Services;
use it_common::TestDatabase;

fn rows(kind: GeneratedKind, reference: usize, shifted: usize) -> Vec<SourceRow> {
    generated_rows(
        kind,
        GeneratorConfig {
            seed: 42,
            reference_rows: reference,
            shifted_rows: shifted,
        },
    )
}

async fn services(config: &Config, state: &Path) -> Services {
    Services::production(config, state).await.expect("services")
}

/// A tracker like the configured one but pointed at `uri`.
async fn tracker_at(config: &Config, uri: String) -> Arc<dyn Tracker> {
    let mut mlflow = config.mlflow.clone().expect("MLflow configured");
    mlflow.tracking_uri = uri;
    let auth = match &mlflow.credentials {
        MlflowCredentials::Basic { username, password } => MlflowAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        _ => MlflowAuth::None,
    };
    Arc::new(
        MlflowTracker::new(&mlflow, auth, Some(s3_client(&config.aws).await))
            .unwrap()
            .with_backoff(Duration::from_millis(50)),
    )
}

/// Reference rows loaded and a first champion trained.
async fn trained(
    services: &Services,
    settings: &PipelineSettings,
    reference: usize,
) -> fraudrisk::pipeline::TrainingSummary {
    services
        .records
        .load_records(
            "generated-reference",
            RecordRole::Reference,
            &rows(GeneratedKind::Reference, reference, 0),
        )
        .await
        .unwrap();
    services.initial_train(settings).await.unwrap()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn load_shifted(services: &Services, count: usize) {
    let summary = services
        .records
        .load_records(
            "generated-shifted",
            RecordRole::New,
            &rows(GeneratedKind::Shifted, 0, count),
        )
        .await
        .unwrap();
    assert_eq!(summary.inserted, count);
}

fn applicants(count: usize) -> Vec<Applicant> {
    rows(GeneratedKind::Shifted, 0, count)
        .iter()
        .map(|r| r.record.applicant)
        .collect()
}

#[tokio::test]
#[ignore = "needs services"]
async fn the_life_cycle_on_the_real_services() {
    it_common::start();
    let database = TestDatabase::create("lifecycle").await;
    let prefix = it_common::unique("it/lifecycle");
    let config = it_common::isolated_config(&database, &prefix);
    let state = tempfile::tempdir().unwrap();
    let services = services(&config, state.path()).await;
    let settings = it_common::pipeline_settings("lifecycle", false);

    // load-data (twice: the second load adds nothing), initialtrain.
    let initial = trained(&services, &settings, 10_000).await;
    let again = services
        .records
        .load_records(
            "generated-reference",
            RecordRole::Reference,
            &rows(GeneratedKind::Reference, 10_000, 0),
        )
        .await
        .unwrap();
    assert_eq!((again.inserted, again.already_present), (0, 10_000));
    assert_eq!(initial.version, 1);
    assert!(initial.promoted);

    // A dropped database connection between requests is survived.
    assert!(it_common::terminate_connections(&database.name).await >= 1);

    // predict: from the artifact store only; logged in PostgreSQL.
    let champion = load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .expect("a champion");
    assert_eq!(champion.pointer.version, 1);
    let served = predict_and_log(
        &champion,
        &applicants(25),
        services.predictions.as_ref(),
        Some("merlin"),
    )
    .await
    .unwrap();
    assert_eq!(served.len(), 25);
    assert!(served.iter().all(|s| s.model_version == 1));
    assert_eq!(
        services
            .predictions
            .prediction_stats(None)
            .await
            .unwrap()
            .count,
        25
    );

    // New labelled rows, then retrain.
    load_shifted(&services, 2_000).await;
    let summary = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    assert_eq!(summary.new_rows, 2_000);
    assert_eq!(summary.challenger_version, Some(2));
    assert!(
        summary.drift.as_ref().is_some_and(|d| d.drift),
        "the shifted rows drift"
    );
    let counts = services.records.record_counts().await.unwrap();
    assert_eq!((counts.absorbed, counts.pending), (12_000, 0));

    let pointer = read_champion_pointer(services.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pointer.version, summary.champion_version);
    let expected_champion = if summary.outcome == RetrainOutcome::Promoted {
        2
    } else {
        1
    };
    assert_eq!(pointer.version, expected_champion);

    // From outside: MLflow's own client sees the alias, the runs, metrics and artifacts.
    let alias = it_common::mlflow_check(&["champion", "--model", &settings.model_name]);
    assert_eq!(alias["version"], pointer.version.to_string());
    assert_eq!(alias["run_id"], pointer.run_id.as_str());
    assert_eq!(alias["aliases"][0], CHAMPION_ALIAS);

    let first = it_common::mlflow_check(&["run", "--run-id", &initial.run_id]);
    assert_eq!(first["status"], "FINISHED");
    assert_eq!(first["params"]["mode"], "initialtrain");
    assert!(first["metrics"]["holdout_roc_auc"].as_f64().unwrap() > 0.6);
    assert!(first["tags"][NOTE_TAG]
        .as_str()
        .is_some_and(|note| note.starts_with("Trained a logistic regression")));
    assert_eq!(
        first["tags"]["data_fingerprint"],
        initial.data_fingerprint.as_str()
    );
    assert!(first["tags"]["code_version"].is_string());
    let artifacts = first["artifacts"].to_string();
    for file in [
        "classification_report.txt",
        "model_card.md",
        "model_card.html",
        "model_card.json",
    ] {
        assert!(artifacts.contains(file), "{file} not in {artifacts}");
    }
    let run_id = summary.run_id.clone().unwrap();
    let second = it_common::mlflow_check(&["run", "--run-id", &run_id]);
    assert_eq!(second["status"], "FINISHED");
    assert!(second["metrics"]["drift_detected"].as_f64() == Some(1.0));
    assert!(second["metrics"]["predictions_since_promotion"].as_f64() == Some(25.0));
    assert!(second["tags"][NO_PREDICTIONS_TAG].is_null());
    assert!(second["metrics"]["champion_holdout_roc_auc"].is_number());
    for file in [
        "drift_report.json",
        "drift_report.html",
        DRIFT_TABLE_PATH,
        "model_card.md",
    ] {
        assert!(second["artifacts"].to_string().contains(file), "{file}");
    }

    // MLflow 3's view: a model-training experiment, one READY logged model per version,
    // registered from it, and holdout_roc_auc in every training run (one chart).
    let experiment = it_common::mlflow_check(&["experiment", "--name", &settings.experiment]);
    assert_eq!(
        experiment["tags"]["mlflow.experimentKind"],
        "custom_model_development"
    );
    for run in experiment["runs"].as_array().unwrap() {
        assert!(run["metrics"]["holdout_roc_auc"].is_number(), "{run}");
        assert!(run["tags"][NOTE_TAG].is_string(), "{run}");
    }
    let models = it_common::mlflow_check(&["logged-models", "--experiment", &settings.experiment]);
    let models = models["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{models:?}");
    for (model, run) in models.iter().zip([&initial.run_id, &run_id]) {
        assert_eq!(model["status"], "READY");
        assert_eq!(model["source_run_id"], run.as_str());
        assert!(model["metrics"]["holdout_roc_auc"].is_number(), "{model}");
        assert_eq!(
            strings(&model["artifacts"]),
            ["MLmodel", "code", "model.json"],
            "{model}"
        );
    }
    assert_eq!(
        alias["source"],
        format!(
            "models:/{}",
            models[pointer.version as usize - 1]["model_id"]
                .as_str()
                .unwrap()
        )
    );
    let bucket = it_common::env("FRAUDRISK_BUCKET");
    let run_prefix = second["artifact_uri"]
        .as_str()
        .unwrap()
        .strip_prefix(&format!("s3://{bucket}/"))
        .unwrap()
        .to_string();
    assert!(it_common::s3_keys(&run_prefix)
        .iter()
        .any(|k| k.ends_with("drift_report.json")));
    // The model's files are in its logged model's own location.
    let model_prefix = models[1]["artifact_location"]
        .as_str()
        .unwrap()
        .strip_prefix(&format!("s3://{bucket}/"))
        .unwrap()
        .to_string();
    assert!(it_common::s3_keys(&model_prefix)
        .iter()
        .any(|k| k.ends_with("/model.json")));

    // The serving copies and the pointer, listed with boto3.
    let keys = it_common::s3_keys(&format!("{prefix}/"));
    for key in [
        CHAMPION_POINTER_KEY,
        "models/v1/model.json",
        "models/v1/MLmodel",
        "models/v1/code/fraudrisk_pyfunc.py",
        "models/v2/model.json",
        "models/v2/code/fraudrisk_pyfunc.py",
        "models/v2/drift_report.json",
        "models/v2/drift_report.html",
    ] {
        assert!(
            keys.contains(&format!("{prefix}/{key}")),
            "{key} in {keys:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs services"]
async fn predictions_go_on_while_mlflow_is_down_and_retrain_fails_without_harm() {
    it_common::start();
    let database = TestDatabase::create("mlflow_down").await;
    let config = it_common::isolated_config(&database, &it_common::unique("it/mlflow-down"));
    let state = tempfile::tempdir().unwrap();
    let healthy = services(&config, state.path()).await;
    let settings = it_common::pipeline_settings("mlflow-down", true);
    trained(&healthy, &settings, 2_000).await;
    load_shifted(&healthy, 600).await;
    let pointer_before = healthy.artifacts.get(CHAMPION_POINTER_KEY).await.unwrap();

    // The same services with the tracking server gone: a refused connection on loopback.
    let mut down = healthy.clone();
    down.tracker = tracker_at(
        &config,
        format!("http://127.0.0.1:{}", it_common::closed_port()),
    )
    .await;

    let champion = load_champion(down.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    let served = predict_and_log(&champion, &applicants(10), down.predictions.as_ref(), None)
        .await
        .unwrap();
    assert_eq!(served.len(), 10, "serving never touches MLflow");

    let error = down
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap_err();
    let PipelineError::Tracker(tracker_error) = &error else {
        panic!("expected a tracking error, got {error}");
    };
    assert_eq!(tracker_error.call, "experiments/get-by-name");
    let text = error.to_string();
    assert!(text.contains("cannot reach the MLflow server"), "{text}");

    // Nothing changed: same pointer bytes, same alias, rows still waiting, lock free.
    it_common::assert_champion_unchanged(&healthy, &settings.model_name, &pointer_before, 1, 600)
        .await;

    // MLflow back: the same retrain goes through.
    let summary = healthy
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    assert_eq!(summary.new_rows, 600);
}

#[tokio::test]
#[ignore = "needs services"]
async fn a_failing_s3_write_leaves_no_half_promotion() {
    it_common::start();
    let database = TestDatabase::create("s3_fault").await;
    let config = it_common::isolated_config(&database, &it_common::unique("it/s3-fault"));
    let state = tempfile::tempdir().unwrap();
    let services = services(&config, state.path()).await;
    let mut settings = it_common::pipeline_settings("s3-fault", true);
    trained(&services, &settings, 2_000).await;
    load_shifted(&services, 600).await;
    let pointer_before = services.artifacts.get(CHAMPION_POINTER_KEY).await.unwrap();

    // The retrain's run lands in an experiment whose artifact root is a bucket that does not
    // exist: the run's first artifact write to S3 fails for real (NoSuchBucket).
    let missing_bucket = it_common::unique("fraudrisk-missing");
    let MlflowCredentials::Basic { username, password } =
        config.mlflow.clone().unwrap().credentials
    else {
        panic!("basic credentials expected");
    };
    let mlflow = MlflowTracker::new(
        config.mlflow.as_ref().unwrap(),
        MlflowAuth::Basic { username, password },
        Some(s3_client(&config.aws).await),
    )
    .unwrap();
    settings.experiment = it_common::unique("it-s3-fault-broken");
    mlflow
        .ensure_experiment(
            &settings.experiment,
            Some(&format!("s3://{missing_bucket}/artifacts")),
        )
        .await
        .unwrap();
    let error = retrain(
        services.records.as_ref(),
        services.predictions.as_ref(),
        services.artifacts.as_ref(),
        &mlflow,
        &settings,
        RetrainMode::Always,
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("NoSuchBucket"), "{text}");
    assert!(text.contains(&missing_bucket), "{text}");

    assert_eq!(
        services.artifacts.get(CHAMPION_POINTER_KEY).await.unwrap(),
        pointer_before,
        "the pointer is untouched"
    );
    let versions = services
        .tracker
        .list_versions(&settings.model_name)
        .await
        .unwrap();
    assert_eq!(versions.len(), 1, "no version was registered");
    assert_eq!(versions[0].aliases, [CHAMPION_ALIAS]);
    assert_eq!(services.records.record_counts().await.unwrap().pending, 600);
    assert!(services
        .artifacts
        .get("models/v2/model.json")
        .await
        .unwrap()
        .is_none());

    // An artifact store whose bucket is missing stops initialtrain before anything is logged.
    let mut broken = config.clone();
    broken.artifacts.as_mut().unwrap().bucket = missing_bucket.clone();
    let broken = Services::production(&broken, state.path()).await.unwrap();
    let fresh = it_common::pipeline_settings("s3-fault-fresh", true);
    let error = broken.initial_train(&fresh).await.unwrap_err();
    let PipelineError::Artifacts(artifact_error) = &error else {
        panic!("expected an artifact store error, got {error}");
    };
    assert_eq!(artifact_error.operation, "get");
    assert!(artifact_error.key.contains(CHAMPION_POINTER_KEY));
    assert!(services
        .tracker
        .list_versions(&fresh.model_name)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
#[ignore = "needs services"]
async fn two_retrains_at_once_promote_at_most_once() {
    it_common::start();
    let database = TestDatabase::create("concurrent").await;
    let config = it_common::isolated_config(&database, &it_common::unique("it/concurrent"));
    let state = tempfile::tempdir().unwrap();
    // Two containers: separate connection pools and clients over the same services.
    let a = services(&config, state.path()).await;
    let b = services(&config, state.path()).await;
    let settings = it_common::pipeline_settings("concurrent", true);
    trained(&a, &settings, 2_000).await;
    load_shifted(&a, 600).await;

    let run = |s: Services, settings: PipelineSettings| async move {
        s.retrain(&settings, RetrainMode::Always).await
    };
    let (ra, rb) = tokio::join!(run(a.clone(), settings.clone()), run(b, settings.clone()));
    let (done, busy): (Vec<_>, Vec<_>) = [ra, rb].into_iter().partition(Result::is_ok);
    assert_eq!(done.len(), 1, "exactly one retrain ran");
    assert!(matches!(busy[0], Err(PipelineError::Busy)), "{:?}", busy[0]);
    let summary = done.into_iter().next().unwrap().unwrap();

    let versions = a.tracker.list_versions(&settings.model_name).await.unwrap();
    assert_eq!(versions.len(), 2, "one challenger registered");
    let pointer = read_champion_pointer(a.artifacts.as_ref())
        .await
        .unwrap()
        .unwrap();
    let alias = a
        .tracker
        .alias_version(&settings.model_name, CHAMPION_ALIAS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pointer.version, alias.version, "pointer and alias agree");
    assert_eq!(pointer.version, summary.champion_version);
    assert_eq!(a.records.record_counts().await.unwrap().pending, 0);
}

#[tokio::test]
#[ignore = "needs services"]
async fn the_configuration_picks_each_ports_adapter() {
    it_common::start();
    // The services' settings as `Services::from_env` would read them from the environment or
    // credentials.env (here from the services env file, so other tests stay local).
    let state = tempfile::tempdir().unwrap();
    let services = Services::production(&it_common::env_config(), state.path())
        .await
        .unwrap();
    let described = format!("{:?}", services.description);
    assert!(described.contains("PostgreSQL"), "{described}");
    assert!(described.contains("S3 s3://"), "{described}");
    assert!(described.contains("MLflow http://"), "{described}");
    assert!(
        !described.contains("fraudrisk-test-password"),
        "{described}"
    );

    // One port at a time: only the bucket configured, the rest local.
    let mut only_s3 = Config {
        aws: it_common::env_config().aws,
        ..Config::default()
    };
    only_s3.artifacts = it_common::env_config().artifacts;
    let services = Services::production(&only_s3, state.path()).await.unwrap();
    let described = format!("{:?}", services.description);
    assert!(described.contains("SQLite"), "{described}");
    assert!(described.contains("S3 s3://"), "{described}");
    assert!(
        described.contains("tracking and registry\", \"folder"),
        "{described}"
    );

    let local = Services::production(&Config::default(), state.path())
        .await
        .unwrap();
    let described = format!("{:?}", local.description);
    assert!(described.contains("SQLite"), "{described}");
    assert!(!described.contains("S3"), "{described}");
}
