//! `POST /outcomes` through the router (as `fraudctl serve` and the `outcomes` Lambda
//! function answer it): a prediction's id round-trips to a waiting labelled row that a
//! retrain absorbs; every per-item result; 422 naming `outcomes[i].field` with nothing stored.

mod http_common;

use bytes::Bytes;
use fraudrisk::http::Endpoint;
use fraudrisk::outcomes::OUTCOME_SOURCE;
use fraudrisk::pipeline::RetrainMode;
use fraudrisk::request::seed_example_corrected;
use http::{Method, StatusCode};
use http_common::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn assert_status(response: &http::Response<Bytes>, status: StatusCode) {
    assert_eq!(response.status(), status, "body: {}", text(response));
}

/// Scores `count` applicants in one batch and returns their prediction ids.
async fn predict(app: &TestApp, count: usize) -> Vec<String> {
    let records: Vec<Value> = (0..count)
        .map(|i| {
            let mut applicant = seed_example_corrected();
            applicant["age_years"] = json!(20 + i);
            applicant
        })
        .collect();
    let response = app
        .handle(post_json("/predict", &json!({ "records": records })))
        .await;
    assert_status(&response, StatusCode::OK);
    json(&response)["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| prediction_id(p).to_string())
        .collect()
}

async fn waiting_outcome_rows(state: &TestState) -> usize {
    state
        .services
        .records
        .pending_by_source()
        .await
        .expect("pending by source")
        .into_iter()
        .find(|(source, _)| source == OUTCOME_SOURCE)
        .map_or(0, |(_, n)| n)
}

fn results(answer: &Value) -> Vec<(String, u64)> {
    answer["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|item| {
            (
                item["result"].as_str().unwrap_or("").to_string(),
                item["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_prediction_id_round_trips_to_a_row_that_retrain_absorbs() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let ids = predict(&app, 3).await;
    let unknown = Uuid::now_v7().to_string();
    let body = json!({"outcomes": [
        {"prediction_id": ids[0], "fraud": true, "observed_at": "2026-11-01T10:00:00Z"},
        {"prediction_id": ids[1], "fraud": false},
        {"prediction_id": unknown, "fraud": true}
    ]});
    let response = app.handle(post_json("/outcomes", &body)).await;
    assert_status(&response, StatusCode::OK);
    let answer = json(&response);
    assert_eq!(
        results(&answer),
        [
            ("recorded".to_string(), 201),
            ("recorded".to_string(), 201),
            ("unknown_prediction".to_string(), 404)
        ]
    );
    assert_eq!(answer["counts"]["recorded"], 2);
    assert_eq!(answer["counts"]["unknown_prediction"], 1);
    assert!(answer["outcomes"][2]["hint"].is_string());
    assert_eq!(waiting_outcome_rows(&state).await, 2);

    // Idempotent: the same report again.
    let again = json(&app.handle(post_json("/outcomes", &body)).await);
    assert_eq!(again["counts"]["unchanged"], 2);
    assert_eq!(waiting_outcome_rows(&state).await, 2);

    // A different outcome: 409 per item, replaced with ?overwrite=true.
    let flip = json!({"outcomes": [{"prediction_id": ids[0], "fraud": false}]});
    let conflict = json(&app.handle(post_json("/outcomes", &flip)).await);
    assert_eq!(results(&conflict), [("conflict".to_string(), 409)]);
    assert_eq!(conflict["outcomes"][0]["stored_fraud"], true);
    let replaced = json(
        &app.handle(post_json("/outcomes?overwrite=true", &flip))
            .await,
    );
    assert_eq!(results(&replaced), [("replaced".to_string(), 200)]);
    let (stored, history) = state
        .services
        .outcomes
        .outcome_of(ids[0].parse().unwrap())
        .await
        .unwrap()
        .expect("stored outcome");
    assert!(!stored.fraud);
    assert_eq!(history.len(), 1);

    // The retrain absorbs the waiting rows, outcome rows among them.
    let summary = state
        .services
        .retrain(&state.config.pipeline, RetrainMode::Always)
        .await
        .expect("retrain");
    assert!(summary.new_rows >= 2, "{summary:?}");
    assert_eq!(waiting_outcome_rows(&state).await, 0);
    let refused = json(
        &app.handle(post_json(
            "/outcomes?overwrite=true",
            &json!({"outcomes": [{"prediction_id": ids[0], "fraud": true}]}),
        ))
        .await,
    );
    assert_eq!(results(&refused), [("absorbed".to_string(), 409)]);
    assert!(refused["outcomes"][0]["absorbed_by"].is_u64());
}

#[tokio::test]
async fn an_invalid_report_names_every_field_and_stores_nothing() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let ids = predict(&app, 1).await;
    let body = json!({"outcomes": [
        {"prediction_id": ids[0], "fraud": true},
        {"prediction_id": "12", "fraud": "yes", "observed_at": "2999-01-01T00:00:00Z"}
    ]});
    let response = app
        .handle(post_json("/outcomes?overwrite=maybe", &body))
        .await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    let error = json(&response);
    let fields: Vec<&str> = error["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "overwrite",
            "outcomes[1].prediction_id",
            "outcomes[1].fraud",
            "outcomes[1].observed_at"
        ]
    );
    assert!(error["request_id"].is_string());
    assert_eq!(waiting_outcome_rows(&state).await, 0, "nothing stored");

    // Shapes: no outcomes, too many, duplicate keys, not JSON, wrong content type.
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"prediction_id": Uuid::now_v7().to_string(), "fraud": true}))
        .collect();
    for (body, status) in [
        (
            json!({"outcomes": []}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "outcomes": many }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"outcomes\": [], \"outcomes\": []}".to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("{\"outcomes\": [".to_string(), StatusCode::BAD_REQUEST),
    ] {
        let request = request(Method::POST, "/outcomes")
            .header("content-type", "application/json")
            .body(Bytes::from(body.clone()))
            .unwrap();
        assert_status(&app.handle(request).await, status);
    }
    let plain = request(Method::POST, "/outcomes")
        .header("content-type", "text/plain")
        .body(Bytes::from("{}"))
        .unwrap();
    assert_status(&app.handle(plain).await, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_status(
        &app.handle(get("/outcomes")).await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
}

#[tokio::test]
async fn the_lambda_function_answers_only_its_route_with_a_stage_prefix() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let ids = predict(&app, 1).await;
    let body = json!({"outcomes": [{"prediction_id": ids[0], "fraud": true}]});
    let response = app
        .handle_endpoint(Endpoint::Outcomes, post_json("/prod/outcomes", &body))
        .await;
    assert_status(&response, StatusCode::OK);
    assert_eq!(json(&response)["counts"]["recorded"], 1);
    let elsewhere = app
        .handle_endpoint(
            Endpoint::Outcomes,
            post_json("/predict", &seed_example_corrected()),
        )
        .await;
    assert_status(&elsewhere, StatusCode::NOT_FOUND);
    let no_auth = http::Request::builder()
        .method(Method::POST)
        .uri("/outcomes")
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap();
    assert_status(
        &app.handle_endpoint(Endpoint::Outcomes, no_auth).await,
        StatusCode::UNAUTHORIZED,
    );
}

#[tokio::test]
async fn an_outcome_right_after_a_prediction_finds_it_with_the_background_log() {
    let mut state = TestState::new(false, true).await;
    state.config.background_log = true;
    let app = state.app().await;
    for _ in 0..5 {
        let ids = predict(&app, 2).await;
        let body = json!({"outcomes": [
            {"prediction_id": ids[0], "fraud": true},
            {"prediction_id": ids[1], "fraud": false}
        ]});
        let answer = json(&app.handle(post_json("/outcomes", &body)).await);
        assert_eq!(answer["counts"]["recorded"], 2, "{answer}");
    }
    app.shutdown().await;
}
