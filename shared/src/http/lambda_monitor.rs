//! The `monitor` function's two shapes: `POST /monitor` through API Gateway (the router
//! answers), and the daily EventBridge schedule (a Scheduled Event, or a constant input such
//! as `{"since": "2026-11-01T00:00:00Z"}`), which runs the monitor and records it.

use axum::Router;
use chrono::{DateTime, Utc};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use serde_json::Value;

use super::lambda::{api, api_gateway_v2_response, EventError};
use super::{router, App, Endpoint};
use crate::monitor::MonitorSettings;
use crate::pipeline::{monitor_and_record, MonitorRequest};
use std::sync::Arc;

/// The shapes `monitor` is invoked with.
#[derive(Debug)]
pub enum MonitorEvent {
    /// `POST /monitor` through API Gateway.
    Api(Box<ApiGatewayV2httpRequest>),
    /// EventBridge: the window it names (default: since the champion's promotion).
    Scheduled(MonitorRequest),
}

impl MonitorEvent {
    /// Tells the shapes apart as [`super::lambda::RetrainEvent::classify`] does; a schedule's
    /// window comes from `detail` or the top level (`since`, `until`, RFC 3339).
    pub fn classify(payload: Value) -> Result<Self, EventError> {
        let Value::Object(object) = &payload else {
            return Err(EventError::Unrecognised);
        };
        if object.contains_key("requestContext") {
            let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
                .map_err(|e| EventError::BadApiEvent(e.to_string()))?;
            return Ok(MonitorEvent::Api(Box::new(request)));
        }
        let from_eventbridge = object.contains_key("detail-type")
            || object.get("source").and_then(Value::as_str) == Some("aws.events");
        let window_keys = |o: &serde_json::Map<String, Value>| {
            o.keys().all(|key| key == "since" || key == "until")
        };
        let source = if from_eventbridge {
            match object.get("detail") {
                Some(Value::Object(detail)) if window_keys(detail) && !detail.is_empty() => detail,
                _ => object,
            }
        } else if window_keys(object) {
            object
        } else {
            return Err(EventError::Unrecognised);
        };
        let time = |key: &str| -> Result<Option<DateTime<Utc>>, EventError> {
            match source.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => DateTime::parse_from_rfc3339(text.trim())
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| EventError::BadWindow(format!("{key} {text:?}"))),
                Some(other) => Err(EventError::BadWindow(format!("{key} {other}"))),
            }
        };
        Ok(MonitorEvent::Scheduled(MonitorRequest {
            since: time("since")?,
            until: time("until")?,
        }))
    }
}

/// The router of the `monitor` function.
pub fn monitor_router(app: Arc<App>) -> Router {
    router(app, &[Endpoint::Monitor])
}

/// The `monitor` function: an API Gateway event gets an API Gateway answer; a scheduled
/// event runs the monitor (its MLflow run, its metrics in the log) and answers with the
/// report, or fails the invocation so Lambda's error metric (and its alarm) sees it.
pub async fn monitor_event(
    app: &App,
    router: &Router,
    payload: Value,
) -> Result<Value, EventError> {
    match MonitorEvent::classify(payload)? {
        MonitorEvent::Api(event) => {
            let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(*event).into();
            api_gateway_v2_response(api(router, request).await)
        }
        MonitorEvent::Scheduled(window) => {
            let settings = MonitorSettings {
                drift: app.settings.drift.clone(),
                ..MonitorSettings::default()
            };
            let report = monitor_and_record(app.services(), window, &settings)
                .await
                .inspect_err(|error| tracing::error!(%error, "scheduled monitor failed"))?;
            tracing::info!(
                served = report.window.served,
                champion_version = report.window.champion_version,
                alerts = report.alerts.len(),
                "scheduled monitor finished"
            );
            serde_json::to_value(&report).map_err(|e| EventError::Encode(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_and_windows_are_told_apart() {
        let scheduled = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-12-01T07:00:00Z", "region": "eu-central-1",
            "resources": [], "detail": {}
        });
        assert!(matches!(
            MonitorEvent::classify(scheduled),
            Ok(MonitorEvent::Scheduled(MonitorRequest {
                since: None,
                until: None
            }))
        ));
        let since =
            json!({"detail-type": "Scheduled Event", "detail": {"since": "2026-11-01T00:00:00Z"}});
        match MonitorEvent::classify(since) {
            Ok(MonitorEvent::Scheduled(window)) => {
                assert_eq!(
                    window.since.map(|t| t.to_rfc3339()).as_deref(),
                    Some("2026-11-01T00:00:00+00:00")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            MonitorEvent::classify(json!({"until": "2026-12-01T00:00:00+01:00"})),
            Ok(MonitorEvent::Scheduled(MonitorRequest {
                since: None,
                until: Some(_)
            }))
        ));
        assert!(matches!(
            MonitorEvent::classify(json!({"since": "yesterday"})),
            Err(EventError::BadWindow(_))
        ));
        assert!(matches!(
            MonitorEvent::classify(json!({"mode": "always"})),
            Err(EventError::Unrecognised)
        ));
        assert!(matches!(
            MonitorEvent::classify(json!([1])),
            Err(EventError::Unrecognised)
        ));
    }
}
