//! Training as jobs through the router (as `fraudctl serve` mounts it) and through the
//! Lambda handlers: 202 with a job id and `Location`, the job followed to its summary with
//! `GET /jobs/{job_id}`, `?wait=true` answering the summary at once, 409 naming the active
//! job, a stale job read as `timed_out` and taken over, 404 and 422 for unknown and malformed
//! ids, and the job event of the training functions run once only.

mod http_common;

use std::time::Duration;

use chrono::Utc;
use fraudrisk::http::{lambda, lambda_jobs, router, Endpoint};
use fraudrisk::jobs::TIMED_OUT;
use fraudrisk::ports::{Job, JobCreated, JobKind};
use http::{Method, StatusCode};
use http_common::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn assert_status(response: &http::Response<bytes::Bytes>, status: StatusCode) {
    assert_eq!(
        response.status(),
        status,
        "body: {}",
        String::from_utf8_lossy(response.body())
    );
}

/// Polls `GET /jobs/{id}` until the job is finished (or 60 s pass).
async fn finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let answer = app.handle(get(&format!("/jobs/{id}"))).await;
        assert_status(&answer, StatusCode::OK);
        let job = json(&answer);
        if job["state"] == "succeeded" || job["state"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish within 60 s");
}

#[tokio::test]
async fn retrain_answers_202_and_the_job_reports_its_summary() {
    let state = TestState::new(true, true).await;
    let app = state.app().await;

    let accepted = app
        .handle(post_json("/retrain?mode=always", &json!({})))
        .await;
    assert_status(&accepted, StatusCode::ACCEPTED);
    let body = json(&accepted);
    let id = body["job_id"].as_str().expect("job_id").to_string();
    assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert_eq!(body["kind"], "retrain");
    assert_eq!(body["state"], "queued");
    assert_eq!(body["status_url"], format!("/jobs/{id}"));
    assert_eq!(
        accepted.headers()["location"],
        format!("/jobs/{id}").as_str()
    );

    let job = finished(&app, &id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "retrain");
    assert_eq!(job["parameters"], json!({"mode": "always"}));
    assert_eq!(job["username"], USER);
    assert_eq!(job["summary"]["mode"], "always", "{job}");
    assert!(job["summary"]["drift"]["features"].is_array(), "{job}");
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    assert_eq!(job["error"], Value::Null);
    // The promotion (if any) is seen by the same container at once.
    let version = job["summary"]["champion_version"].as_u64().unwrap();
    assert_eq!(
        json(&app.handle(get("/hello")).await)["champion_version"],
        version
    );

    // Under a stage prefix, as API Gateway may route it.
    let staged = app.handle(get(&format!("/prod/jobs/{id}"))).await;
    assert_status(&staged, StatusCode::OK);
    assert_eq!(json(&staged)["job_id"], id.as_str());
}

#[tokio::test]
async fn a_failed_job_reports_the_error_the_synchronous_call_answers() {
    // No reference rows: initialtrain fails with a 409's error (what to load).
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    let accepted = app.handle(post_json("/initialtrain", &json!({}))).await;
    assert_status(&accepted, StatusCode::ACCEPTED);
    let id = json(&accepted)["job_id"].as_str().unwrap().to_string();
    let job = finished(&app, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["kind"], "initialtrain");
    assert_eq!(job["error"]["code"], "conflict", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reference"),
        "{job}"
    );
    assert_eq!(job["summary"], Value::Null);

    let waited = app
        .handle(post_json("/initialtrain?wait=true", &json!({})))
        .await;
    assert_status(&waited, StatusCode::CONFLICT);
    assert!(json(&waited)["hint"]
        .as_str()
        .unwrap()
        .contains("load-data"));

    // Through a stage or mapping, the job's URL keeps it: the client can follow it as given.
    let staged = app
        .handle(post_json("/v1/fraud/initialtrain", &json!({})))
        .await;
    assert_status(&staged, StatusCode::ACCEPTED);
    let staged_id = json(&staged)["job_id"].as_str().unwrap().to_string();
    let url = format!("/v1/fraud/jobs/{staged_id}");
    assert_eq!(json(&staged)["status_url"], url.as_str());
    assert_eq!(staged.headers()["location"], url.as_str());
    assert_status(&app.handle(get(&url)).await, StatusCode::OK);
    finished(&app, &staged_id).await;
}

#[tokio::test]
async fn one_job_at_a_time_409_names_the_active_job() {
    let state = TestState::new(true, true).await;
    let app = state.app().await;
    let active = Job::queued(JobKind::Retrain, json!({"mode": "always"}), Some(USER));
    assert!(matches!(
        state
            .services
            .jobs
            .create_job(&active, Duration::from_secs(900))
            .await
            .unwrap(),
        JobCreated::Queued(_)
    ));
    for uri in ["/retrain", "/initialtrain", "/retrain?wait=true"] {
        let refused = app.handle(post_json(uri, &json!({}))).await;
        assert_status(&refused, StatusCode::CONFLICT);
        let body = json(&refused);
        assert_eq!(body["job_id"], active.job_id.to_string(), "{uri}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&active.job_id.to_string()),
            "{body}"
        );
        assert!(body["hint"].as_str().unwrap().contains("/jobs/"), "{body}");
    }
    let job = json(&app.handle(get(&format!("/jobs/{}", active.job_id))).await);
    assert_eq!(job["state"], "queued");
}

#[tokio::test]
async fn a_stale_job_reads_as_timed_out_and_does_not_block() {
    let mut state = TestState::new(true, true).await;
    state.config.job_timeout = Duration::from_secs(60);
    let app = state.app().await;
    let mut stale = Job::queued(JobKind::Retrain, json!({"mode": "always"}), None);
    stale.created_at = Utc::now() - chrono::Duration::minutes(5);
    state
        .services
        .jobs
        .create_job(&stale, Duration::from_secs(60))
        .await
        .unwrap();
    state
        .services
        .jobs
        .mark_job_running(stale.job_id)
        .await
        .unwrap()
        .expect("running");

    // Running for a moment only: still running.
    let job = json(&app.handle(get(&format!("/jobs/{}", stale.job_id))).await);
    assert_eq!(job["state"], "running", "{job}");

    // Queued five minutes ago and never started: failed, timed out.
    let mut lost = Job::queued(JobKind::Initialtrain, json!({"force": false}), None);
    lost.created_at = Utc::now() - chrono::Duration::minutes(5);
    state
        .services
        .jobs
        .mark_job_failed(
            stale.job_id,
            &fraudrisk::ports::JobError {
                code: "internal".to_string(),
                message: "test".to_string(),
            },
        )
        .await
        .unwrap();
    state
        .services
        .jobs
        .create_job(&lost, Duration::from_secs(60))
        .await
        .unwrap();
    let job = json(&app.handle(get(&format!("/jobs/{}", lost.job_id))).await);
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], TIMED_OUT, "{job}");
    assert!(job["finished_at"].is_string());

    // It does not block the next training, which marks it failed in the store.
    let trained = app
        .handle(post_json("/retrain?wait=true&mode=if-drift", &json!({})))
        .await;
    assert_status(&trained, StatusCode::OK);
    assert_eq!(json(&trained)["mode"], "if-drift");
    let stored = state.services.jobs.job(lost.job_id).await.unwrap().unwrap();
    assert_eq!(stored.error.map(|e| e.code), Some(TIMED_OUT.to_string()));
}

#[tokio::test]
async fn job_ids_unknown_malformed_and_unauthenticated() {
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    let unknown = Uuid::new_v4();
    let answer = app.handle(get(&format!("/jobs/{unknown}"))).await;
    assert_status(&answer, StatusCode::NOT_FOUND);
    assert!(json(&answer)["error"]
        .as_str()
        .unwrap()
        .contains(&unknown.to_string()));

    let answer = app.handle(get("/jobs/not-a-uuid")).await;
    assert_status(&answer, StatusCode::UNPROCESSABLE_ENTITY);
    let body = json(&answer);
    assert_eq!(body["fields"][0]["field"], "job_id", "{body}");
    assert_eq!(body["fields"][0]["value"], "not-a-uuid", "{body}");

    let anonymous = http::Request::builder()
        .uri(format!("/jobs/{unknown}"))
        .body(bytes::Bytes::new())
        .unwrap();
    assert_status(&app.handle(anonymous).await, StatusCode::UNAUTHORIZED);

    let post = request(Method::POST, &format!("/jobs/{unknown}"))
        .body(bytes::Bytes::new())
        .unwrap();
    assert_status(&app.handle(post).await, StatusCode::METHOD_NOT_ALLOWED);

    for uri in ["/retrain?wait=maybe", "/initialtrain?wait=true&wait=false"] {
        let refused = app.handle(post_json(uri, &json!({}))).await;
        assert_status(&refused, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json(&refused)["fields"][0]["field"], "wait", "{uri}");
    }
}

#[tokio::test]
async fn the_training_functions_run_a_job_event_once() {
    let state = TestState::new(true, false).await;
    let app = state.app().await;
    let jobs = &state.services.jobs;

    // initialtrain: a queued job, handed over as the API function would.
    let initial = Job::queued(JobKind::Initialtrain, json!({"force": false}), Some(USER));
    jobs.create_job(&initial, Duration::from_secs(900))
        .await
        .unwrap();
    let router = router(app.app.clone(), &[Endpoint::InitialTrain]);
    let event = json!({"job_id": initial.job_id, "kind": "initialtrain"});
    let output = lambda_jobs::initialtrain_event(&app, &router, event.clone())
        .await
        .unwrap();
    assert_eq!(output["ran"], true, "{output}");
    assert_eq!(output["job"]["state"], "succeeded", "{output}");
    assert_eq!(output["job"]["summary"]["version"], 1, "{output}");
    // Delivered again (Lambda retries asynchronous invocations): nothing runs.
    let again = lambda_jobs::initialtrain_event(&app, &router, event)
        .await
        .unwrap();
    assert_eq!(again["ran"], false, "{again}");
    assert_eq!(
        json(&app.handle(get("/hello")).await)["champion_version"],
        1
    );

    // retrain: the same shape beside API Gateway and EventBridge events.
    let retrain = Job::queued(JobKind::Retrain, json!({"mode": "if-drift"}), Some(USER));
    jobs.create_job(&retrain, Duration::from_secs(900))
        .await
        .unwrap();
    let router = lambda::retrain_router(app.app.clone());
    let output = lambda::retrain_event(
        &app,
        &router,
        json!({"job_id": retrain.job_id, "kind": "retrain"}),
    )
    .await
    .unwrap();
    assert_eq!(output["job"]["state"], "succeeded", "{output}");
    assert_eq!(output["job"]["summary"]["mode"], "if-drift", "{output}");
    let answer = app.handle(get(&format!("/jobs/{}", retrain.job_id))).await;
    assert_eq!(json(&answer)["summary"], output["job"]["summary"]);

    // A malformed job event fails the invocation, naming the problem.
    let error = lambda::retrain_event(&app, &router, json!({"job_id": "x", "kind": "retrain"}))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid job event"), "{error}");
}
