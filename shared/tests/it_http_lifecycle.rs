//! The whole life cycle on the real services (PostgreSQL, S3, MLflow) through the handlers
//! the Lambda binaries run: each request is an API Gateway HTTP API event from `events/`,
//! decoded by lambda_http and answered by `lambda::api` (hello, initialtrain, predict) or
//! `lambda::retrain_event` (retrain), over an `App` built on production adapters. Then
//! verified from outside with MLflow's Python client; then MLflow down: predictions go on,
//! retrain fails with a JSON error and leaves the champion pointer alone.

mod it_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fraudrisk::adapters::mlflow::{MlflowAuth, MlflowTracker};
use fraudrisk::adapters::s3::s3_client;
use fraudrisk::auth::add_user;
use fraudrisk::config::{Config, MlflowCredentials};
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::http::{lambda, App, AppConfig, Endpoint};
use fraudrisk::model::{FRAUD_MESSAGE, NOT_FRAUD_MESSAGE};
use fraudrisk::pipeline::{
    read_champion_pointer, PipelineSettings, CHAMPION_ALIAS, CHAMPION_POINTER_KEY,
};
use fraudrisk::ports::{RecordRole, Tracker};
use fraudrisk::request::{seed_example_corrected, SEED_EXAMPLE_JSON};
use fraudrisk::services::Services;
use it_common::TestDatabase;
use serde_json::Value;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
/// The user of the sample events (events/manifest.json).
const USER: &str = "merlin";
const PASSWORD: &str = "wizard-pass";

/// What a function answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

/// An API Gateway event from `events/`, with its body replaced when `body` is given.
fn event(file: &str, body: Option<&str>) -> Value {
    let text = std::fs::read_to_string(Path::new(EVENTS).join(file))
        .unwrap_or_else(|e| panic!("events/{file}: {e}"));
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if let Some(body) = body {
        event["body"] = Value::from(body);
        event["headers"]["content-length"] = Value::from(body.len().to_string());
    }
    event
}

/// Invokes the Lambda handler of `endpoint` with an API Gateway event, as the runtime would.
async fn invoke(app: &Arc<App>, endpoint: Endpoint, event: Value) -> Answer {
    if endpoint == Endpoint::Retrain {
        // The retrain function takes a raw payload (API Gateway or EventBridge).
        let router = lambda::retrain_router(app.clone());
        let output = lambda::retrain_event(app, &router, event)
            .await
            .unwrap_or_else(|e| panic!("the retrain invocation failed: {e}"));
        let status = output["statusCode"]
            .as_u64()
            .unwrap_or_else(|| panic!("not an API Gateway answer: {output}"));
        let body = output["body"].as_str().unwrap_or_default();
        return Answer {
            status: status as u16,
            body: serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")),
        };
    }
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("an API Gateway HTTP API event");
    let router = fraudrisk::http::router(app.clone(), &[endpoint]);
    let response = lambda::api(&router, request).await;
    let status = response.status().as_u16();
    let text = String::from_utf8_lossy(response.body()).into_owned();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    }
}

fn rows(kind: GeneratedKind, seed: u64, count: usize) -> Vec<fraudrisk::dataset::SourceRow> {
    let (reference_rows, shifted_rows) = match kind {
        GeneratedKind::Reference => (count, 0),
        _ => (0, count),
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

async fn load(services: &Services, kind: GeneratedKind, seed: u64, count: usize) {
    let (source, role) = match kind {
        GeneratedKind::Reference => ("generated-reference", RecordRole::Reference),
        _ => ("generated-shifted", RecordRole::New),
    };
    let summary = services
        .records
        .load_records(source, role, &rows(kind, seed, count))
        .await
        .unwrap();
    assert_eq!(summary.inserted, count, "{source} rows inserted");
}

/// Production services over this test's database and S3 prefix, with the events' user.
async fn services(config: &Config, state: &Path) -> Services {
    let services = Services::production(config, state).await.expect("services");
    add_user(services.users.as_ref(), USER, PASSWORD)
        .await
        .expect("test user");
    services
}

/// The app a Lambda container builds (predictions logged within the request), with this
/// test's experiment and model names.
async fn app(services: Services, state: &Path, pipeline: &PipelineSettings) -> Arc<App> {
    let mut config = AppConfig::new(state.to_path_buf());
    config.pipeline = pipeline.clone();
    assert!(!config.background_log, "Lambda logs within the request");
    Arc::new(App::new(services, &config).await.expect("app"))
}

async fn logged(services: &Services) -> u64 {
    services
        .predictions
        .prediction_stats(None)
        .await
        .unwrap()
        .count
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

#[tokio::test]
#[ignore = "needs services"]
async fn the_life_cycle_through_the_lambda_handlers() {
    it_common::start();
    let database = TestDatabase::create("http_lifecycle").await;
    let prefix = it_common::unique("it/http-lifecycle");
    let config = it_common::isolated_config(&database, &prefix);
    let state = tempfile::tempdir().unwrap();
    let services = services(&config, state.path()).await;
    let settings = it_common::pipeline_settings("http-lifecycle", false);
    let app = app(services.clone(), state.path(), &settings).await;

    // Before any training: no champion.
    let hello = invoke(&app, Endpoint::Hello, event("hello.json", None)).await;
    assert_eq!(hello.status, 200, "{:?}", hello.body);
    assert_eq!(hello.body["champion_version"], Value::Null);

    // Reference rows, then POST /initialtrain.
    load(&services, GeneratedKind::Reference, 42, 10_000).await;
    let trained = invoke(
        &app,
        Endpoint::InitialTrain,
        event("initialtrain.json", None),
    )
    .await;
    assert_eq!(trained.status, 200, "{:?}", trained.body);
    assert_eq!(trained.body["version"], 1);
    assert_eq!(trained.body["promoted"], true);
    assert_eq!(
        trained.body["training_rows"].as_u64().unwrap()
            + trained.body["holdout_rows"].as_u64().unwrap(),
        10_000
    );
    let initial_run = trained.body["run_id"].as_str().unwrap().to_string();

    // GET /hello names the new champion.
    let hello = invoke(&app, Endpoint::Hello, event("hello.json", None)).await;
    assert_eq!(hello.status, 200, "{:?}", hello.body);
    assert_eq!(hello.body["message"], "hello");
    assert_eq!(hello.body["champion_version"], 1);

    // POST /predict with the seed's example corrected (no_of_dependents = 1): scored, logged.
    let corrected = seed_example_corrected().to_string();
    let predicted = invoke(
        &app,
        Endpoint::Predict,
        event("predict-post.json", Some(&corrected)),
    )
    .await;
    assert_eq!(predicted.status, 200, "{:?}", predicted.body);
    let message = predicted.body["message"].as_str().unwrap();
    assert!(
        [FRAUD_MESSAGE, NOT_FRAUD_MESSAGE].contains(&message),
        "{message}"
    );
    let probability = predicted.body["probability_of_fraud"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&probability), "{probability}");
    assert_eq!(predicted.body["model_version"], 1);
    assert_eq!(logged(&services).await, 1);

    // GET /predict too (the query form).
    let predicted = invoke(&app, Endpoint::Predict, event("predict-get.json", None)).await;
    assert_eq!(predicted.status, 200, "{:?}", predicted.body);
    assert_eq!(predicted.body["model_version"], 1);
    assert_eq!(
        predicted.body["probability_of_fraud"].as_f64().unwrap(),
        probability,
        "the same applicant, the same answer"
    );
    assert_eq!(logged(&services).await, 2);

    // POST /predict with the seed's own body: 422 on no_of_dependents, nothing logged.
    let refused = invoke(
        &app,
        Endpoint::Predict,
        event("predict-post.json", Some(SEED_EXAMPLE_JSON)),
    )
    .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["fields"][0]["field"], "no_of_dependents");
    assert_eq!(refused.body["fields"].as_array().unwrap().len(), 1);
    assert_eq!(logged(&services).await, 2, "a refused request logs nothing");

    // New labelled rows that drift, then POST /retrain ({"mode": "always"}).
    load(&services, GeneratedKind::Shifted, 42, 2_000).await;
    let retrained = invoke(&app, Endpoint::Retrain, event("retrain.json", None)).await;
    assert_eq!(retrained.status, 200, "{:?}", retrained.body);
    let summary = &retrained.body;
    assert_eq!(summary["mode"], "always");
    let outcome = summary["outcome"].as_str().unwrap();
    assert!(
        ["promoted", "rejected"].contains(&outcome),
        "outcome {outcome}: {summary}"
    );
    assert_eq!(summary["new_rows"], 2_000);
    assert_eq!(summary["previous_champion_version"], 1);
    assert_eq!(summary["challenger_version"], 2);
    assert_eq!(summary["drift"]["drift"], true, "the shifted rows drift");
    assert_eq!(summary["drift"]["features"].as_array().unwrap().len(), 20);
    let expected_champion = if outcome == "promoted" { 2 } else { 1 };
    assert_eq!(summary["champion_version"], expected_champion);
    let retrain_run = summary["run_id"].as_str().unwrap().to_string();
    let counts = services.records.record_counts().await.unwrap();
    assert_eq!((counts.absorbed, counts.pending), (12_000, 0));

    // The S3 pointer, the API and MLflow's own client agree on the champion.
    let pointer = read_champion_pointer(services.artifacts.as_ref())
        .await
        .unwrap()
        .expect("a champion pointer");
    assert_eq!(pointer.version, expected_champion);
    let hello = invoke(&app, Endpoint::Hello, event("hello.json", None)).await;
    assert_eq!(hello.body["champion_version"], pointer.version);
    let predicted = invoke(
        &app,
        Endpoint::Predict,
        event("predict-post.json", Some(&corrected)),
    )
    .await;
    assert_eq!(predicted.status, 200, "{:?}", predicted.body);
    assert_eq!(predicted.body["model_version"], pointer.version);

    let alias = it_common::mlflow_check(&["champion", "--model", &settings.model_name]);
    assert_eq!(alias["version"], pointer.version.to_string());
    assert_eq!(alias["run_id"], pointer.run_id.as_str());
    assert_eq!(alias["aliases"][0], CHAMPION_ALIAS);
    let expected_run = if outcome == "promoted" {
        &retrain_run
    } else {
        &initial_run
    };
    assert_eq!(&pointer.run_id, expected_run);

    let run = it_common::mlflow_check(&["run", "--run-id", &retrain_run]);
    assert_eq!(run["status"], "FINISHED");
    let metrics = &run["metrics"];
    let challenger_auc = metrics["holdout_roc_auc"]
        .as_f64()
        .unwrap_or_else(|| panic!("holdout_roc_auc in {metrics}"));
    assert!((0.0..=1.0).contains(&challenger_auc), "{challenger_auc}");
    assert_eq!(
        challenger_auc,
        summary["comparison"]["challenger"]["roc_auc"]
            .as_f64()
            .unwrap()
    );
    assert_eq!(metrics["drift_detected"].as_f64(), Some(1.0));
    assert_eq!(metrics["predictions_since_promotion"].as_f64(), Some(2.0));
}

#[tokio::test]
#[ignore = "needs services"]
async fn with_mlflow_down_predict_answers_and_retrain_fails_cleanly() {
    it_common::start();
    let database = TestDatabase::create("http_mlflow_down").await;
    let config = it_common::isolated_config(&database, &it_common::unique("it/http-mlflow-down"));
    let state = tempfile::tempdir().unwrap();
    let healthy = services(&config, state.path()).await;
    let settings = it_common::pipeline_settings("http-mlflow-down", true);
    let healthy_app = app(healthy.clone(), state.path(), &settings).await;

    load(&healthy, GeneratedKind::Reference, 42, 2_000).await;
    let trained = invoke(
        &healthy_app,
        Endpoint::InitialTrain,
        event("initialtrain.json", None),
    )
    .await;
    assert_eq!(trained.status, 200, "{:?}", trained.body);
    assert_eq!(trained.body["version"], 1);
    load(&healthy, GeneratedKind::Shifted, 42, 600).await;
    let pointer_before = healthy.artifacts.get(CHAMPION_POINTER_KEY).await.unwrap();
    assert!(pointer_before.is_some());

    // Another container over the same services, its tracking server a refused connection.
    let mut down = healthy.clone();
    down.tracker = tracker_at(
        &config,
        format!("http://127.0.0.1:{}", it_common::closed_port()),
    )
    .await;
    let down_app = app(down, state.path(), &settings).await;

    // Serving never touches MLflow.
    let predicted = invoke(
        &down_app,
        Endpoint::Predict,
        event("predict-get.json", None),
    )
    .await;
    assert_eq!(predicted.status, 200, "{:?}", predicted.body);
    assert_eq!(predicted.body["model_version"], 1);
    let predicted = invoke(
        &down_app,
        Endpoint::Predict,
        event("predict-post.json", None),
    )
    .await;
    assert_eq!(predicted.status, 200, "{:?}", predicted.body);
    assert_eq!(predicted.body["model_version"], 1);
    assert_eq!(logged(&healthy).await, 2);
    let hello = invoke(&down_app, Endpoint::Hello, event("hello.json", None)).await;
    assert_eq!(hello.body["champion_version"], 1);

    // Retrain: a 5xx JSON error naming the tracking call that failed.
    let failed = invoke(&down_app, Endpoint::Retrain, event("retrain.json", None)).await;
    // 502 Bad Gateway: a dependency failed, not this service.
    assert_eq!(failed.status, 502, "{:?}", failed.body);
    let error = failed.body["error"].as_str().expect("an error message");
    assert!(error.contains("tracking server"), "{error}");
    assert!(error.contains("experiments/get-by-name"), "{error}");

    // Nothing changed: same pointer bytes, same alias, the rows still waiting.
    it_common::assert_champion_unchanged(&healthy, &settings.model_name, &pointer_before, 1, 600)
        .await;
    let predicted = invoke(
        &down_app,
        Endpoint::Predict,
        event("predict-get.json", None),
    )
    .await;
    assert_eq!(predicted.status, 200, "{:?}", predicted.body);
    assert_eq!(predicted.body["model_version"], 1);

    // MLflow back: the same request goes through.
    let retrained = invoke(&healthy_app, Endpoint::Retrain, event("retrain.json", None)).await;
    assert_eq!(retrained.status, 200, "{:?}", retrained.body);
    assert_eq!(retrained.body["new_rows"], 600);
}
