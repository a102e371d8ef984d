//! API errors and the JSON answers they become.
//!
//! Every refusal is `{"error": "...", "fields": [...], "hint": "..."}` (fields and hint only
//! when there is something to say) with the status that names the problem. Dependency
//! failures carry a short message; the full error goes to the log, never to the client.

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::pipeline::PipelineError;
use crate::ports::StoreError;
use crate::request::RequestError;
use crate::schema::FieldError;

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "fraud-risk";

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed or wrong credentials (401).
    #[error("authentication required: HTTP Basic credentials of a registered user")]
    Unauthorized,
    /// No such route (404).
    #[error("no route {0}")]
    NotFound(String),
    /// The route exists but not for this method (405).
    #[error("method {method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// The body is larger than the limit (413).
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A body that is not `application/json` (415).
    #[error("the request body must be JSON: send Content-Type: application/json (got {found})")]
    UnsupportedMediaType { found: String },
    /// The body is not JSON (400).
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// Fields broke their rules; every problem is listed (422).
    #[error("{message}")]
    Invalid {
        message: String,
        fields: Vec<FieldError>,
    },
    /// Another training holds the lock (409).
    #[error("another training is running; try again when it has finished")]
    Busy,
    /// A training job is queued or running already (409, naming it).
    #[error(
        "a {} job is {} already ({}); one training runs at a time",
        .0.kind.as_str(), .0.state.as_str(), .0.job_id
    )]
    JobActive(Box<crate::jobs::Job>),
    /// No job has this id (404).
    #[error("no job {0}")]
    UnknownJob(uuid::Uuid),
    /// The pipeline cannot run in the current state (409), e.g. no reference data.
    #[error("{message}")]
    Conflict { message: String, hint: String },
    /// No model is trained yet (503).
    #[error("no model has been trained yet")]
    NoModel,
    /// The champion's files cannot be read or used (503).
    #[error("the champion model cannot be loaded: {0}")]
    BrokenChampion(String),
    /// A prediction was made but could not be logged, so it is not answered (503).
    #[error("the prediction could not be logged, so it is not answered; see the service log")]
    LogUnavailable,
    /// Too many failed logins from this address or for this user (429).
    #[error("too many failed logins; retry after {retry_after} s")]
    TooManyLogins { retry_after: u64 },
    /// Every password-hashing thread stayed busy for the whole queue wait (503).
    #[error("too many logins are being checked at once; retry in a moment")]
    LoginsBusy,
    /// The request (headers, body and work) took longer than allowed (408).
    #[error("the request took longer than {seconds} s (body included) and was cut off")]
    Timeout { seconds: u64 },
    /// A protocol-level refusal (414, 431, ...) with its status.
    #[error("{message}")]
    Protocol { status: StatusCode, message: String },
    /// A database, artifact store or tracking server failed (502).
    #[error("{0}")]
    Dependency(String),
    /// A fault of this service (500).
    #[error("{0}")]
    Internal(String),
}

/// Every refusal's body.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(super) struct ErrorBody<'a> {
    /// What went wrong, once.
    error: String,
    /// Every field that broke its rule (422 only).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    fields: &'a [FieldError],
    /// What the caller can do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    /// The training job that is queued or running already (409 from the training routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<uuid::Uuid>,
    /// The request's id (also in `x-request-id` and the log); added by the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// The hint given with a 503 when the champion's files cannot be used.
pub const BROKEN_CHAMPION_HINT: &str =
    "the champion's model file is missing or damaged in the artifact store: check the store, \
     then promote a model again (POST /retrain or /initialtrain)";

/// The hint given with a 503 before the first training.
pub const NO_MODEL_HINT: &str =
    "train the first model: POST /initialtrain (or `fraudctl initialtrain`), then retry";

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::UnknownJob(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Busy | ApiError::JobActive(_) | ApiError::Conflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::NoModel
            | ApiError::BrokenChampion(_)
            | ApiError::LogUnavailable
            | ApiError::LoginsBusy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyLogins { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Protocol { status, .. } => *status,
            ApiError::Dependency(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable name of the error's kind (a failed job's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Busy | ApiError::JobActive(_) => "busy",
            ApiError::Conflict { .. } => "conflict",
            ApiError::NoModel => "no_model",
            ApiError::BrokenChampion(_) => "broken_champion",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Dependency(_) => "dependency",
            ApiError::Internal(_) => "internal",
            ApiError::Invalid { .. } => "invalid",
            _ => "refused",
        }
    }

    /// The active job of a 409 [`ApiError::JobActive`].
    fn job_id(&self) -> Option<uuid::Uuid> {
        match self {
            ApiError::JobActive(job) => Some(job.job_id),
            _ => None,
        }
    }

    /// The field errors of a 422, empty otherwise.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ApiError::Invalid { fields, .. } => fields,
            _ => &[],
        }
    }

    /// What the caller can do about it, when there is a clear next step.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ApiError::NoModel => Some(NO_MODEL_HINT),
            ApiError::BrokenChampion(_) => Some(BROKEN_CHAMPION_HINT),
            ApiError::Conflict { hint, .. } => Some(hint),
            ApiError::Busy => Some("training takes a few seconds to minutes; retry later"),
            ApiError::JobActive(_) => {
                Some("follow the running job at GET /jobs/<job_id>; retry when it has finished")
            }
            _ => None,
        }
    }

    /// The JSON answer, with `WWW-Authenticate` on 401 and `Allow` on 405.
    pub fn into_response(self) -> Response<Bytes> {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let body = ErrorBody {
            error: self.to_string(),
            fields: self.fields(),
            hint: self.hint(),
            job_id: self.job_id(),
            request_id: None,
        };
        let mut response = json_response(status, &body);
        match &self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"fraud-risk\""),
                );
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::TooManyLogins { retry_after } => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::LoginsBusy | ApiError::LogUnavailable => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }

    /// The error of a champion that could not be served: none yet, or broken.
    pub fn champion(error: PipelineError) -> Self {
        match error {
            PipelineError::NoChampion => ApiError::NoModel,
            other => {
                tracing::error!(error = %other, "the champion cannot be served");
                ApiError::BrokenChampion(other.to_string())
            }
        }
    }

    /// A 422 for fields that broke their rules.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        ApiError::Invalid {
            message: format!("invalid fields: {}", names.join(", ")),
            fields,
        }
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        ApiError::into_response(self).map(axum::body::Body::from)
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Shape { field, rule } => ApiError::Invalid {
                message: format!("{field} {rule}"),
                fields: vec![FieldError::new(&field, rule, None)],
            },
            RequestError::Invalid(errors) => ApiError::invalid(errors.0),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "database failure");
        ApiError::Dependency(match &error {
            StoreError::Backend { operation, .. } => {
                format!("the database failed during {operation}; see the service log")
            }
            StoreError::Conflict(message) => message.clone(),
        })
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Busy => ApiError::Busy,
            PipelineError::NoChampion => ApiError::NoModel,
            PipelineError::NoReferenceData => ApiError::Conflict {
                message: error.to_string(),
                hint: "load the reference rows (fraudctl load-data), then POST /initialtrain"
                    .to_string(),
            },
            PipelineError::ChampionFromRetrain { .. } => ApiError::Conflict {
                message: error.to_string(),
                hint: error.hint().unwrap_or_default().to_string(),
            },
            PipelineError::Store(store) => store.into(),
            PipelineError::Artifacts(artifacts) => {
                tracing::error!(error = %artifacts, "artifact store failure");
                ApiError::Dependency(format!(
                    "the artifact store failed during {} of {}; see the service log",
                    artifacts.operation, artifacts.key
                ))
            }
            PipelineError::Tracker(tracker) => {
                tracing::error!(error = %tracker, "tracking server failure");
                ApiError::Dependency(format!(
                    "the tracking server failed in {}; see the service log",
                    tracker.call
                ))
            }
            PipelineError::CorruptChampion(_) => ApiError::champion(error),
            PipelineError::Model(_) | PipelineError::Internal(_) => {
                tracing::error!(%error, "pipeline failure");
                ApiError::Internal(error.to_string())
            }
        }
    }
}

/// A JSON answer. Serialising our own types cannot fail; if it ever did, the client gets a
/// plain 500 rather than a panic.
pub(crate) fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Response<Bytes> {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(error) => {
            tracing::error!(%error, "could not serialise an answer");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error":"internal error: the answer could not be serialised"}"#.to_vec(),
            )
        }
    };
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Answers depend on the caller's credentials and the current champion.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_names_the_realm() {
        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(challenge, format!("Basic realm=\"{REALM}\""));
    }

    #[test]
    fn invalid_lists_every_field() {
        let error = ApiError::invalid(vec![
            FieldError::new("a", "must be 1".to_string(), Some("2".to_string())),
            FieldError::new("b", "is required".to_string(), None),
        ]);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["fields"][0]["field"], "a");
        assert_eq!(body["fields"][0]["value"], "2");
        assert!(body["fields"][1].get("value").is_none());
        assert_eq!(body["error"], "invalid fields: a, b");
    }
}
