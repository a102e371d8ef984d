//! The HTTP side of the MLflow client: one call with HTTP Basic auth (explicit, or from a
//! secret fetched on the first call), a timeout per request, and bounded retries with
//! exponential backoff and jitter on refused connections and 5xx/429 answers (timeouts too for
//! idempotent calls). Errors name the call and carry MLflow's status, `error_code` and message.

use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use crate::config::Redacted;
use crate::ports::TrackerError;
use crate::BoxError;

use super::{MlflowAuth, MlflowTracker};

/// Why one HTTP exchange failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// The server answered with an error status.
    Api {
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    /// No usable answer (connection refused, timeout, unreadable body).
    Transport {
        /// Readable on its own (it quotes the cause chain).
        message: String,
        /// The HTTP client's (or the secret's, the URL's, JSON's) error.
        source: Option<BoxError>,
    },
}

impl CallError {
    pub(super) fn code(&self) -> Option<&str> {
        match self {
            CallError::Api { code, .. } => code.as_deref(),
            CallError::Transport { .. } => None,
        }
    }

    /// No usable answer, because of `source`.
    pub(super) fn transport(message: String, source: impl Into<BoxError>) -> Self {
        CallError::Transport {
            message,
            source: Some(source.into()),
        }
    }

    pub(super) fn into_tracker_error(self, call: &str) -> TrackerError {
        let (message, source) = match self {
            CallError::Api {
                status,
                code,
                message,
            } => {
                let hint = match status {
                    StatusCode::UNAUTHORIZED => {
                        " (check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or the MLflow secret)"
                    }
                    StatusCode::FORBIDDEN => " (the MLflow user lacks permission)",
                    _ => "",
                };
                let text = match code {
                    Some(code) => format!("HTTP {status} {code}: {message}{hint}"),
                    None => format!("HTTP {status}: {message}{hint}"),
                };
                (text, None)
            }
            CallError::Transport { message, source } => (message, source),
        };
        TrackerError {
            call: call.to_string(),
            message,
            source,
        }
    }
}

/// The whole cause chain of a reqwest error (its Display alone omits "connection refused").
pub(super) fn transport_message(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A request body.
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(Vec<u8>),
}

/// Whether repeating a call is harmless when its first attempt may have reached the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Reads and idempotent writes: retried on timeouts too.
    Idempotent,
    /// Creates: retried on refused connections and 5xx/429 answers, not on timeouts.
    Create,
}

impl MlflowTracker {
    async fn credentials(&self) -> Result<Option<&(String, Redacted)>, CallError> {
        self.resolved_auth
            .get_or_try_init(|| async {
                match &self.auth {
                    MlflowAuth::None => Ok(None),
                    MlflowAuth::Basic { username, password } => {
                        Ok(Some((username.clone(), password.clone())))
                    }
                    MlflowAuth::Secret { client, secret_id } => client
                        .basic_credentials(secret_id)
                        .await
                        .map(|c| Some((c.username, c.password)))
                        .map_err(|e| {
                            CallError::transport(
                                format!("cannot get the MLflow credentials: {e}"),
                                e,
                            )
                        }),
                }
            })
            .await
            .map(Option::as_ref)
    }

    pub(super) fn url(&self, path: &str) -> Result<Url, CallError> {
        self.base
            .join(path)
            .map_err(|e| CallError::transport(format!("bad URL for {path}: {e}"), e))
    }

    /// One call with retries; returns the parsed JSON answer (`{}` for an empty one).
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Body<'_>,
        retry: Retry,
    ) -> Result<Value, CallError> {
        let credentials = self.credentials().await?;
        let mut attempt = 1;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, Some(password.expose()));
            }
            request = match &body {
                Body::None => request,
                Body::Json(value) => request.json(value),
                Body::Bytes(bytes) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone()),
            };
            // (error, whether another try may help)
            let (error, retryable) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            return if bytes.is_empty() {
                                Ok(json!({}))
                            } else {
                                serde_json::from_slice(&bytes).map_err(|e| {
                                    CallError::transport(
                                        format!("HTTP {status} with a body that is not JSON: {e}"),
                                        e,
                                    )
                                })
                            };
                        }
                        Ok(bytes) => (
                            api_error(status, &bytes),
                            status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                        ),
                        Err(e) => (
                            CallError::transport(
                                format!("reading the answer failed: {}", transport_message(&e)),
                                e,
                            ),
                            retry == Retry::Idempotent,
                        ),
                    }
                }
                Err(e) => {
                    // A refused connection never reached the server; any other failure (a
                    // timeout, a reused connection closed under the request) might have, so
                    // only an idempotent call is sent again.
                    let retryable = e.is_connect() || retry == Retry::Idempotent;
                    let message = format!(
                        "cannot reach the MLflow server at {}: {}",
                        self.tracking_uri(),
                        transport_message(&e)
                    );
                    (CallError::transport(message, e), retryable)
                }
            };
            if !retryable || attempt >= self.max_tries {
                return Err(match error {
                    CallError::Transport { message, source } if attempt > 1 => {
                        CallError::Transport {
                            message: format!("{message} (after {attempt} tries)"),
                            source,
                        }
                    }
                    other => other,
                });
            }
            let delay = self.backoff * 2u32.saturating_pow(attempt - 1);
            // Up to 25 % jitter so retrying containers do not beat in step.
            let jitter = delay.mul_f64(rand::random::<f64>() * 0.25);
            tracing::warn!(url = %url, attempt, ?error, "MLflow call failed; retrying");
            tokio::time::sleep(delay + jitter).await;
            attempt += 1;
        }
    }

    /// A REST 2.0 call under `api/2.0/mlflow/`.
    pub(super) async fn api(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Value, CallError> {
        let url = self.url(&format!("api/2.0/mlflow/{endpoint}"))?;
        let body = body.map_or(Body::None, Body::Json);
        self.send(method, url, query, body, retry).await
    }
}

pub(super) fn tracker_error(call: &str, message: impl Into<String>) -> TrackerError {
    TrackerError::new(call, message)
}

pub(super) fn api_error(status: StatusCode, body: &[u8]) -> CallError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v["error_code"].as_str())
        .map(str::to_string);
    let message = parsed
        .as_ref()
        .and_then(|v| v["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no message")
                    .to_string()
            } else {
                text.chars().take(300).collect()
            }
        });
    CallError::Api {
        status,
        code,
        message,
    }
}

pub(super) fn string_field(value: &Value, field: &str) -> Result<String, String> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the answer has no {field}: {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_mlflows_code_and_message() {
        let error = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"Registered Model (name=m) already exists."}"#,
        );
        assert_eq!(error.code(), Some("RESOURCE_ALREADY_EXISTS"));
        let text = error
            .into_tracker_error("registered-models/create")
            .to_string();
        assert!(text.contains("registered-models/create"), "{text}");
        assert!(text.contains("400"), "{text}");
        assert!(text.contains("already exists"), "{text}");
        let text = api_error(StatusCode::UNAUTHORIZED, b"You are not authenticated.")
            .into_tracker_error("runs/create")
            .to_string();
        assert!(text.contains("MLFLOW_TRACKING_USERNAME"), "{text}");
    }
}
