//! Every file in `events/` through its Lambda function's handler, as the runtime would call
//! it: API Gateway events are decoded by lambda_http and answered by the function's router
//! (hello with its jobs route, predict, outcomes: what `lambda_http::run` serves),
//! `lambda_jobs::initialtrain_event`, `lambda::retrain_event` or
//! `lambda_monitor::monitor_event` (initialtrain and retrain also take job events, retrain
//! and monitor EventBridge events); a 202 answer's job is followed to its end, as a client
//! would; S3 events go to `ingest::ingest_event` as
//! functions/ingest hands them over; authorizer events to `lambda_authorizer::Authorizer`
//! over the same users. The API functions trust the authorizer's context, as in Lambda. Expectations live in `events/manifest.json`; a file missing from it fails.

mod http_common;

use std::collections::BTreeSet;
use std::path::Path;

use fraudrisk::http::lambda_authorizer::Authorizer;
use fraudrisk::http::{lambda, lambda_jobs, lambda_monitor, router, Endpoint};
use fraudrisk::ingest::{ingest_event, IngestStores, IngestTarget};
use fraudrisk::ports::PredictionLogEntry;
use http_common::*;
use serde_json::Value;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");

/// True when `expected` is contained in `actual`: objects key by key, arrays of the same
/// length element by element, `null` for any value that is present.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, _) => true,
        (Value::Object(expected), Value::Object(actual)) => expected
            .iter()
            .all(|(key, e)| actual.get(key).is_some_and(|a| contains(a, e))),
        (Value::Array(expected), Value::Array(actual)) => {
            expected.len() == actual.len()
                && expected.iter().zip(actual).all(|(e, a)| contains(a, e))
        }
        (expected, actual) => expected == actual,
    }
}

/// What a function answered: the HTTP status (None for a scheduled run), a header lookup
/// and the body.
struct Answer {
    status: Option<u16>,
    headers: http::HeaderMap,
    body: String,
}

async fn invoke(
    app: &TestApp,
    authorizer: &Authorizer,
    function: &str,
    text: &str,
    file: &str,
) -> Answer {
    if function == "authorizer" {
        let payload: Value = serde_json::from_str(text).unwrap();
        let output = authorizer
            .answer(payload)
            .await
            .unwrap_or_else(|e| panic!("{file}: the invocation failed: {e}"));
        return Answer {
            status: None,
            headers: http::HeaderMap::new(),
            body: output.to_string(),
        };
    }
    if function == "ingest" {
        // What functions/ingest does over the local store: the prefix is the template's.
        let payload: Value = serde_json::from_str(text).unwrap();
        let services = app.services();
        let stores = IngestStores {
            records: services.records.as_ref(),
            outcomes: services.outcomes.as_ref(),
            objects: services.artifacts.as_ref(),
        };
        let target = IngestTarget::local();
        let files = ingest_event(&stores, &target, &payload)
            .await
            .unwrap_or_else(|e| panic!("{file}: the invocation failed: {e}"));
        return Answer {
            status: None,
            headers: http::HeaderMap::new(),
            body: serde_json::json!({ "files": files }).to_string(),
        };
    }
    let endpoint = Endpoint::ALL
        .into_iter()
        .find(|e| e.name() == function)
        .unwrap_or_else(|| panic!("{file}: unknown function {function}"));
    let raw_payload = [Endpoint::InitialTrain, Endpoint::Retrain, Endpoint::Monitor];
    if raw_payload.contains(&endpoint) {
        // The functions that also take job or EventBridge events, as their main.rs hands
        // them over.
        let payload: Value = serde_json::from_str(text).unwrap();
        let output = if endpoint == Endpoint::InitialTrain {
            let router = router(app.app.clone(), &[Endpoint::InitialTrain]);
            lambda_jobs::initialtrain_event(app, &router, payload).await
        } else if endpoint == Endpoint::Retrain {
            let router = lambda::retrain_router(app.app.clone());
            lambda::retrain_event(app, &router, payload).await
        } else {
            let router = lambda_monitor::monitor_router(app.app.clone());
            lambda_monitor::monitor_event(app, &router, payload).await
        }
        .unwrap_or_else(|e| panic!("{file}: the invocation failed: {e}"));
        return match output.get("statusCode") {
            Some(status) => {
                let mut headers = http::HeaderMap::new();
                for (name, value) in output["headers"].as_object().unwrap() {
                    headers.insert(
                        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        value.as_str().unwrap().parse().unwrap(),
                    );
                }
                assert_eq!(output["isBase64Encoded"], false, "{file}");
                Answer {
                    status: Some(status.as_u64().unwrap() as u16),
                    headers,
                    body: output["body"].as_str().unwrap_or_default().to_string(),
                }
            }
            None => Answer {
                status: None,
                headers: http::HeaderMap::new(),
                body: output.to_string(),
            },
        };
    }
    let request = lambda_http::request::from_str(text)
        .unwrap_or_else(|e| panic!("{file}: not an API Gateway HTTP API event: {e}"));
    // functions/hello serves the jobs route too.
    let endpoints: &[Endpoint] = match endpoint {
        Endpoint::Hello => &[Endpoint::Hello, Endpoint::Jobs],
        _ => &[endpoint],
    };
    let router = router(app.app.clone(), endpoints);
    let response = lambda::api(&router, request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = String::from_utf8(response.body().to_vec())
        .unwrap_or_else(|_| panic!("{file}: binary body"));
    Answer {
        status: Some(status),
        headers,
        body,
    }
}

/// Follows the job of a 202 answer until it has finished, as a client polling
/// `GET /jobs/{job_id}` would, so the next event does not find it running.
async fn follow_job(app: &TestApp, body: &str) {
    let Some(id) = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b["job_id"].as_str().and_then(|t| t.parse().ok()))
    else {
        return;
    };
    for _ in 0..600 {
        let job = app.services().jobs.job(id).await.expect("job lookup");
        if job.is_some_and(|j| !j.state.is_active()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish within 60 s");
}

/// Stores the manifest's seeded jobs, queued (the job events run them).
async fn seed_jobs(state: &TestState, seeded: &Value) {
    for seed in seeded.as_array().expect("seed_jobs") {
        let mut job = fraudrisk::ports::Job::queued(
            fraudrisk::ports::JobKind::parse(seed["kind"].as_str().unwrap()).expect("a kind"),
            seed["parameters"].clone(),
            Some(USER),
        );
        job.job_id = seed["job_id"].as_str().unwrap().parse().expect("a UUID");
        let created = state
            .services
            .jobs
            .create_job(&job, std::time::Duration::from_secs(900))
            .await
            .expect("seeded job");
        assert!(matches!(created, fraudrisk::ports::JobCreated::Queued(_)));
    }
}

/// Logs the manifest's seeded predictions (fixed ids the outcomes events report on).
async fn seed_predictions(state: &TestState, seeded: &Value) {
    let entries: Vec<PredictionLogEntry> = seeded["prediction_ids"]
        .as_array()
        .expect("seed_predictions.prediction_ids")
        .iter()
        .map(|id| PredictionLogEntry {
            prediction_id: id.as_str().and_then(|t| t.parse().ok()).expect("a UUID"),
            created_at: chrono::Utc::now(),
            model_version: 1,
            threshold: 0.5,
            probability_of_fraud: 0.25,
            fraud: false,
            features: seeded["features"].clone(),
            username: Some(USER.to_string()),
            reason_codes: Vec::new(),
        })
        .collect();
    state
        .services
        .predictions
        .log_predictions(&entries)
        .await
        .expect("seeded predictions");
}

#[tokio::test]
async fn every_event_file_runs_through_its_function() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(EVENTS).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["test_user"]["username"], USER);
    assert_eq!(manifest["test_user"]["password"], PASSWORD);
    assert_eq!(manifest["test_user"]["authorization"], AUTHORIZATION);

    let files: BTreeSet<String> = std::fs::read_dir(EVENTS)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") && name != "manifest.json")
        .collect();
    let events = manifest["events"].as_object().unwrap();
    let listed: BTreeSet<String> = events.keys().cloned().collect();
    let unlisted: Vec<_> = files.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&files).collect();
    assert!(
        unlisted.is_empty(),
        "events/ files missing from events/manifest.json: {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "manifest entries without a file: {missing:?}"
    );

    let mut state = TestState::new(false, true).await;
    // As the Lambda functions are configured (lambda::lambda_config).
    state.config.trust_authorizer = true;
    seed_predictions(&state, &manifest["seed_predictions"]).await;
    seed_jobs(&state, &manifest["seed_jobs"]).await;
    for (key, content) in manifest["seed_objects"].as_object().expect("seed_objects") {
        state
            .services
            .artifacts
            .put(
                key,
                content.as_str().unwrap().as_bytes().to_vec(),
                "text/csv",
            )
            .await
            .expect("seeded object");
    }
    let app = state.app().await;
    let authorizer = Authorizer::new(state.services.users.clone(), &state.config).unwrap();
    let mut failures = Vec::new();
    for (file, expect) in events {
        let text = std::fs::read_to_string(Path::new(EVENTS).join(file)).unwrap();
        let function = expect["function"].as_str().unwrap();
        let logged_before = state.logged().await;
        let answer = invoke(&app, &authorizer, function, &text, file).await;
        if answer.status == Some(202) {
            follow_job(&app, &answer.body).await;
        }
        let logged = state.logged().await - logged_before;

        let mut problems = Vec::new();
        match (expect.get("status"), answer.status) {
            (Some(want), Some(got)) if want.as_u64() == Some(u64::from(got)) => {}
            (None, None) if expect["invocation"] == "ok" => {}
            (want, got) => problems.push(format!("status {got:?}, expected {want:?}")),
        }
        if let Some(wanted) = expect.get("expect_json") {
            match serde_json::from_str::<Value>(&answer.body) {
                Ok(body) if contains(&body, wanted) => {}
                _ => problems.push(format!("body does not contain {wanted}")),
            }
        }
        for wanted in expect["expect_text"].as_array().into_iter().flatten() {
            if !answer.body.contains(wanted.as_str().unwrap()) {
                problems.push(format!("body does not contain {wanted}"));
            }
        }
        match answer.status {
            Some(401) if !answer.headers.contains_key("www-authenticate") => {
                problems.push("401 without WWW-Authenticate".to_string())
            }
            Some(405) if !answer.headers.contains_key("allow") => {
                problems.push("405 without Allow".to_string())
            }
            Some(status) if status >= 400 => {
                if serde_json::from_str::<Value>(&answer.body)
                    .ok()
                    .and_then(|b| b.get("error").cloned())
                    .is_none()
                {
                    problems.push("an error without {\"error\": ...}".to_string());
                }
                if logged != 0 {
                    problems.push(format!("{logged} predictions logged for a refused request"));
                }
            }
            Some(200) if function == "predict" && logged == 0 => {
                problems.push("a prediction that was not logged".to_string())
            }
            _ => {}
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{file}: {} — body: {}",
                problems.join("; "),
                answer.body
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
