//! `POST /monitor`: the monitor over a window of served predictions (query `since`, `until`,
//! RFC 3339), answered with its report; and the route's OpenAPI operation.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response, StatusCode};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Required, SchemaFormat};

use super::error::json_response;
use super::handlers::query_pairs;
use super::openapi::{common_refusals, error_response, json_response as json_answer, reference};
use super::strict_json;
use super::{ApiError, App};
use crate::monitor::MonitorSettings;
use crate::pipeline::{monitor_and_record, MonitorRequest};
use crate::schema::FieldError;

/// The window a request names, every bad parameter listed.
fn window(request: &Request<Bytes>) -> Result<MonitorRequest, ApiError> {
    let mut errors = Vec::new();
    let mut window = MonitorRequest::default();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in query_pairs(request) {
        let slot = match key.as_ref() {
            "since" => &mut window.since,
            "until" => &mut window.until,
            _ => {
                errors.push(FieldError::new(
                    &key,
                    "is not a parameter of monitor (only since and until)".to_string(),
                    None,
                ));
                continue;
            }
        };
        if seen.iter().any(|k| *k == key) {
            errors.push(FieldError::new(
                &key,
                "is given more than once".to_string(),
                None,
            ));
            continue;
        }
        seen.push(key.to_string());
        match DateTime::parse_from_rfc3339(value.trim()) {
            Ok(time) => *slot = Some(time.with_timezone(&Utc)),
            Err(_) => errors.push(FieldError::new(
                &key,
                "must be an RFC 3339 time such as 2026-11-01T00:00:00Z".to_string(),
                Some(value.to_string()),
            )),
        }
    }
    if let (Some(since), Some(until)) = (window.since, window.until) {
        if since >= until {
            errors.push(FieldError::new(
                "until",
                "must be after since".to_string(),
                Some(until.to_rfc3339()),
            ));
        }
    }
    if !strict_json::is_blank(request.body()) {
        errors.push(FieldError::new(
            "body",
            "must be empty: the window is given in the query (since, until)".to_string(),
            None,
        ));
    }
    if errors.is_empty() {
        Ok(window)
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// `POST /monitor`.
pub(super) async fn monitor(
    app: &App,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ApiError> {
    let window = window(request)?;
    // `fraudctl serve` logs in the background: what it answered belongs in the window.
    app.log.flush().await;
    let settings = MonitorSettings {
        drift: app.settings.drift.clone(),
        ..MonitorSettings::default()
    };
    let report = monitor_and_record(app.services(), window, &settings).await?;
    Ok(json_response(StatusCode::OK, &report))
}

/// The OpenAPI operation of `POST /monitor`.
pub(super) fn path_item() -> PathItem {
    let time = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            ))
    };
    PathItem::new(
        HttpMethod::Post,
        OperationBuilder::new()
            .operation_id(Some("monitor"))
            .summary(Some(
                "Watch what was served: drift, score drift, data quality, realized performance",
            ))
            .description(Some(
                "The monitor over the predictions served in the window (default: since the \
                 champion's promotion) against the champion's training data: input drift, \
                 the Kolmogorov-Smirnov test on P(fraud) and the fraud-decision rate, data \
                 quality of the logged inputs, realized performance per version, ISO week and \
                 segment on the predictions with outcomes, and alerts. Reads only; the run is \
                 recorded in the `fraudrisk-monitoring` experiment. No body.",
            ))
            .parameter(time(
                "since",
                "Predictions made at or after this time (RFC 3339); default: the champion's promotion.",
            ))
            .parameter(time(
                "until",
                "Predictions made before this time (RFC 3339, after since); default: no bound.",
            ))
            .responses(common_refusals(false))
            .response(
                "200",
                json_answer("the monitor's report", reference("MonitorReport")),
            )
            .response(
                "409",
                error_response("no model has been trained yet, or there is no reference data"),
            )
            .response(
                "422",
                error_response(
                    "a parameter broke a rule (a time that is not RFC 3339, until not after \
                     since, an unknown parameter, a body), every one listed",
                ),
            ),
    )
}
