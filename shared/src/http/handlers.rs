//! The endpoints. Each parses and validates its input completely before it touches a store.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::answer::{one_answer, BatchAnswer, PredictionAnswer};
use super::error::json_response;
use super::html::{self, Outcome};
use super::jobs::{self, Training};
use super::strict_json::{self, StrictJsonError};
use super::{ApiError, App, BROKEN_CHAMPION_HINT, NO_MODEL_HINT};
use crate::pipeline::{self, PipelineError, RetrainMode, ServedPrediction};
use crate::request::applicants_from_json;
use crate::schema::{Applicant, FieldError, FieldValue};

/// The answer of `GET /hello`.
#[derive(Serialize, ToSchema)]
pub(super) struct Hello {
    /// Always "hello" (the seed's answer).
    message: &'static str,
    /// The version that serves predictions; null before the first training or when broken.
    champion_version: Option<u32>,
    /// Why the champion cannot serve, when its files are missing or damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    champion_error: Option<String>,
    /// What to do about a missing or broken champion.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'static str>,
}

/// `GET /hello`: the seed's liveness answer plus the champion's version; says whether the
/// champion is absent (no training yet) or broken (its files cannot be used).
pub(super) async fn hello(app: &App) -> Response<Bytes> {
    let answer = match app.champion.get().await {
        Ok(champion) => Hello {
            message: "hello",
            champion_version: Some(champion.pointer.version),
            champion_error: None,
            hint: None,
        },
        Err(PipelineError::NoChampion) => Hello {
            message: "hello",
            champion_version: None,
            champion_error: None,
            hint: Some(NO_MODEL_HINT),
        },
        Err(error) => {
            tracing::warn!(%error, "the champion cannot be served");
            Hello {
                message: "hello",
                champion_version: None,
                champion_error: Some(format!("the champion is broken: {error}")),
                hint: Some(BROKEN_CHAMPION_HINT),
            }
        }
    };
    json_response(StatusCode::OK, &answer)
}

/// `POST /initialtrain`: a job that trains on the reference rows and promotes the result
/// (202; `?wait=true` runs it here, 200). `force=true` (query or JSON body) replaces a
/// champion that a retrain promoted; without it the job fails with a 409's error.
pub(super) async fn initial_train(
    app: &Arc<App>,
    request: &Request<Bytes>,
    username: &str,
) -> Result<Response<Bytes>, ApiError> {
    const ONLY_FORCE: &str =
        "is not a parameter of initialtrain (only force, and wait in the query)";
    const FORCE_RULE: &str = "must be true or false";
    let mut errors = Vec::new();
    let mut force: Option<bool> = None;
    let mut wait: Option<bool> = None;
    for (key, value) in query_pairs(request) {
        if key == "wait" {
            match jobs::wait_parameter(&value, wait.is_some()) {
                Ok(flag) => wait = Some(flag),
                Err(error) => errors.push(error),
            }
        } else if key != "force" {
            errors.push(FieldError::new(&key, ONLY_FORCE.to_string(), None));
        } else if force.is_some() {
            errors.push(FieldError::new(&key, "is given twice".to_string(), None));
        } else {
            match value.as_ref() {
                "true" => force = Some(true),
                "false" => force = Some(false),
                other => errors.push(FieldError::new(
                    "force",
                    FORCE_RULE.to_string(),
                    Some(other.to_string()),
                )),
            }
        }
    }
    if let Some(object) = optional_json_object(request)? {
        for (key, value) in object {
            match (key.as_str(), value) {
                ("force", serde_json::Value::Bool(flag)) => match force {
                    None => force = Some(flag),
                    Some(given) if given == flag => {}
                    Some(given) => errors.push(FieldError::new(
                        "force",
                        format!("is {given} in the query but {flag} in the body"),
                        None,
                    )),
                },
                ("force", other) => errors.push(FieldError::new(
                    "force",
                    FORCE_RULE.to_string(),
                    Some(other.to_string()),
                )),
                (other, _) => errors.push(FieldError::new(other, ONLY_FORCE.to_string(), None)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let training = Training::Initial {
        force: force.unwrap_or(false),
    };
    jobs::start(app, training, wait.unwrap_or(false), username, request).await
}

/// `POST /retrain`: a job of drift test, challenger, promotion (202; `?wait=true` runs it
/// here, 200); `mode` from the query or the body.
pub(super) async fn retrain(
    app: &Arc<App>,
    request: &Request<Bytes>,
    username: &str,
) -> Result<Response<Bytes>, ApiError> {
    let mut errors = Vec::new();
    let mut from_query: Option<String> = None;
    let mut wait: Option<bool> = None;
    for (key, value) in query_pairs(request) {
        if key == "wait" {
            match jobs::wait_parameter(&value, wait.is_some()) {
                Ok(flag) => wait = Some(flag),
                Err(error) => errors.push(error),
            }
        } else if key == "mode" && from_query.is_none() {
            from_query = Some(value.into_owned());
        } else {
            errors.push(FieldError::new(
                &key,
                if key == "mode" {
                    "is given more than once".to_string()
                } else {
                    "is not a parameter of retrain (only mode, and wait in the query)".to_string()
                },
                None,
            ));
        }
    }
    let mut from_body: Option<String> = None;
    if let Some(object) = optional_json_object(request)? {
        for (key, value) in object {
            match (key.as_str(), value) {
                ("mode", serde_json::Value::String(mode)) => from_body = Some(mode),
                ("mode", other) => errors.push(FieldError::new(
                    "mode",
                    "must be the string \"always\" or \"if-drift\"".to_string(),
                    Some(other.to_string()),
                )),
                (key, _) => errors.push(FieldError::new(
                    key,
                    "is not a parameter of retrain (only mode, and wait in the query)".to_string(),
                    None,
                )),
            }
        }
    }
    if let (Some(query), Some(body)) = (&from_query, &from_body) {
        if query != body {
            errors.push(FieldError::new(
                "mode",
                format!("is {query:?} in the query but {body:?} in the body"),
                None,
            ));
        }
    }
    let mode = match from_query.or(from_body) {
        None => Some(RetrainMode::Always),
        Some(text) => {
            let mode = RetrainMode::parse(&text);
            if mode.is_none() {
                errors.push(mode_error(&text));
            }
            mode
        }
    };
    let mode = match mode {
        Some(mode) if errors.is_empty() => mode,
        _ => return Err(ApiError::invalid(errors)),
    };
    jobs::start(
        app,
        Training::Retrain { mode },
        wait.unwrap_or(false),
        username,
        request,
    )
    .await
}

/// The 422 entry for a mode that is neither `always` nor `if-drift`.
pub(crate) fn mode_error(text: &str) -> FieldError {
    FieldError::new(
        "mode",
        "must be \"always\" or \"if-drift\"".to_string(),
        Some(text.to_string()),
    )
}

/// `GET /predict?<20 fields>`: JSON, or the HTML page for browsers.
pub(super) async fn predict_get(
    app: &App,
    request: &Request<Bytes>,
    user: &str,
) -> Result<Response<Bytes>, ApiError> {
    let pairs = query_pairs(request);
    if wants_html(request.headers()) {
        return Ok(predict_page(app, &pairs, user).await);
    }
    let applicant = Applicant::from_fields(
        pairs
            .iter()
            .map(|(key, value)| (key.as_ref(), FieldValue::Text(value.as_ref()))),
    )
    .map_err(|errors| ApiError::invalid(errors.0))?;
    let served = score(app, &[applicant], user).await?;
    one_answer(&served)
}

/// `POST /predict`: one JSON object, or `{"records": [...]}` for a batch.
pub(super) async fn predict_post(
    app: &App,
    request: &Request<Bytes>,
    user: &str,
) -> Result<Response<Bytes>, ApiError> {
    require_json(request.headers())?;
    let body = parse_body(request.body())?;
    let (applicants, batch) = applicants_from_json(&body)?;
    let served = score(app, &applicants, user).await?;
    if batch {
        let predictions = served
            .iter()
            .map(PredictionAnswer::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json_response(StatusCode::OK, &BatchAnswer { predictions }))
    } else {
        one_answer(&served)
    }
}

/// A JSON body, strictly: a duplicate key is a 422 naming it, like a repeated query field.
pub(super) fn parse_body(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    strict_json::parse(body).map_err(|error| match error {
        StrictJsonError::Malformed(message) => ApiError::MalformedJson(message),
        StrictJsonError::Duplicates(fields) => ApiError::invalid(fields),
    })
}

/// Scores with the champion and logs each prediction. A prediction that cannot be logged
/// is not answered (503).
async fn score(
    app: &App,
    applicants: &[Applicant],
    user: &str,
) -> Result<Vec<ServedPrediction>, ApiError> {
    let champion = app.champion.get().await.map_err(ApiError::champion)?;
    pipeline::predict_and_log(&champion, applicants, &app.log, Some(user))
        .await
        .map_err(|error| match error {
            PipelineError::Store(error) => {
                tracing::error!(%error, "the prediction log cannot be written");
                ApiError::LogUnavailable
            }
            other => other.into(),
        })
}

async fn predict_page(
    app: &App,
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
    user: &str,
) -> Response<Bytes> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if owned.is_empty() {
        return html_response(StatusCode::OK, html::render(&owned, &Outcome::Form));
    }
    let applicant = Applicant::from_fields(
        owned
            .iter()
            .map(|(key, value)| (key.as_str(), FieldValue::Text(value.as_str()))),
    );
    let applicant = match applicant {
        Ok(applicant) => applicant,
        Err(errors) => {
            return html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                html::render(&owned, &Outcome::Invalid(&errors.0)),
            )
        }
    };
    let scored = score(app, &[applicant], user).await.and_then(|served| {
        served
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("the model returned no prediction".to_string()))
    });
    match scored {
        Ok(served) => html_response(
            StatusCode::OK,
            html::render(
                &owned,
                &Outcome::Result {
                    prediction: &served.prediction,
                    model_version: served.model_version,
                    prediction_id: served.prediction_id,
                },
            ),
        ),
        Err(error) => {
            let status = error.status();
            let outcome = Outcome::Unavailable {
                message: error.to_string(),
                hint: error.hint().map(str::to_string),
            };
            html_response(status, html::render(&owned, &outcome))
        }
    }
}

fn html_response(status: StatusCode, page: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(page));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page needs nothing but its own inline style and its own form.
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub(super) fn query_pairs(request: &Request<Bytes>) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    request
        .uri()
        .query()
        .map(|query| form_urlencoded::parse(query.as_bytes()).collect())
        .unwrap_or_default()
}

/// True when the client prefers HTML to JSON: the `Accept` media ranges are weighed by
/// their q-values (RFC 9110 12.5.1), the more specific range deciding for each type; on a
/// tie JSON wins. `text/html,application/xhtml+xml,...;q=0.9` (a browser) gets HTML;
/// `application/json;q=1, text/html;q=0.1` and `*/*` get JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    let ranges: Vec<(String, f32)> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").map(str::trim))
                .filter_map(|q| q.parse::<f32>().ok())
                .next_back()
                .unwrap_or(1.0);
            Some((
                media,
                if q.is_finite() {
                    q.clamp(0.0, 1.0)
                } else {
                    0.0
                },
            ))
        })
        .collect();
    // The weight of a type: its exact range, else its `type/*`, else `*/*`, else 0.
    let weight = |media: &str| -> f32 {
        let family = format!("{}/*", media.split('/').next().unwrap_or(""));
        [media, family.as_str(), "*/*"]
            .iter()
            .find_map(|wanted| {
                ranges
                    .iter()
                    .find(|(m, _)| m.as_str() == *wanted)
                    .map(|(_, q)| *q)
            })
            .unwrap_or(0.0)
    };
    let html = weight("text/html");
    html > 0.0 && html > weight("application/json")
}

/// 415 unless the body is declared `application/json` (a UTF-8 charset may follow).
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(declared) = declared else {
        return Err(ApiError::UnsupportedMediaType {
            found: "no Content-Type".to_string(),
        });
    };
    let mut parts = declared.split(';');
    let media = parts.next().unwrap_or("").trim();
    let charset_ok = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    if media.eq_ignore_ascii_case("application/json") && charset_ok {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            found: format!("{declared:?}"),
        })
    }
}

/// The JSON object of an optional body: `None` for an empty body.
fn optional_json_object(
    request: &Request<Bytes>,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
    if strict_json::is_blank(request.body()) {
        return Ok(None);
    }
    require_json(request.headers())?;
    match parse_body(request.body())? {
        serde_json::Value::Object(object) => Ok(Some(object)),
        _ => Err(ApiError::invalid(vec![FieldError::new(
            "body",
            "must be a JSON object".to_string(),
            None,
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: http::header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn browsers_get_html_and_clients_json() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&headers(ACCEPT, browser)));
        assert!(!wants_html(&headers(ACCEPT, "*/*")));
        assert!(!wants_html(&headers(ACCEPT, "application/json")));
        assert!(!wants_html(&headers(ACCEPT, "text/html;q=0")));
        assert!(!wants_html(&HeaderMap::new()));
        // q-values decide, not the order or the mere presence of text/html.
        assert!(!wants_html(&headers(
            ACCEPT,
            "application/json;q=1, text/html;q=0.1"
        )));
        assert!(wants_html(&headers(
            ACCEPT,
            "application/json;q=0.5, text/html"
        )));
        assert!(!wants_html(&headers(ACCEPT, "text/html, application/json")));
        assert!(wants_html(&headers(ACCEPT, "text/*")));
    }

    #[test]
    fn json_content_types() {
        assert!(require_json(&headers(CONTENT_TYPE, "application/json")).is_ok());
        assert!(require_json(&headers(CONTENT_TYPE, "Application/JSON; charset=UTF-8")).is_ok());
        assert!(require_json(&headers(
            CONTENT_TYPE,
            "application/json; charset=\"utf-8\""
        ))
        .is_ok());
        assert!(require_json(&headers(CONTENT_TYPE, "application/json; charset=latin1")).is_err());
        assert!(require_json(&headers(CONTENT_TYPE, "text/plain")).is_err());
        assert!(require_json(&headers(CONTENT_TYPE, "application/x-www-form-urlencoded")).is_err());
        assert!(require_json(&HeaderMap::new()).is_err());
    }
}
