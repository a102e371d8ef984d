//! The defects found by trying the API as an attacker and as a new user would (issue 8),
//! each pinned by a test through the shared router: HEAD, q-values, stage prefixes, strict
//! JSON, codes with spaces, huge numbers, broken champions, unloggable predictions, failed
//! login limits and the bounded hashing pool, request ids in error bodies.

mod http_common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use fraudrisk::dataset::DataQuality;
use fraudrisk::http::{App, BROKEN_CHAMPION_HINT};
use fraudrisk::monitor::{ScoreReference, WindowAggregates};
use fraudrisk::ports::{
    MonitoredPrediction, PredictionLog, PredictionLogEntry, PredictionStats, StoreError,
};
use fraudrisk::request::seed_example_corrected;
use http::{Method, StatusCode};
use http_common::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn assert_status(response: &http::Response<Bytes>, status: StatusCode) {
    assert_eq!(response.status(), status, "body: {}", text(response));
}

fn field_names(response: &http::Response<Bytes>) -> Vec<String> {
    json(response)["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| f["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn head_answers_on_get_routes_without_a_body() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let response = app
        .handle(request(Method::HEAD, "/hello").body(Bytes::new()).unwrap())
        .await;
    assert_status(&response, StatusCode::OK);
    assert!(response.body().is_empty());
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn accept_q_values_decide_between_json_and_html() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let uri = format!("/predict?{}", corrected_query());
    let ask = |accept: &'static str| {
        request(Method::GET, &uri)
            .header("accept", accept)
            .body(Bytes::new())
            .unwrap()
    };
    let response = app
        .handle(ask("application/json;q=1, text/html;q=0.1"))
        .await;
    assert_status(&response, StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let response = app
        .handle(ask("text/html;q=0.9, application/json;q=0.2"))
        .await;
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn the_form_posts_to_the_page_it_is_on() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let page = request(Method::GET, "/predict/")
        .header("accept", "text/html")
        .body(Bytes::new())
        .unwrap();
    let response = app.handle(page).await;
    assert_status(&response, StatusCode::OK);
    let html = text(&response);
    assert!(html.contains("<form id=\"predict-form\" method=\"get\">"));
    // A relative action="predict" resolved to /predict/predict from /predict/.
    assert!(!html.contains("action=\"predict\""));
}

#[tokio::test]
async fn a_duplicate_json_key_is_422_naming_it() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let body = seed_example_corrected().to_string();
    let duplicated = body.replacen('{', "{\"age_years\": 99, ", 1);
    let response = app
        .handle(
            request(Method::POST, "/predict")
                .header("content-type", "application/json")
                .body(Bytes::from(duplicated))
                .unwrap(),
        )
        .await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&response), ["age_years"]);
    let batch = format!(
        "{{\"records\": [{body}, {}]}}",
        body.replacen('{', "{\"purpose\": 1, ", 1)
    );
    let response = app
        .handle(
            request(Method::POST, "/predict")
                .header("content-type", "application/json")
                .body(Bytes::from(batch))
                .unwrap(),
        )
        .await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&response), ["records[1].purpose"]);
    assert_eq!(state.logged().await, 0);
}

#[tokio::test]
async fn codes_with_spaces_and_huge_numbers_are_422_naming_the_field() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let mut spaced = seed_example_corrected();
    spaced["account_balance"] = json!(" 4 ");
    let response = app.handle(post_json("/predict", &spaced)).await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&response), ["account_balance"]);

    let query = corrected_query().replace("account_balance=4", "account_balance=%204%20");
    let response = app.handle(get(&format!("/predict?{query}"))).await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&response), ["account_balance"]);

    let huge = seed_example_corrected()
        .to_string()
        .replace("\"age_years\":56", "\"age_years\":1e400");
    assert!(huge.contains("1e400"), "{huge}");
    let response = app
        .handle(
            request(Method::POST, "/predict")
                .header("content-type", "application/json")
                .body(Bytes::from(huge))
                .unwrap(),
        )
        .await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&response), ["age_years"]);
    assert_eq!(state.logged().await, 0);
}

#[tokio::test]
async fn a_broken_champion_is_503_with_a_hint_and_hello_says_broken() {
    let state = TestState::new(false, true).await;
    let model = state.dir.path().join("artifacts/models/v1/model.json");
    assert!(model.exists(), "the local store keeps {}", model.display());
    std::fs::write(&model, b"{ not a model").unwrap();
    let app = state.app().await;
    let response = app
        .handle(get(&format!("/predict?{}", corrected_query())))
        .await;
    assert_status(&response, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&response)["hint"], BROKEN_CHAMPION_HINT);
    let hello = app.handle(get("/hello")).await;
    assert_status(&hello, StatusCode::OK);
    assert_eq!(json(&hello)["champion_version"], Value::Null);
    assert!(json(&hello)["champion_error"]
        .as_str()
        .unwrap()
        .contains("broken"));
    assert_eq!(json(&hello)["hint"], BROKEN_CHAMPION_HINT);
    assert_eq!(state.logged().await, 0);
}

/// A prediction log that refuses every write.
struct BrokenLog;

#[async_trait]
impl PredictionLog for BrokenLog {
    async fn log_predictions(&self, _entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        Err(StoreError::backend("log_predictions", "the disk is gone"))
    }
    async fn prediction_by_id(
        &self,
        _prediction_id: Uuid,
    ) -> Result<Option<PredictionLogEntry>, StoreError> {
        Err(StoreError::backend("prediction_by_id", "the disk is gone"))
    }
    async fn prediction_stats(
        &self,
        _since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError> {
        Err(StoreError::backend("prediction_stats", "the disk is gone"))
    }
    async fn predictions_in_window(
        &self,
        _since: Option<DateTime<Utc>>,
        _until: Option<DateTime<Utc>>,
        _limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        Err(StoreError::backend(
            "predictions_in_window",
            "the disk is gone",
        ))
    }
    async fn served_outcomes(
        &self,
        _since: DateTime<Utc>,
        _limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        Err(StoreError::backend("served_outcomes", "the disk is gone"))
    }
    async fn window_aggregates(
        &self,
        _since: Option<DateTime<Utc>>,
        _until: Option<DateTime<Utc>>,
        _reference: &ScoreReference,
    ) -> Result<WindowAggregates, StoreError> {
        Err(StoreError::backend("window_aggregates", "the disk is gone"))
    }
    async fn window_data_quality(
        &self,
        _since: Option<DateTime<Utc>>,
        _until: Option<DateTime<Utc>>,
    ) -> Result<DataQuality, StoreError> {
        Err(StoreError::backend(
            "window_data_quality",
            "the disk is gone",
        ))
    }
}

#[tokio::test]
async fn a_prediction_that_cannot_be_logged_is_not_answered() {
    let state = TestState::new(false, true).await;
    let mut services = state.services.clone();
    services.predictions = Arc::new(BrokenLog);
    let app = TestApp::new(App::new(services, &state.config).await.unwrap());
    let response = app
        .handle(get(&format!("/predict?{}", corrected_query())))
        .await;
    assert_status(&response, StatusCode::SERVICE_UNAVAILABLE);
    assert!(json(&response)["error"]
        .as_str()
        .unwrap()
        .contains("could not be logged"));
    assert!(json(&response).get("probability_of_fraud").is_none());
    assert!(response.headers().contains_key("retry-after"));
}

/// A prediction log that refuses its first `failures` writes, then writes through.
struct FlakyLog {
    inner: Arc<dyn PredictionLog>,
    failures: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl PredictionLog for FlakyLog {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::backend("log_predictions", "database is locked"));
        }
        self.inner.log_predictions(entries).await
    }
    async fn prediction_by_id(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<PredictionLogEntry>, StoreError> {
        self.inner.prediction_by_id(prediction_id).await
    }
    async fn prediction_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError> {
        self.inner.prediction_stats(since).await
    }
    async fn predictions_in_window(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        self.inner.predictions_in_window(since, until, limit).await
    }
    async fn served_outcomes(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        self.inner.served_outcomes(since, limit).await
    }
    async fn window_aggregates(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        reference: &ScoreReference,
    ) -> Result<WindowAggregates, StoreError> {
        self.inner.window_aggregates(since, until, reference).await
    }
    async fn window_data_quality(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<DataQuality, StoreError> {
        self.inner.window_data_quality(since, until).await
    }
}

#[tokio::test]
async fn the_background_writer_retries_instead_of_dropping() {
    let state = TestState::new(false, true).await;
    let mut services = state.services.clone();
    services.predictions = Arc::new(FlakyLog {
        inner: state.services.predictions.clone(),
        failures: 4.into(),
    });
    let mut config = state.config.clone();
    config.background_log = true;
    let app = TestApp::new(App::new(services, &config).await.unwrap());
    let mut ids = Vec::new();
    for _ in 0..10 {
        let response = app
            .handle(get(&format!("/predict?{}", corrected_query())))
            .await;
        assert_status(&response, StatusCode::OK);
        let id = json(&response)["prediction_id"]
            .as_str()
            .unwrap()
            .to_string();
        ids.push(Uuid::parse_str(&id).unwrap());
    }
    // Four failed writes (0.1 + 0.2 + 0.4 + 0.8 s of pauses), then everything is written.
    for _ in 0..50 {
        if state.logged().await == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state.logged().await, 10);
    app.shutdown().await;
    // The writer kept each answer's id through the retries: the answers' ids are stored.
    for id in ids {
        let stored = state
            .services
            .predictions
            .prediction_by_id(id)
            .await
            .unwrap();
        assert_eq!(stored.map(|e| e.prediction_id), Some(id));
    }
}

#[tokio::test]
async fn repeated_failed_logins_get_429_with_retry_after() {
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    let wrong = "Basic bWVybGluOndyb25nLXBhc3M="; // merlin:wrong-pass
    let attempt = |authorization: &'static str| {
        http::Request::builder()
            .uri("/hello")
            .header("authorization", authorization)
            .body(Bytes::new())
            .unwrap()
    };
    for _ in 0..fraudrisk::http::login::MAX_FAILURES_PER_USER {
        assert_status(&app.handle(attempt(wrong)).await, StatusCode::UNAUTHORIZED);
    }
    let refused = app.handle(attempt(wrong)).await;
    assert_status(&refused, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another user name is not affected.
    let other = "Basic YXJ0aHVyOndyb25nLXBhc3M="; // arthur:wrong-pass
    assert_status(&app.handle(attempt(other)).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logins_beyond_the_hashing_pool_get_503_with_retry_after() {
    let state = TestState::new(false, false).await;
    let mut config = state.config.clone();
    config.hash_threads = 1;
    config.login_queue_wait = Duration::ZERO;
    let app = TestApp::new(App::new(state.services.clone(), &config).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..6 {
        // Different user names, so the failure limits play no part.
        let header = format!(
            "Basic {}",
            base64_encode(format!("user{i}:wrong-password").as_bytes())
        );
        let request = http::Request::builder()
            .uri("/hello")
            .header("authorization", header)
            .body(axum::body::Body::empty())
            .unwrap();
        let router = app.router.clone();
        tasks.push(tokio::spawn(async move {
            fraudrisk::http::router::call(&router, request).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let busy: Vec<_> = answers
        .iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!busy.is_empty(), "one hashing thread, six logins at once");
    assert!(busy.iter().all(|r| r.headers()["retry-after"] == "1"));
    assert!(answers
        .iter()
        .all(|r| matches!(r.status().as_u16(), 401 | 503)));
}

#[tokio::test]
async fn error_bodies_carry_the_request_id_of_the_header() {
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    let response = app
        .handle(
            http::Request::builder()
                .uri("/hello")
                .header("x-request-id", "forged")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_status(&response, StatusCode::UNAUTHORIZED);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(id, "forged", "the id is the server's, not the client's");
    assert_eq!(json(&response)["request_id"], id.as_str());
    let response = app.handle(get("/nothing")).await;
    assert_status(&response, StatusCode::NOT_FOUND);
    assert!(json(&response)["request_id"].is_string());
}

#[tokio::test]
async fn protocol_limits_answer_in_the_json_shape() {
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    let long = format!(
        "/hello?{}",
        "a".repeat(fraudrisk::http::router::MAX_URI_BYTES)
    );
    let response = app.handle(get(&long)).await;
    assert_status(&response, StatusCode::URI_TOO_LONG);
    assert!(json(&response)["error"].is_string());
    let mut many = request(Method::GET, "/hello");
    for i in 0..80 {
        many = many.header(format!("x-extra-{i}"), "1");
    }
    let response = app.handle(many.body(Bytes::new()).unwrap()).await;
    assert_status(&response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(json(&response)["error"].is_string());
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
