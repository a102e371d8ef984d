//! The HTTP API in-process: routes, statuses, error bodies, auth, the HTML page, the champion
//! cache and the prediction log, over a fresh local state per test.

mod http_common;

use std::time::Duration;

use bytes::Bytes;
use fraudrisk::http::{App, Endpoint, MAX_BODY_BYTES, NO_MODEL_HINT};
use fraudrisk::model::{FRAUD_MESSAGE, NOT_FRAUD_MESSAGE};
use fraudrisk::request::{seed_example_corrected, MAX_BATCH, SEED_EXAMPLE_JSON};
use http::{Method, Request, StatusCode};
use http_common::*;
use serde_json::{json, Value};

fn assert_status(response: &http::Response<Bytes>, status: StatusCode) {
    assert_eq!(
        response.status(),
        status,
        "body: {}",
        String::from_utf8_lossy(response.body())
    );
}

fn assert_one_prediction(body: &Value, version: u64) {
    let message = body["message"].as_str().expect("message");
    let decision = body["decision"].as_str().expect("decision");
    match decision {
        "fraud" => assert_eq!(message, FRAUD_MESSAGE),
        "not_fraud" => assert_eq!(message, NOT_FRAUD_MESSAGE),
        other => panic!("unexpected decision {other}"),
    }
    let p = body["probability_of_fraud"].as_f64().expect("probability");
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(body["model_version"], version);
    // The threshold the decision used, and the decision follows it.
    let threshold = body["threshold"].as_f64().expect("threshold");
    assert!(threshold > 0.0 && threshold < 1.0);
    assert_eq!(decision == "fraud", p >= threshold);
    let reasons = body["reason_codes"].as_array().expect("reason_codes");
    assert!(reasons.len() <= 4);
    for r in reasons {
        let code = r["code"].as_str().expect("code");
        assert!(code.len() == 3 && code.starts_with('R'), "{code}");
        assert!(r["text"].as_str().is_some_and(|t| t.contains(": ")), "{r}");
    }
    prediction_id(body);
    let contributions = body["contributions"].as_array().expect("contributions");
    assert_eq!(contributions.len(), 5);
    for c in contributions {
        assert!(c["feature"].is_string() && c["contribution"].is_number());
    }
}

#[tokio::test]
async fn every_route_needs_valid_basic_credentials() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let wrong_password = "Basic bWVybGluOndyb25nLXBhc3M="; // merlin:wrong-pass
    let unknown_user = "Basic bW9yZ2FuYTp3aXphcmQtcGFzcw=="; // morgana:wizard-pass
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("missing header", None),
        ("wrong password", Some(wrong_password)),
        ("unknown user", Some(unknown_user)),
        ("not base64", Some("Basic !!!")),
        ("no colon", Some("Basic bm9jb2xvbg==")),
        ("other scheme", Some("Bearer bWVybGluOndpemFyZC1wYXNz")),
        ("empty", Some("")),
    ];
    for endpoint in Endpoint::ALL {
        for (case, header) in &cases {
            let method = if [Endpoint::Hello, Endpoint::Predict, Endpoint::Jobs].contains(&endpoint)
            {
                Method::GET
            } else {
                Method::POST
            };
            let mut builder = Request::builder().method(method).uri(format!(
                "/{}?{}",
                endpoint.name(),
                corrected_query()
            ));
            if let Some(header) = header {
                builder = builder.header("authorization", *header);
            }
            let response = app.handle(builder.body(Bytes::new()).unwrap()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{case} on {}",
                endpoint.name()
            );
            assert_eq!(
                response.headers()["www-authenticate"],
                "Basic realm=\"fraud-risk\""
            );
            assert!(json(&response)["error"]
                .as_str()
                .unwrap()
                .contains("authentication required"));
        }
    }
    assert_eq!(
        state.logged().await,
        0,
        "nothing is logged for a refused request"
    );
    // The right credentials pass, and again from the cache.
    for _ in 0..2 {
        assert_status(&app.handle(get("/hello")).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_seeds_documented_requests_are_422_on_no_of_dependents() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let by_get = app.handle(get(&format!("/predict?{SEED_QUERY}"))).await;
    let seed_body: Value = serde_json::from_str(SEED_EXAMPLE_JSON).unwrap();
    let by_post = app.handle(post_json("/predict", &seed_body)).await;
    for response in [by_get, by_post] {
        assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
        let body = json(&response);
        let fields = body["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 1, "{body}");
        assert_eq!(fields[0]["field"], "no_of_dependents");
        assert_eq!(fields[0]["value"], "3");
        assert!(fields[0]["rule"].as_str().unwrap().contains("0, 1"));
        assert!(body["error"].as_str().unwrap().contains("no_of_dependents"));
    }
    assert_eq!(state.logged().await, 0);
}

#[tokio::test]
async fn corrected_requests_answer_with_the_seeds_sentence() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let by_get = app
        .handle(get(&format!("/predict?{}", corrected_query())))
        .await;
    assert_status(&by_get, StatusCode::OK);
    assert_eq!(by_get.headers()["content-type"], "application/json");
    let by_post = app
        .handle(post_json("/predict", &seed_example_corrected()))
        .await;
    assert_status(&by_post, StatusCode::OK);
    let (mut get_body, mut post_body) = (json(&by_get), json(&by_post));
    assert_one_prediction(&get_body, 1);
    assert_one_prediction(&post_body, 1);
    // Each answer is logged under its own id, with what was answered and the threshold.
    for body in [&get_body, &post_body] {
        let stored = state.stored(body).await;
        assert_eq!(stored.model_version, 1);
        assert_eq!(stored.threshold, body["threshold"]);
        let codes: Vec<&str> = body["reason_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert_eq!(stored.reason_codes, codes);
        assert_eq!(stored.probability_of_fraud, body["probability_of_fraud"]);
        assert_eq!(stored.fraud, body["decision"] == "fraud");
        assert_eq!(stored.username.as_deref(), Some(USER));
        assert_eq!(stored.features, seed_example_corrected());
    }
    assert_ne!(get_body["prediction_id"], post_body["prediction_id"]);
    for body in [&mut get_body, &mut post_body] {
        body.as_object_mut().unwrap().remove("prediction_id");
    }
    assert_eq!(get_body, post_body, "GET and POST score alike");
    // The message comes first, as the seed answered it, and the id beside it.
    assert!(String::from_utf8_lossy(by_post.body()).starts_with("{\"message\":"));
    assert!(String::from_utf8_lossy(by_post.body()).contains("\",\"prediction_id\":\""));
    assert_eq!(state.logged().await, 2);

    // charset parameter on the content type is fine
    let with_charset = request(Method::POST, "/predict")
        .header("content-type", "application/json; charset=utf-8")
        .body(Bytes::from(seed_example_corrected().to_string()))
        .unwrap();
    assert_status(&app.handle(with_charset).await, StatusCode::OK);
}

#[tokio::test]
async fn batches_answer_in_order_and_are_bounded() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let mut young = seed_example_corrected();
    young["age_years"] = json!(19);
    young["credit_amount"] = json!(15000);
    let records = json!({"records": [seed_example_corrected(), young, seed_example_corrected()]});
    let response = app.handle(post_json("/predict", &records)).await;
    assert_status(&response, StatusCode::OK);
    let body = json(&response);
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 3);
    let mut ids = std::collections::HashSet::new();
    for (p, record) in predictions
        .iter()
        .zip(records["records"].as_array().unwrap())
    {
        assert_one_prediction(p, 1);
        // Each item has its own id, and the log holds that item's inputs under it.
        assert!(ids.insert(prediction_id(p)), "ids of a batch are distinct");
        assert_eq!(state.stored(p).await.features, *record);
    }
    let without_id = |p: &Value| {
        let mut p = p.clone();
        p.as_object_mut().unwrap().remove("prediction_id");
        p
    };
    assert_eq!(without_id(&predictions[0]), without_id(&predictions[2]));
    assert_eq!(state.logged().await, 3);

    // A full batch fits the body limit, one more record is refused with the rule.
    let full: Vec<Value> = (0..MAX_BATCH).map(|_| seed_example_corrected()).collect();
    let pretty = serde_json::to_vec_pretty(&json!({ "records": full })).unwrap();
    assert!(pretty.len() < MAX_BODY_BYTES, "{} bytes", pretty.len());
    let response = app
        .handle(
            request(Method::POST, "/predict")
                .header("content-type", "application/json")
                .body(Bytes::from(pretty))
                .unwrap(),
        )
        .await;
    assert_status(&response, StatusCode::OK);
    assert_eq!(state.logged().await, 3 + MAX_BATCH as u64);

    let too_many: Vec<Value> = (0..=MAX_BATCH).map(|_| seed_example_corrected()).collect();
    let response = app
        .handle(post_json("/predict", &json!({ "records": too_many })))
        .await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&response)["fields"][0]["field"], "records");

    // Errors in a batch name the record; nothing of the batch is logged.
    let mut bad = seed_example_corrected();
    bad["purpose"] = json!(99);
    let response = app
        .handle(post_json(
            "/predict",
            &json!({"records": [seed_example_corrected(), bad]}),
        ))
        .await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&response)["fields"][0]["field"], "records[1].purpose");
    assert_eq!(state.logged().await, 3 + MAX_BATCH as u64);
}

#[tokio::test]
async fn bad_requests_get_their_status_and_store_nothing() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;

    let malformed = request(Method::POST, "/predict")
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{\"account_balance\": 4,"))
        .unwrap();
    let response = app.handle(malformed).await;
    assert_status(&response, StatusCode::BAD_REQUEST);
    assert!(json(&response)["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    for content_type in [
        Some("text/plain"),
        Some("application/json; charset=latin1"),
        None,
    ] {
        let mut builder = request(Method::POST, "/predict");
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let response = app
            .handle(
                builder
                    .body(Bytes::from(seed_example_corrected().to_string()))
                    .unwrap(),
            )
            .await;
        assert_status(&response, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    let huge = request(Method::POST, "/predict")
        .header("content-type", "application/json")
        .body(Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]))
        .unwrap();
    assert_status(&app.handle(huge).await, StatusCode::PAYLOAD_TOO_LARGE);

    let response = app.handle(get("/nothing")).await;
    assert_status(&response, StatusCode::NOT_FOUND);
    assert_eq!(json(&response)["error"], "no route /nothing");

    for (method, uri, allow) in [
        (Method::DELETE, "/predict", "GET, HEAD, POST"),
        (Method::PUT, "/predict", "GET, HEAD, POST"),
        (Method::GET, "/retrain", "POST"),
        (Method::GET, "/initialtrain", "POST"),
        (Method::POST, "/hello", "GET, HEAD"),
    ] {
        let response = app
            .handle(request(method, uri).body(Bytes::new()).unwrap())
            .await;
        assert_status(&response, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], allow, "{uri}");
        assert!(json(&response)["error"].as_str().unwrap().contains(allow));
    }

    // Every invalid field at once: wrong type, out of domain, fraction, missing, unknown.
    let mut many = seed_example_corrected();
    many["account_balance"] = json!("four");
    many["purpose"] = json!(42);
    many["duration_of_credit_month"] = json!(12.5);
    many.as_object_mut().unwrap().remove("age_years");
    many["colour"] = json!("red");
    let response = app.handle(post_json("/predict", &many)).await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = json(&response)["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect();
    for name in [
        "account_balance",
        "purpose",
        "duration_of_credit_month",
        "age_years",
        "colour",
    ] {
        assert!(fields.contains(&name.to_string()), "{name} in {fields:?}");
    }
    let response = app.handle(post_json("/predict", &json!([1, 2]))).await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);

    // An optional body of JSON whitespace is no body; a form feed is not JSON whitespace
    // (Schemathesis found `\x0c` accepted as an empty body by /initialtrain).
    for (uri, body) in [
        ("/retrain", b"\x0c".as_slice()),
        ("/initialtrain", b" \x0b "),
    ] {
        let response = app
            .handle(
                request(Method::POST, uri)
                    .header("content-type", "application/json")
                    .body(Bytes::from_static(body))
                    .unwrap(),
            )
            .await;
        assert_status(&response, StatusCode::BAD_REQUEST);
    }
    let monitor = request(Method::POST, "/monitor")
        .body(Bytes::from_static(b"\x0c"))
        .unwrap();
    assert_status(&app.handle(monitor).await, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(state.logged().await, 0);
}

#[tokio::test]
async fn before_the_first_training_predict_is_503_with_a_hint() {
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    let response = app
        .handle(get(&format!("/predict?{}", corrected_query())))
        .await;
    assert_status(&response, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&response)["hint"], NO_MODEL_HINT);
    let hello = app.handle(get("/hello")).await;
    assert_status(&hello, StatusCode::OK);
    assert_eq!(json(&hello)["message"], "hello");
    assert_eq!(json(&hello)["champion_version"], Value::Null);
    // No reference data either: initialtrain says what to load.
    let response = app
        .handle(post_json("/initialtrain?wait=true", &json!({})))
        .await;
    assert_status(&response, StatusCode::CONFLICT);
    assert!(json(&response)["hint"]
        .as_str()
        .unwrap()
        .contains("load-data"));
    let response = app
        .handle(post_json("/retrain?wait=true", &json!({})))
        .await;
    assert_status(&response, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(state.logged().await, 0);
}

#[tokio::test]
async fn training_through_the_api_and_the_busy_lock() {
    let state = TestState::new(true, false).await;
    let app = state.app().await;
    let lock = state
        .services
        .records
        .try_lock_training("test")
        .await
        .unwrap()
        .expect("lock");
    let response = app
        .handle(post_json("/initialtrain?wait=true", &json!({})))
        .await;
    assert_status(&response, StatusCode::CONFLICT);
    assert!(json(&response)["error"]
        .as_str()
        .unwrap()
        .contains("another training"));
    lock.release().await.unwrap();

    let response = app
        .handle(
            request(Method::POST, "/initialtrain?wait=true")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_status(&response, StatusCode::OK);
    let summary = json(&response);
    assert_eq!(summary["version"], 1);
    assert_eq!(summary["promoted"], true);
    assert!(summary["metrics"]["roc_auc"].is_number());
    // The same container sees its own promotion at once.
    assert_eq!(
        json(&app.handle(get("/hello")).await)["champion_version"],
        1
    );

    let bad = app
        .handle(post_json("/initialtrain", &json!({"x": 1})))
        .await;
    assert_status(&bad, StatusCode::UNPROCESSABLE_ENTITY);

    let response = app
        .handle(post_json("/retrain?mode=if-drift&wait=true", &json!({})))
        .await;
    assert_status(&response, StatusCode::OK);
    let summary = json(&response);
    assert_eq!(summary["mode"], "if-drift");
    assert_eq!(summary["outcome"], "waiting_for_rows", "{summary}");

    for (uri, body) in [
        ("/retrain?mode=sometimes", json!({})),
        ("/retrain", json!({"mode": "sometimes"})),
        ("/retrain", json!({"mode": 1})),
        ("/retrain?mode=always", json!({"mode": "if-drift"})),
        ("/retrain?colour=red", json!({})),
    ] {
        let response = app.handle(post_json(uri, &body)).await;
        assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(json(&response)["fields"][0]["field"].is_string());
    }
    let wrong_type = request(Method::POST, "/retrain")
        .header("content-type", "text/plain")
        .body(Bytes::from_static(b"mode=always"))
        .unwrap();
    assert_status(
        &app.handle(wrong_type).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );

    let response = app
        .handle(post_json("/retrain?wait=true", &json!({"mode": "always"})))
        .await;
    assert_status(&response, StatusCode::OK);
    let summary = json(&response);
    assert_eq!(summary["mode"], "always");
    assert!(summary["drift"]["features"].is_array(), "{summary}");
    let version = summary["champion_version"].as_u64().unwrap();
    assert_eq!(
        json(&app.handle(get("/hello")).await)["champion_version"],
        version
    );
}

#[tokio::test]
async fn browsers_get_the_form_and_the_explained_result() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let page = |uri: String| {
        request(Method::GET, &uri)
            .header("accept", browser)
            .body(Bytes::new())
            .unwrap()
    };

    let response = app.handle(page("/predict".to_string())).await;
    assert_status(&response, StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = text(&response);
    assert!(html.contains("id=\"predict-form\""));
    for feature in fraudrisk::schema::FEATURES.iter() {
        assert!(html.contains(&format!("name=\"{}\"", feature.name)));
    }
    assert!(html.contains("Balance of current account"));
    assert!(html.contains("<option value=\"10\">10: business</option>"));
    assert!(!html.contains("id=\"result\""));
    assert_eq!(state.logged().await, 0);

    let response = app
        .handle(page(format!("/predict?{}", corrected_query())))
        .await;
    assert_status(&response, StatusCode::OK);
    let html = text(&response);
    assert!(html.contains("id=\"decision\""));
    assert!(html.contains(FRAUD_MESSAGE) || html.contains(NOT_FRAUD_MESSAGE));
    assert!(html.contains("id=\"contributions\""));
    assert_eq!(html.matches("<tr data-feature=").count(), 5);
    assert_eq!(state.logged().await, 1);
    // The page shows the id the prediction was logged under.
    let id = html
        .split("<code id=\"prediction-id\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the page shows the prediction id");
    state.stored(&json!({ "prediction_id": id })).await;

    let response = app.handle(page(format!("/predict?{SEED_QUERY}"))).await;
    assert_status(&response, StatusCode::UNPROCESSABLE_ENTITY);
    let html = text(&response);
    assert!(html.contains("id=\"errors\""));
    assert!(html.contains("data-field=\"no_of_dependents\""));
    assert_eq!(state.logged().await, 1);
}

async fn hello_version(app: &TestApp) -> Value {
    json(&app.handle(get("/hello")).await)["champion_version"].clone()
}

#[tokio::test]
async fn the_champion_cache_follows_the_pointer() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    assert_eq!(hello_version(&app).await, 1);
    // Another container promotes version 2.
    state
        .services
        .initial_train(&state.config.pipeline)
        .await
        .unwrap();
    // Within the re-check interval this container still serves version 1 ...
    assert_eq!(hello_version(&app).await, 1);
    // ... and picks version 2 up on the next check.
    app.champion().invalidate();
    assert_eq!(hello_version(&app).await, 2);
    let response = app
        .handle(get(&format!("/predict?{}", corrected_query())))
        .await;
    assert_eq!(json(&response)["model_version"], 2);

    // A container with a zero interval checks on every request.
    let mut config = state.config.clone();
    config.champion_recheck = Duration::ZERO;
    let eager = TestApp::new(App::new(state.services.clone(), &config).await.unwrap());
    assert_eq!(hello_version(&eager).await, 2);
}

#[tokio::test]
async fn the_background_log_is_flushed_on_shutdown() {
    let state = TestState::new(false, true).await;
    let mut config = state.config.clone();
    config.background_log = true;
    let app = TestApp::new(App::new(state.services.clone(), &config).await.unwrap());
    for _ in 0..20 {
        let response = app
            .handle(get(&format!("/predict?{}", corrected_query())))
            .await;
        assert_status(&response, StatusCode::OK);
    }
    app.shutdown().await;
    assert_eq!(state.logged().await, 20);
    // After shutdown, predictions are written within the request.
    let response = app
        .handle(get(&format!("/predict?{}", corrected_query())))
        .await;
    assert_status(&response, StatusCode::OK);
    assert_eq!(state.logged().await, 21);
}

#[tokio::test]
async fn behind_api_gateway_the_stage_does_not_matter() {
    let state = TestState::new(false, true).await;
    let app = state.app().await;
    for path in [
        "/prod/predict",
        "/predict",
        "/v1/fraud/predict",
        "/prod/predict/",
    ] {
        let response = app
            .handle_endpoint(
                Endpoint::Predict,
                get(&format!("{path}?{}", corrected_query())),
            )
            .await;
        assert_status(&response, StatusCode::OK);
    }
    let response = app
        .handle_endpoint(Endpoint::Predict, get("/prod/hello"))
        .await;
    assert_status(&response, StatusCode::NOT_FOUND);
    // fraudctl serve routes alike (it answered 404 before the shared router).
    assert_status(
        &app.handle(get(&format!("/prod/predict?{}", corrected_query())))
            .await,
        StatusCode::OK,
    );
    assert_status(
        &app.handle(get("/prod/predict/extra")).await,
        StatusCode::NOT_FOUND,
    );
}
