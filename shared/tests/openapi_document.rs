//! The OpenAPI document: the committed `openapi.json` is what the code generates, and the
//! router serves it without credentials, behind a stage prefix too.
//!
//! After changing the API, regenerate the file with
//! `FRAUDRISK_UPDATE_OPENAPI=1 cargo test -p fraudrisk --test openapi_document`.

mod http_common;

use std::path::PathBuf;

use bytes::Bytes;
use fraudrisk::http::openapi::{document_json, OPENAPI_ROUTE};
use fraudrisk::http::Endpoint;
use fraudrisk::schema::FEATURES;
use http::{Method, Request, StatusCode};
use http_common::*;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.json")
}

#[test]
fn the_committed_document_is_current() {
    let generated = document_json();
    let path = committed_path();
    if std::env::var_os("FRAUDRISK_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "openapi.json is stale: it differs from the generated document from line {}. \
             Regenerate it with `FRAUDRISK_UPDATE_OPENAPI=1 cargo test -p fraudrisk --test \
             openapi_document` and commit it.",
            line + 1
        );
    }
}

/// Every `$ref` in `value`, depth first.
fn references(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner.as_str()) {
                    ("$ref", Some(target)) => found.push(target.to_string()),
                    _ => references(inner, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| references(i, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let document: serde_json::Value =
        serde_json::from_str(&document_json()).expect("the document is JSON");
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.len() > 20, "{} references", found.len());
    let dangling: Vec<&String> = found
        .iter()
        .filter(|target| {
            target
                .strip_prefix("#/")
                .map(|path| document.pointer(&format!("/{path}")).is_none())
                .unwrap_or(true)
        })
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

#[test]
fn the_document_lists_every_field_with_its_domain() {
    let document: serde_json::Value =
        serde_json::from_str(&document_json()).expect("the document is JSON");
    let properties = &document["components"]["schemas"]["Applicant"]["properties"];
    for feature in &FEATURES {
        let field = &properties[feature.name];
        let codes = feature.codes();
        if field["enum"].is_array() {
            let listed: Vec<i64> = field["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_i64)
                .collect();
            assert_eq!(listed, codes, "{}", feature.name);
        } else {
            assert!(
                field["minimum"].is_i64() && field["maximum"].is_i64(),
                "{} has no range: {field}",
                feature.name
            );
        }
    }
    // Every refusal the router can give an authenticated POST /predict is documented.
    let responses = &document["paths"]["/predict"]["post"]["responses"];
    for status in [
        "200", "400", "401", "408", "413", "414", "415", "422", "429", "431", "502", "503",
    ] {
        assert!(
            responses[status].is_object(),
            "POST /predict lacks {status}"
        );
    }
}

#[tokio::test]
async fn the_router_serves_it_without_credentials() {
    let state = TestState::new(false, false).await;
    let app = state.app().await;
    for uri in [OPENAPI_ROUTE, "/prod/openapi.json"] {
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Bytes::new())
            .expect("request");
        let response = app.handle(request).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{uri}"
        );
        assert_eq!(text(&response), document_json(), "{uri}");
    }
    // The Lambda function of /hello serves it; the others do not know the route.
    let request = || {
        Request::builder()
            .uri(OPENAPI_ROUTE)
            .body(Bytes::new())
            .expect("request")
    };
    let hello = app.handle_endpoint(Endpoint::Hello, request()).await;
    assert_eq!(hello.status(), StatusCode::OK);
    let predict = app.handle_endpoint(Endpoint::Predict, request()).await;
    assert_eq!(predict.status(), StatusCode::NOT_FOUND);
    // Only GET (and HEAD) reads it; nothing else is public.
    let post = Request::builder()
        .method(Method::POST)
        .uri(OPENAPI_ROUTE)
        .body(Bytes::new())
        .expect("request");
    assert_eq!(
        app.handle(post).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let hello_without_credentials = Request::builder()
        .uri("/hello")
        .body(Bytes::new())
        .expect("request");
    assert_eq!(
        app.handle(hello_without_credentials).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
