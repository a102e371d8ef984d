//! Shared set-up of the HTTP tests: a fresh local state per test (its own temporary folder),
//! the documented test user, generated labelled rows and, when asked, a trained champion.

#![allow(dead_code)] // each test crate uses a different part

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use fraudrisk::auth::add_user;
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::http::{router, App, AppConfig, Endpoint};
use fraudrisk::model::TrainConfig;
use fraudrisk::pipeline::PipelineSettings;
use fraudrisk::ports::{PredictionLogEntry, RecordRole};
use fraudrisk::services::Services;
use http::{Method, Request, Response};

/// The test user of the sample events (events/manifest.json documents it).
pub const USER: &str = "merlin";
/// Its password.
pub const PASSWORD: &str = "wizard-pass";
/// `Basic base64("merlin:wizard-pass")`.
pub const AUTHORIZATION: &str = "Basic bWVybGluOndpemFyZC1wYXNz";

/// A local state in a temporary folder, removed when dropped.
pub struct TestState {
    pub dir: tempfile::TempDir,
    pub services: Services,
    pub config: AppConfig,
}

/// Small, fast training settings: the tests check the plumbing, not the model.
pub fn fast_settings() -> PipelineSettings {
    PipelineSettings {
        training: TrainConfig {
            alphas: vec![1.0, 10.0],
            folds: 3,
            ..TrainConfig::default()
        },
        ..PipelineSettings::default()
    }
}

impl TestState {
    /// A fresh state with the test user; `rows` loads generated reference and shifted rows;
    /// `train` also trains the first champion (version 1).
    pub async fn new(rows: bool, train: bool) -> Self {
        fraudrisk::telemetry::init_test();
        let dir = tempfile::tempdir().expect("temporary folder");
        let state_dir: PathBuf = dir.path().to_path_buf();
        let services = Services::local(&state_dir).await.expect("local services");
        add_user(services.users.as_ref(), USER, PASSWORD)
            .await
            .expect("test user");
        let mut config = AppConfig::new(state_dir);
        config.pipeline = fast_settings();
        if rows || train {
            let generator = GeneratorConfig {
                seed: 7,
                reference_rows: 1500,
                shifted_rows: 400,
            };
            services
                .records
                .load_records(
                    "test-reference",
                    RecordRole::Reference,
                    &generated_rows(GeneratedKind::Reference, generator),
                )
                .await
                .expect("reference rows");
            services
                .records
                .load_records(
                    "test-shifted",
                    RecordRole::New,
                    &generated_rows(GeneratedKind::Shifted, generator),
                )
                .await
                .expect("shifted rows");
        }
        if train {
            services
                .initial_train(&config.pipeline)
                .await
                .expect("initial training");
        }
        TestState {
            dir,
            services,
            config,
        }
    }

    /// An app over this state, with the router of every endpoint.
    pub async fn app(&self) -> TestApp {
        TestApp::new(
            App::new(self.services.clone(), &self.config)
                .await
                .expect("app"),
        )
    }

    /// Predictions logged so far.
    pub async fn logged(&self) -> u64 {
        self.services
            .predictions
            .prediction_stats(None)
            .await
            .expect("prediction stats")
            .count
    }

    /// The logged entry of an answer's `prediction_id`, which must be a UUID v7.
    pub async fn stored(&self, answer: &serde_json::Value) -> PredictionLogEntry {
        let id = prediction_id(answer);
        self.services
            .predictions
            .prediction_by_id(id)
            .await
            .expect("prediction lookup")
            .unwrap_or_else(|| panic!("prediction {id} is not in the log"))
    }
}

/// The answer's `prediction_id`, checked to be a UUID v7.
pub fn prediction_id(answer: &serde_json::Value) -> uuid::Uuid {
    let text = answer["prediction_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no prediction_id in {answer}"));
    let id = uuid::Uuid::parse_str(text).expect("prediction_id is a UUID");
    assert_eq!(id.get_version_num(), 7, "{id} is a UUID v7");
    id
}

/// An app and its router (every endpoint, as `fraudctl serve` mounts them), driven with
/// `oneshot`: no server needed.
pub struct TestApp {
    pub app: Arc<App>,
    pub router: axum::Router,
}

impl TestApp {
    /// The router of every endpoint over `app`.
    pub fn new(app: App) -> Self {
        let app = Arc::new(app);
        TestApp {
            router: router(app.clone(), &Endpoint::ALL),
            app,
        }
    }

    /// Answers a request as `fraudctl serve` would.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        router::call(&self.router, request.map(axum::body::Body::from)).await
    }

    /// Answers a request as the Lambda function of `endpoint` would.
    pub async fn handle_endpoint(
        &self,
        endpoint: Endpoint,
        request: Request<Bytes>,
    ) -> Response<Bytes> {
        let router = router(self.app.clone(), &[endpoint]);
        router::call(&router, request.map(axum::body::Body::from)).await
    }
}

impl std::ops::Deref for TestApp {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

/// A request with the test user's credentials.
pub fn request(method: Method, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", AUTHORIZATION)
}

/// A JSON POST with the test user's credentials.
pub fn post_json(uri: &str, body: &serde_json::Value) -> Request<Bytes> {
    request(Method::POST, uri)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("request")
}

/// A GET with the test user's credentials.
pub fn get(uri: &str) -> Request<Bytes> {
    request(Method::GET, uri)
        .body(Bytes::new())
        .expect("request")
}

/// The body as JSON (panics with the text when it is not JSON).
pub fn json(response: &Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// The body as text.
pub fn text(response: &Response<Bytes>) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

/// The seed README's documented GET query (no_of_dependents=3).
pub const SEED_QUERY: &str = "account_balance=4&duration_of_credit_month=12&payment_status_of_previous_credit=4&purpose=3&credit_amount=618&value_savings_stocks=1&length_of_current_employment=5&instalment_per_cent=4&sex_marital_status=3&guarantors=1&duration_in_current_address=4&most_valuable_available_asset=2&age_years=56&concurrent_credits=3&type_of_apartment=2&no_of_credits_at_this_bank=1&occupation=1&no_of_dependents=3&telephone=0&foreign_worker=0";

/// The same query with no_of_dependents=1, a valid request.
pub fn corrected_query() -> String {
    SEED_QUERY.replace("no_of_dependents=3", "no_of_dependents=1")
}
