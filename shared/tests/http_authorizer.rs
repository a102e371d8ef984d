//! Auth at the edge: the `authorizer` function's decisions (allowed, refused without an
//! error, the verifier's cache, the per-address limit, a failing store), and the API
//! functions' Lambda path trusting `requestContext.authorizer.lambda.username` without any
//! password hashing, while without that context (or in `fraudctl serve`) the old check and
//! its 401 stay.

mod http_common;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use fraudrisk::http::lambda_authorizer::{Authorizer, AuthorizerError, Decision, Refusal};
use fraudrisk::http::login::MAX_FAILURES_PER_ADDRESS;
use fraudrisk::http::{lambda, router, App, Endpoint};
use fraudrisk::ports::{StoreError, UserStore, UserSummary};
use http_common::*;
use serde_json::{json, Value};

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
const WRONG: &str = "Basic bWVybGluOndyb25nLXBhc3M="; // merlin:wrong-pass

fn event(file: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(EVENTS).join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A user store that fails every call: whoever reaches it gets a store error.
struct FailingUsers;

#[async_trait]
impl UserStore for FailingUsers {
    async fn add_user(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::backend("add_user", "the database is down"))
    }
    async fn password_hash(&self, _: &str) -> Result<Option<String>, StoreError> {
        Err(StoreError::backend("password_hash", "the database is down"))
    }
    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        Err(StoreError::backend("list_users", "the database is down"))
    }
    async fn remove_user(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::backend("remove_user", "the database is down"))
    }
}

/// What the predict function answers to `payload`, as `lambda_http::run` hands it over.
async fn predict(app: &Arc<App>, payload: &Value) -> http::Response<Bytes> {
    let request = lambda_http::request::from_str(&payload.to_string()).expect("an HTTP API event");
    let router = router(app.clone(), &[Endpoint::Predict]);
    lambda::api(&router, request).await
}

fn with_header(mut payload: Value, authorization: &str) -> Value {
    payload["headers"]["authorization"] = json!(authorization);
    payload
}

fn without_context(mut payload: Value) -> Value {
    payload["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    payload
}

#[tokio::test]
async fn the_lambda_path_trusts_the_authorizer_context_and_hashes_nothing() {
    let mut state = TestState::new(false, true).await;
    state.config.trust_authorizer = true;
    let app = state.app().await.app;
    let behind_authorizer = event("predict-post-authorizer.json");
    assert!(behind_authorizer["headers"].get("authorization").is_none());

    // The context alone (no Authorization header): answered, logged under the user, no argon2.
    let response = predict(&app, &behind_authorizer).await;
    assert_eq!(response.status(), 200, "{}", text(&response));
    let answer = json(&response);
    assert_eq!(state.stored(&answer).await.username.as_deref(), Some(USER));
    // A wrong header beside the context is not looked at either.
    let response = predict(&app, &with_header(behind_authorizer.clone(), WRONG)).await;
    assert_eq!(response.status(), 200, "{}", text(&response));
    assert_eq!(app.password_checks(), 0);

    // Without the context the function checks the password itself, as before.
    let bare = without_context(behind_authorizer.clone());
    let response = predict(&app, &bare).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let response = predict(&app, &with_header(bare.clone(), WRONG)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.password_checks(), 1);
    let response = predict(&app, &with_header(bare, AUTHORIZATION)).await;
    assert_eq!(response.status(), 200, "{}", text(&response));
    assert_eq!(app.password_checks(), 2);

    // A name no user can have is not trusted: the own check runs (and refuses).
    let mut odd = behind_authorizer.clone();
    odd["requestContext"]["authorizer"]["lambda"]["username"] = json!("no such user!");
    assert_eq!(predict(&app, &odd).await.status(), 401);
}

#[tokio::test]
async fn a_trusted_context_never_reaches_the_user_store() {
    let mut state = TestState::new(false, true).await;
    state.config.trust_authorizer = true;
    let mut services = state.services.clone();
    services.users = Arc::new(FailingUsers);
    let app = Arc::new(App::new(services, &state.config).await.unwrap());
    let behind_authorizer = event("predict-post-authorizer.json");
    let response = predict(&app, &behind_authorizer).await;
    assert_eq!(response.status(), 200, "{}", text(&response));
    // The same request checked by the function itself needs the store: 502.
    let own_check = with_header(without_context(behind_authorizer), AUTHORIZATION);
    assert_eq!(predict(&app, &own_check).await.status(), 502);
}

#[tokio::test]
async fn fraudctl_serve_never_trusts_the_context() {
    // AppConfig::new is fraudctl serve's configuration: trust_authorizer stays false.
    let state = TestState::new(false, true).await;
    assert!(!state.config.trust_authorizer);
    let app = state.app().await.app;
    let response = predict(&app, &event("predict-post-authorizer.json")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(state.logged().await, 0);
}

#[tokio::test]
async fn the_authorizer_allows_the_user_and_refuses_the_rest_without_errors() {
    let state = TestState::new(false, false).await;
    let authorizer = Authorizer::new(state.services.users.clone(), &state.config).unwrap();

    let allowed = authorizer
        .answer(event("authorizer-allowed.json"))
        .await
        .unwrap();
    assert_eq!(
        allowed,
        json!({"isAuthorized": true, "context": {"username": USER}})
    );
    assert_eq!(authorizer.password_checks(), 1);
    // The verifier's own cache: the same pair again costs no hashing.
    let again = authorizer
        .answer(event("authorizer-allowed.json"))
        .await
        .unwrap();
    assert_eq!(again["isAuthorized"], true);
    assert_eq!(authorizer.password_checks(), 1);

    for file in [
        "authorizer-wrong-password.json",
        "authorizer-missing-header.json",
    ] {
        let refused = authorizer.answer(event(file)).await.unwrap();
        assert_eq!(
            refused,
            json!({"isAuthorized": false, "context": {}}),
            "{file}"
        );
    }
    // The wrong password was hashed; the missing header was not.
    assert_eq!(authorizer.password_checks(), 2);

    let decide = |header: &'static str| {
        let authorizer = &authorizer;
        async move { authorizer.decide(Some(header), Some("198.51.100.1")).await }
    };
    // An unknown user costs a hash like a wrong password and gets the same answer.
    let unknown = decide("Basic bm9ib2R5OndpemFyZC1wYXNz").await.unwrap(); // nobody:wizard-pass
    assert_eq!(unknown, Decision::Deny(Refusal::WrongCredentials));
    assert_eq!(authorizer.password_checks(), 3);
    for malformed in ["Bearer abc", "Basic !!!", "Basic bm9jb2xvbg=="] {
        assert_eq!(
            decide(malformed).await.unwrap(),
            Decision::Deny(Refusal::Malformed),
            "{malformed}"
        );
    }
    assert_eq!(authorizer.password_checks(), 3);

    // Not an authorizer event at all: a failed invocation, not a decision.
    assert!(matches!(
        authorizer.answer(json!({"hello": 1})).await,
        Err(AuthorizerError::BadEvent(_))
    ));
}

#[tokio::test]
async fn an_address_out_of_failed_logins_is_refused_without_hashing() {
    let state = TestState::new(false, false).await;
    let authorizer = Authorizer::new(state.services.users.clone(), &state.config).unwrap();
    let attacker = Some("192.0.2.66");
    // The valid pair, verified once: cached from then on.
    assert!(matches!(
        authorizer.decide(Some(AUTHORIZATION), attacker).await,
        Ok(Decision::Allow { .. })
    ));
    for _ in 0..MAX_FAILURES_PER_ADDRESS {
        assert_eq!(
            authorizer.decide(Some(WRONG), attacker).await.unwrap(),
            Decision::Deny(Refusal::WrongCredentials)
        );
    }
    let hashed = authorizer.password_checks();
    assert_eq!(
        authorizer.decide(Some(WRONG), attacker).await.unwrap(),
        Decision::Deny(Refusal::TooManyFailures)
    );
    assert_eq!(authorizer.password_checks(), hashed);
    // A cached valid pair still passes; another address is still checked.
    assert!(matches!(
        authorizer.decide(Some(AUTHORIZATION), attacker).await,
        Ok(Decision::Allow { .. })
    ));
    assert_eq!(
        authorizer
            .decide(Some(WRONG), Some("192.0.2.67"))
            .await
            .unwrap(),
        Decision::Deny(Refusal::WrongCredentials)
    );
    assert_eq!(authorizer.password_checks(), hashed + 1);
}

#[tokio::test]
async fn a_failing_user_store_fails_the_invocation() {
    let state = TestState::new(false, false).await;
    let authorizer = Authorizer::new(Arc::new(FailingUsers), &state.config).unwrap();
    let result = authorizer.answer(event("authorizer-allowed.json")).await;
    assert!(
        matches!(result, Err(AuthorizerError::Store(_))),
        "{result:?}"
    );
    // A refusal that needs no store is still a refusal.
    let refused = authorizer
        .answer(event("authorizer-missing-header.json"))
        .await
        .unwrap();
    assert_eq!(refused["isAuthorized"], false);
}
