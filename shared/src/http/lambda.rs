//! The glue between AWS Lambda and [`App`]: the app and its router built from the
//! environment, and the handler of `retrain`'s shapes (logging: [`crate::telemetry`]).
//! `hello`, `predict` and `outcomes` hand their router to `lambda_http::run` directly;
//! `initialtrain` takes job events too (see [`super::lambda_jobs`]).
//!
//! API Gateway HTTP API (payload 2.0) is the supported front door. Routing does not depend on
//! the stage: a named stage puts `/prod/predict` in `rawPath` (and lambda_http keeps or even
//! adds it); the router strips what precedes the route, as it does in `fraudctl serve`.
//!
//! `retrain` is invoked by API Gateway, by EventBridge and with its own training jobs
//! (see [`super::lambda_jobs`]); [`retrain_event`] tells them apart by shape (see [`RetrainEvent::classify`]). For a scheduled run the mode comes from, in
//! order: the event's `detail.mode`, a top-level `mode` (a rule's or a schedule's constant
//! input such as `{"mode": "if-drift"}`), the environment variable [`ENV_RETRAIN_MODE`], and
//! finally `always`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use bytes::Bytes;
use http::Response;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::Body;
use serde_json::Value;

use super::{router, App, AppConfig, AppError, Endpoint};
use crate::pipeline::{PipelineError, RetrainMode};

/// Where the embedded adapters keep their state inside Lambda (the only writable folder).
pub const DEFAULT_LAMBDA_STATE_DIR: &str = "/tmp/fraudrisk";
pub use crate::config::ENV_RETRAIN_MODE;

/// The state folder: [`ENV_STATE_DIR`](super::ENV_STATE_DIR) or [`DEFAULT_LAMBDA_STATE_DIR`].
pub fn state_dir() -> PathBuf {
    crate::config::process::state_dir().unwrap_or_else(|| PathBuf::from(DEFAULT_LAMBDA_STATE_DIR))
}

/// The key of the user name in the authorizer's context
/// (`requestContext.authorizer.lambda.username`).
pub const AUTHORIZER_USERNAME: &str = "username";

/// The settings of an API function in Lambda: [`AppConfig::from_env`], trusting the
/// authorizer's context (see [`authorizer_username`]).
pub fn lambda_config() -> Result<AppConfig, AppError> {
    let mut config = AppConfig::from_env(state_dir())?;
    config.trust_authorizer = true;
    Ok(config)
}

/// The container's state, from the environment. Predictions are logged within each
/// invocation: a frozen container cannot finish background work.
pub async fn app_from_env() -> Result<Arc<App>, AppError> {
    Ok(Arc::new(App::from_config(&lambda_config()?).await?))
}

/// The user API Gateway's Lambda authorizer allowed: `requestContext.authorizer.lambda.username`
/// of an HTTP API event. API Gateway writes that context only after the authorizer answered
/// `isAuthorized: true` (a client cannot set it); whoever invokes a function directly needs
/// `lambda:InvokeFunction`, so is trusted already. `None` outside Lambda, without an
/// authorizer, or for a name no user could have.
pub fn authorizer_username(extensions: &http::Extensions) -> Option<String> {
    let Some(RequestContext::ApiGatewayV2(context)) = extensions.get::<RequestContext>() else {
        return None;
    };
    let name = context
        .authorizer
        .as_ref()?
        .fields
        .get(AUTHORIZER_USERNAME)?
        .as_str()?;
    crate::auth::is_valid_username(name).then(|| name.to_string())
}

/// Answers an API Gateway request with `router`, as `lambda_http::run` would.
pub async fn api(router: &Router, request: lambda_http::Request) -> Response<Bytes> {
    router::call(router, request.map(axum::body::Body::new)).await
}

/// Why a `retrain` or `monitor` invocation failed (Lambda reports it as a failed invocation).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Neither an API Gateway, an EventBridge nor a job event.
    #[error(
        "unrecognised event: expected an API Gateway HTTP API (payload 2.0) event, an \
         EventBridge Scheduled Event, a job event ({{\"job_id\": ..., \"kind\": ...}}), or a \
         constant input ({{\"mode\": \"always\" | \"if-drift\"}} for retrain, {{\"since\": ..., \"until\": ...}} for monitor)"
    )]
    Unrecognised,
    /// Looks like API Gateway but does not decode as payload 2.0.
    #[error("invalid API Gateway event: {0}")]
    BadApiEvent(String),
    /// Has a `job_id` but is no job event (`{"job_id": UUID, "kind": ...}`).
    #[error("invalid job event: {0}")]
    BadJob(String),
    /// A job's state could not be read or stored.
    #[error("the job's state could not be stored: {0}")]
    JobStore(#[from] crate::ports::StoreError),
    /// A mode other than `always` or `if-drift`.
    #[error("invalid retrain mode {0:?}: use \"always\" or \"if-drift\"")]
    BadMode(String),
    /// A scheduled monitor's window is not RFC 3339.
    #[error("invalid monitor window: {0} (use RFC 3339 times such as 2026-11-01T00:00:00Z)")]
    BadWindow(String),
    /// The scheduled retrain (or monitor) itself failed.
    #[error("scheduled run failed: {0}")]
    Retrain(#[from] PipelineError),
    /// The answer could not be serialised.
    #[error("cannot encode the answer: {0}")]
    Encode(String),
}

/// The two shapes `retrain` is invoked with.
#[derive(Debug)]
pub enum RetrainEvent {
    /// `POST /retrain` through API Gateway.
    Api(Box<ApiGatewayV2httpRequest>),
    /// EventBridge (a Scheduled Event, or a constant input), with the mode it names.
    Scheduled { mode: Option<String> },
    /// A training job handed over by `POST /retrain` (asynchronous invocation).
    Job(super::lambda_jobs::JobEvent),
}

impl RetrainEvent {
    /// Tells the shapes apart: `requestContext` marks API Gateway; `detail-type` or
    /// `"source": "aws.events"` marks EventBridge; an object with at most a `mode` key is a
    /// schedule's constant input (or a manual `cargo lambda invoke`).
    pub fn classify(payload: Value) -> Result<Self, EventError> {
        let Value::Object(object) = &payload else {
            return Err(EventError::Unrecognised);
        };
        let text = |value: Option<&Value>| -> Result<Option<String>, EventError> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(mode)) => Ok(Some(mode.clone())),
                Some(other) => Err(EventError::BadMode(other.to_string())),
            }
        };
        if let Some(job) = super::lambda_jobs::JobEvent::from_payload(&payload)? {
            return Ok(RetrainEvent::Job(job));
        }
        if object.contains_key("requestContext") {
            let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
                .map_err(|e| EventError::BadApiEvent(e.to_string()))?;
            return Ok(RetrainEvent::Api(Box::new(request)));
        }
        let from_eventbridge = object.contains_key("detail-type")
            || object.get("source").and_then(Value::as_str) == Some("aws.events");
        if from_eventbridge {
            let detail_mode = text(object.get("detail").and_then(|d| d.get("mode")))?;
            let mode = match detail_mode {
                Some(mode) => Some(mode),
                None => text(object.get("mode"))?,
            };
            return Ok(RetrainEvent::Scheduled { mode });
        }
        if object.keys().all(|key| key == "mode") {
            return Ok(RetrainEvent::Scheduled {
                mode: text(object.get("mode"))?,
            });
        }
        Err(EventError::Unrecognised)
    }
}

/// The mode of a scheduled run: the event's, else [`ENV_RETRAIN_MODE`], else `always`.
pub fn scheduled_mode(from_event: Option<&str>) -> Result<RetrainMode, EventError> {
    let from_env = crate::config::process::retrain_mode();
    match from_event.or(from_env.as_deref()) {
        None => Ok(RetrainMode::Always),
        Some(text) => {
            RetrainMode::parse(text.trim()).ok_or_else(|| EventError::BadMode(text.to_string()))
        }
    }
}

/// The router of the `retrain` function.
pub fn retrain_router(app: Arc<App>) -> Router {
    router(app, &[Endpoint::Retrain])
}

/// The `retrain` function: an API Gateway event gets an API Gateway answer (with any status,
/// as for the other functions); a scheduled event runs the retrain and answers with its
/// summary, or fails the invocation so Lambda's retry and error metrics see it.
pub async fn retrain_event(
    app: &App,
    router: &Router,
    payload: Value,
) -> Result<Value, EventError> {
    match RetrainEvent::classify(payload)? {
        RetrainEvent::Api(event) => {
            let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(*event).into();
            api_gateway_v2_response(api(router, request).await)
        }
        RetrainEvent::Job(job) => super::lambda_jobs::job_event(app, job).await,
        RetrainEvent::Scheduled { mode } => {
            let mode = scheduled_mode(mode.as_deref())?;
            tracing::info!(mode = mode.as_str(), "scheduled retrain");
            let summary = app.services().retrain(&app.settings, mode).await;
            app.champion().invalidate();
            let summary = summary.inspect_err(
                |error| tracing::error!(%error, mode = mode.as_str(), "scheduled retrain failed"),
            )?;
            tracing::info!(
                outcome = ?summary.outcome,
                champion_version = summary.champion_version,
                "scheduled retrain finished"
            );
            serde_json::to_value(&summary).map_err(|e| EventError::Encode(e.to_string()))
        }
    }
}

pub(super) fn api_gateway_v2_response(response: Response<Bytes>) -> Result<Value, EventError> {
    let (parts, bytes) = response.into_parts();
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.headers = parts.headers;
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => {
            answer.body = (!text.is_empty()).then_some(Body::Text(text));
            answer.is_base64_encoded = false;
        }
        Err(error) => {
            answer.body = Some(Body::Binary(error.into_bytes()));
            answer.is_base64_encoded = true;
        }
    }
    serde_json::to_value(&answer).map_err(|e| EventError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_are_told_apart() {
        let scheduled = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2024-01-01T13:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": {"mode": "if-drift"}
        });
        assert!(matches!(
            RetrainEvent::classify(scheduled),
            Ok(RetrainEvent::Scheduled { mode: Some(m) }) if m == "if-drift"
        ));
        assert!(matches!(
            RetrainEvent::classify(json!({"detail-type": "Scheduled Event", "detail": {}})),
            Ok(RetrainEvent::Scheduled { mode: None })
        ));
        assert!(matches!(
            RetrainEvent::classify(json!({"mode": "always"})),
            Ok(RetrainEvent::Scheduled { mode: Some(m) }) if m == "always"
        ));
        assert!(matches!(
            RetrainEvent::classify(json!({})),
            Ok(RetrainEvent::Scheduled { mode: None })
        ));
        assert!(matches!(
            RetrainEvent::classify(json!({"mode": 3})),
            Err(EventError::BadMode(_))
        ));
        assert!(matches!(
            RetrainEvent::classify(json!({"hello": 1})),
            Err(EventError::Unrecognised)
        ));
        assert!(matches!(
            RetrainEvent::classify(json!([1])),
            Err(EventError::Unrecognised)
        ));
    }

    #[test]
    fn scheduled_mode_prefers_the_event() {
        assert_eq!(
            scheduled_mode(Some("if-drift")).ok(),
            Some(RetrainMode::IfDrift)
        );
        assert!(matches!(
            scheduled_mode(Some("sometimes")),
            Err(EventError::BadMode(_))
        ));
    }
}
