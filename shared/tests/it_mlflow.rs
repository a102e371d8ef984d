//! The MLflow tracker against the real `mlflow server` (basic auth, PostgreSQL backend store,
//! artifacts in moto's S3), checked from outside with MLflow's own Python client.

mod it_common;

use std::time::{Duration, Instant};

use fraudrisk::adapters::mlflow::{MlflowAuth, MlflowTracker};
use fraudrisk::adapters::s3::s3_client;
use fraudrisk::config::{MlflowConfig, MlflowCredentials, Redacted};
use fraudrisk::ports::{ModelSpec, RunData, RunStatus, Tracker};

async fn new_tracker() -> MlflowTracker {
    let config = it_common::env_config();
    let mlflow = config.mlflow.clone().expect("MLFLOW_TRACKING_URI");
    let auth = match &mlflow.credentials {
        MlflowCredentials::Basic { username, password } => MlflowAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        _ => panic!("the services env sets MLFLOW_TRACKING_USERNAME and _PASSWORD"),
    };
    MlflowTracker::new(&mlflow, auth, Some(s3_client(&config.aws).await)).unwrap()
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

#[tokio::test]
#[ignore = "needs services"]
async fn runs_with_large_batches_and_s3_artifacts_reach_mlflow() {
    it_common::start();
    let tracker = new_tracker().await;
    let experiment = it_common::unique("it-runs");
    let run = tracker.start_run(&experiment, "big-batch").await.unwrap();
    assert!(
        run.artifact_uri.starts_with("s3://"),
        "{}",
        run.artifact_uri
    );

    // Over every per-request limit: 150 params (100), 1,200 metrics (1,000), 120 tags (100).
    let data = RunData {
        params: (0..150)
            .map(|i| (format!("p{i:03}"), format!("value {i}")))
            .collect(),
        metrics: (0..1200)
            .map(|i| (format!("m{i:04}"), f64::from(i) / 8.0))
            .chain([("not_a_number".to_string(), f64::NAN)])
            .collect(),
        tags: (0..120)
            .map(|i| (format!("t{i:03}"), i.to_string()))
            .collect(),
    };
    tracker.log_batch(&run, &data).await.unwrap();
    tracker
        .log_artifact(&run, "model/model.json", b"{\"weights\":[]}".to_vec())
        .await
        .unwrap();
    tracker
        .log_artifact(&run, "classification_report.txt", b"report".to_vec())
        .await
        .unwrap();
    tracker.end_run(&run, RunStatus::Finished).await.unwrap();

    let seen = it_common::mlflow_check(&["run", "--run-id", &run.run_id]);
    assert_eq!(seen["status"], "FINISHED");
    assert_eq!(seen["run_name"], "big-batch");
    assert_eq!(seen["params"].as_object().unwrap().len(), 150);
    assert_eq!(seen["params"]["p149"], "value 149");
    assert_eq!(seen["metrics"].as_object().unwrap().len(), 1201);
    assert_eq!(seen["metrics"]["m1199"], 1199.0 / 8.0);
    assert!(
        seen["metrics"]["not_a_number"].is_null(),
        "NaN arrives as NaN"
    );
    assert_eq!(seen["tags"]["t119"], "119");
    assert_eq!(
        strings(&seen["artifacts"]),
        ["classification_report.txt", "model/model.json"]
    );
    // The bytes went straight to S3, under the run's artifact URI.
    let prefix = run
        .artifact_uri
        .strip_prefix(&format!("s3://{}/", it_common::env("FRAUDRISK_BUCKET")))
        .unwrap()
        .to_string();
    assert_eq!(
        it_common::s3_keys(&prefix),
        [
            format!("{prefix}/classification_report.txt"),
            format!("{prefix}/model/model.json")
        ]
    );

    // Get-or-create: the same experiment again, also from a fresh client without the cache.
    let again = new_tracker()
        .await
        .start_run(&experiment, "second")
        .await
        .unwrap();
    assert_eq!(again.experiment_id, run.experiment_id);
    tracker.end_run(&again, RunStatus::Failed).await.unwrap();
    let seen = it_common::mlflow_check(&["run", "--run-id", &again.run_id]);
    assert_eq!(seen["status"], "FAILED");
}

#[tokio::test]
#[ignore = "needs services"]
async fn artifacts_go_through_the_proxy_for_mlflow_artifacts_uris() {
    it_common::start();
    let tracker = new_tracker().await;
    let experiment = it_common::unique("it-proxy");
    let location = format!("mlflow-artifacts:/{experiment}");
    tracker
        .ensure_experiment(&experiment, Some(&location))
        .await
        .unwrap();
    let run = tracker.start_run(&experiment, "proxied").await.unwrap();
    assert!(
        run.artifact_uri.starts_with("mlflow-artifacts:"),
        "{}",
        run.artifact_uri
    );
    tracker
        .log_artifact(&run, "model/MLmodel", b"flavors: {}\n".to_vec())
        .await
        .unwrap();
    tracker
        .log_artifact(&run, "drift_report.json", b"{}".to_vec())
        .await
        .unwrap();
    tracker.end_run(&run, RunStatus::Finished).await.unwrap();
    let seen = it_common::mlflow_check(&["run", "--run-id", &run.run_id]);
    assert_eq!(
        strings(&seen["artifacts"]),
        ["drift_report.json", "model/MLmodel"]
    );
    // The proxy stores below the server's artifacts destination, s3://<bucket>/mlflow.
    let keys = it_common::s3_keys(&format!("mlflow/{experiment}/"));
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.contains(&run.run_id)), "{keys:?}");
}

#[tokio::test]
#[ignore = "needs services"]
async fn registry_versions_and_the_champion_alias() {
    it_common::start();
    let tracker = new_tracker().await;
    let name = it_common::unique("it-registry");
    assert_eq!(
        tracker.alias_version(&name, "champion").await.unwrap(),
        None
    );
    assert!(tracker.list_versions(&name).await.unwrap().is_empty());

    let run = tracker.start_run(&name, "train").await.unwrap();
    let spec = ModelSpec {
        name: name.clone(),
        model_type: "logistic_regression".into(),
        ..ModelSpec::default()
    };
    let model = tracker.create_logged_model(&run, &spec).await.unwrap();
    let model_id = model.model_id.clone().expect("MLflow 3 has logged models");
    tracker
        .log_model_artifact(&run, &model, "model.json", b"{}".to_vec())
        .await
        .unwrap();
    tracker.finalize_logged_model(&model, true).await.unwrap();
    let v1 = tracker
        .create_model_version(&name, &run, &model)
        .await
        .unwrap();
    // A second client (another container) registers the next version: the registered model
    // exists already, which is fine.
    let v2 = new_tracker()
        .await
        .create_model_version(&name, &run, &model)
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.source, format!("models:/{model_id}"));
    assert_eq!(v1.run_id, run.run_id);

    assert_eq!(
        tracker.alias_version(&name, "champion").await.unwrap(),
        None
    );
    tracker.set_alias(&name, "champion", 1).await.unwrap();
    tracker.set_alias(&name, "champion", 2).await.unwrap();
    let champion = tracker
        .alias_version(&name, "champion")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(champion.version, 2);
    assert_eq!(champion.aliases, ["champion"]);
    let versions = tracker.list_versions(&name).await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.aliases.clone()))
            .collect::<Vec<_>>(),
        [(1, vec![]), (2, vec!["champion".to_string()])]
    );
    tracker.end_run(&run, RunStatus::Finished).await.unwrap();

    let seen = it_common::mlflow_check(&["champion", "--model", &name]);
    assert_eq!(seen["version"], "2");
    assert_eq!(seen["run_id"], run.run_id.as_str());
    assert_eq!(seen["source"], v1.source.as_str());

    let error = tracker.set_alias(&name, "champion", 99).await.unwrap_err();
    assert_eq!(error.call, "registered-models/alias");
    assert!(error.message.starts_with("HTTP 4"), "{error}");
}

#[tokio::test]
#[ignore = "needs services"]
async fn wrong_credentials_and_a_dead_server_give_clear_errors() {
    it_common::start();
    let mut mlflow: MlflowConfig = it_common::env_config().mlflow.unwrap();
    let wrong = MlflowAuth::Basic {
        username: it_common::env("MLFLOW_TRACKING_USERNAME"),
        password: Redacted::new("not-the-password"),
    };
    let tracker = MlflowTracker::new(&mlflow, wrong, None).unwrap();
    let error = tracker
        .start_run(&it_common::unique("it-auth"), "x")
        .await
        .unwrap_err();
    assert_eq!(error.call, "experiments/get-by-name");
    assert!(error.message.contains("HTTP 401"), "{error}");
    assert!(
        error.message.contains("MLFLOW_TRACKING_USERNAME"),
        "{error}"
    );

    // A closed port on loopback: every connection is refused.
    mlflow.tracking_uri = format!("http://127.0.0.1:{}", it_common::closed_port());
    mlflow.max_tries = 3;
    let tracker = MlflowTracker::new(&mlflow, MlflowAuth::None, None)
        .unwrap()
        .with_backoff(Duration::from_millis(50));
    let started = Instant::now();
    let error = tracker.start_run("any", "x").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.call, "experiments/get-by-name");
    assert!(
        error.message.contains("cannot reach the MLflow server"),
        "{error}"
    );
    assert!(error.message.contains("after 3 tries"), "{error}");
    assert!(error.message.to_lowercase().contains("refused"), "{error}");
}

#[tokio::test]
#[ignore = "needs services"]
async fn experiments_are_model_training_and_models_are_mlflow_3_logged_models() {
    it_common::start();
    let tracker = new_tracker().await;
    let config = it_common::env_config();
    let mlflow = config.mlflow.clone().expect("MLFLOW_TRACKING_URI");

    // An experiment made before this code (no kind tag) gets the tag on first use.
    let old = it_common::unique("it-kind-old");
    let created = reqwest::Client::new()
        .post(format!(
            "{}/api/2.0/mlflow/experiments/create",
            mlflow.tracking_uri.trim_end_matches('/')
        ))
        .basic_auth(
            it_common::env("MLFLOW_TRACKING_USERNAME"),
            Some(it_common::env("MLFLOW_TRACKING_PASSWORD")),
        )
        .json(&serde_json::json!({ "name": old }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{created:?}");
    let seen = it_common::mlflow_check(&["experiment", "--name", &old]);
    assert!(seen["tags"]["mlflow.experimentKind"].is_null(), "{seen}");
    let run = tracker.start_run(&old, "uses-it").await.unwrap();
    tracker.end_run(&run, RunStatus::Finished).await.unwrap();
    let seen = it_common::mlflow_check(&["experiment", "--name", &old]);
    assert_eq!(
        seen["tags"]["mlflow.experimentKind"],
        "custom_model_development"
    );

    // A new experiment is created with it; its models are logged models with linked metrics,
    // params past one request's 100, files in their own location, READY or FAILED.
    let experiment = it_common::unique("it-logged-models");
    let run = tracker.start_run(&experiment, "train").await.unwrap();
    let seen = it_common::mlflow_check(&["experiment", "--name", &experiment]);
    assert_eq!(
        seen["tags"]["mlflow.experimentKind"],
        "custom_model_development"
    );
    let spec = ModelSpec {
        name: "fraud-risk".into(),
        model_type: "logistic_regression".into(),
        params: (0..130)
            .map(|i| (format!("p{i:03}"), i.to_string()))
            .collect(),
        tags: vec![("data_fingerprint".into(), "abc".into())],
    };
    let good = tracker.create_logged_model(&run, &spec).await.unwrap();
    tracker
        .log_model_metrics(&run, &good, &[("holdout_roc_auc".into(), 0.91)])
        .await
        .unwrap();
    tracker
        .log_model_artifact(&run, &good, "model.json", b"{}".to_vec())
        .await
        .unwrap();
    tracker.finalize_logged_model(&good, true).await.unwrap();
    let bad = tracker.create_logged_model(&run, &spec).await.unwrap();
    tracker.finalize_logged_model(&bad, false).await.unwrap();
    tracker.end_run(&run, RunStatus::Finished).await.unwrap();

    let models = it_common::mlflow_check(&["logged-models", "--experiment", &experiment]);
    let models = models["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{models:?}");
    let (first, second) = (&models[0], &models[1]);
    assert_eq!(first["model_id"], good.model_id.clone().unwrap().as_str());
    assert_eq!(first["status"], "READY");
    assert_eq!(first["source_run_id"], run.run_id.as_str());
    assert_eq!(first["params"].as_object().unwrap().len(), 130);
    assert_eq!(first["tags"]["data_fingerprint"], "abc");
    assert_eq!(first["metrics"]["holdout_roc_auc"], 0.91);
    assert_eq!(strings(&first["artifacts"]), ["model.json"]);
    assert_eq!(second["status"], "FAILED");
    // The linked metric is also the run's.
    let seen = it_common::mlflow_check(&["run", "--run-id", &run.run_id]);
    assert_eq!(seen["metrics"]["holdout_roc_auc"], 0.91);
}
