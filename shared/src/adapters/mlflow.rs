//! MLflow over its REST API 2.0: experiment tracking and the model registry.
//!
//! - Experiments are looked up by name and created when missing (ids cached per process).
//! - Runs: `runs/create`, `runs/log-batch` chunked to MLflow's limits (at most 1000
//!   metrics, 100 params, 100 tags and 1000 entries in all per request), `runs/update` to
//!   FINISHED or FAILED.
//! - Artifacts go straight to S3 when the run's artifact URI is `s3://...` (the server never
//!   sees the bytes), through the server's `mlflow-artifacts` proxy when it is
//!   `mlflow-artifacts:/...`.
//! - Experiments carry `mlflow.experimentKind = custom_model_development`, so the MLflow 3 UI
//!   opens them on the runs table; models are MLflow 3 logged models when the server has the
//!   `logged-models` API, and files under the run otherwise (see [`logged_models`]).
//! - Registry: the registered model is created once (an existing one is fine), versions are
//!   created from the logged model (`models:/<model_id>`) or from `<artifact_uri>/model`,
//!   the `champion` alias is set and read.
//! - HTTP Basic auth (`mlflow server --app-name basic-auth`), a timeout per request, and
//!   bounded retries with exponential backoff on connection errors and 5xx/429 answers.
//!   Errors name the call and carry MLflow's status, `error_code` and message.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::s3::{parse_s3_uri, put_object, valid_relative_key};
use super::secrets::SecretsClient;
use crate::config::{MlflowConfig, Redacted};
use crate::ports::{
    LoggedModel, ModelSpec, ModelVersionInfo, RunData, RunInfo, RunStatus, Tracker, TrackerError,
};

mod logged_models;

/// MLflow's per-request limits for `runs/log-batch`.
const MAX_METRICS_PER_BATCH: usize = 1000;
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_ENTRIES_PER_BATCH: usize = 1000;
/// Page size for `model-versions/search`.
const SEARCH_PAGE_SIZE: u32 = 200;

/// Why one HTTP exchange failed.
#[derive(Debug)]
enum CallError {
    /// The server answered with an error status.
    Api {
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    /// No usable answer (connection refused, timeout, unreadable body).
    Transport(String),
}

impl CallError {
    fn code(&self) -> Option<&str> {
        match self {
            CallError::Api { code, .. } => code.as_deref(),
            CallError::Transport(_) => None,
        }
    }

    fn into_tracker_error(self, call: &str) -> TrackerError {
        let message = match self {
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
                match code {
                    Some(code) => format!("HTTP {status} {code}: {message}{hint}"),
                    None => format!("HTTP {status}: {message}{hint}"),
                }
            }
            CallError::Transport(message) => message,
        };
        TrackerError {
            call: call.to_string(),
            message,
        }
    }
}

/// The whole cause chain of a reqwest error (its Display alone omits "connection refused").
fn transport_message(error: &reqwest::Error) -> String {
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
enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(Vec<u8>),
}

/// Whether repeating a call is harmless when its first attempt may have reached the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads and idempotent writes: retried on timeouts too.
    Idempotent,
    /// Creates: retried on refused connections and 5xx/429 answers, not on timeouts.
    Create,
}

/// Where the basic-auth credentials come from.
#[derive(Clone, Debug)]
pub enum MlflowAuth {
    /// No authentication.
    None,
    /// These credentials.
    Basic {
        username: String,
        password: Redacted,
    },
    /// `{"username", "password"}` from this secret, fetched on the first call (not at start-up:
    /// a container that only predicts never needs them, nor Secrets Manager for them).
    Secret {
        client: SecretsClient,
        secret_id: String,
    },
}

/// The MLflow tracking server and model registry.
pub struct MlflowTracker {
    http: reqwest::Client,
    base: Url,
    auth: MlflowAuth,
    resolved_auth: tokio::sync::OnceCell<Option<(String, Redacted)>>,
    max_tries: u32,
    backoff: Duration,
    /// For artifacts of runs whose artifact URI is `s3://...`.
    s3: Option<aws_sdk_s3::Client>,
    experiments: Mutex<HashMap<String, String>>,
    registered: Mutex<HashSet<String>>,
    /// Whether the server has MLflow 3's logged-models API, once a call has shown it.
    logged_models: tokio::sync::OnceCell<bool>,
}

impl std::fmt::Debug for MlflowTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowTracker")
            .field("base", &self.base.as_str())
            .field("auth", &self.auth)
            .field("max_tries", &self.max_tries)
            .finish()
    }
}

impl MlflowTracker {
    /// A client for `config.tracking_uri`; `s3` writes the artifacts of runs whose artifact
    /// URI is `s3://...`. Nothing is contacted until the first call.
    pub fn new(
        config: &MlflowConfig,
        auth: MlflowAuth,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Result<Self, TrackerError> {
        let setup = |message: String| TrackerError {
            call: "client setup".to_string(),
            message,
        };
        let base = Url::parse(&format!("{}/", config.tracking_uri.trim_end_matches('/')))
            .map_err(|e| setup(format!("bad tracking URI {:?}: {e}", config.tracking_uri)))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            // Below uvicorn's 5 s keep-alive: a pooled connection the server has just closed
            // fails with "connection closed before message completed", even on a read.
            .pool_idle_timeout(Duration::from_secs(2))
            .user_agent(concat!("fraudrisk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(transport_message(&e)))?;
        Ok(MlflowTracker {
            http,
            base,
            auth,
            resolved_auth: tokio::sync::OnceCell::new(),
            max_tries: config.max_tries.max(1),
            backoff: Duration::from_millis(200),
            s3,
            experiments: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashSet::new()),
            logged_models: tokio::sync::OnceCell::new(),
        })
    }

    /// Sets the first retry delay (doubled for each further try).
    pub fn with_backoff(mut self, first_delay: Duration) -> Self {
        self.backoff = first_delay;
        self
    }

    /// The tracking server's base URL.
    pub fn tracking_uri(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

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
                            CallError::Transport(format!("cannot get the MLflow credentials: {e}"))
                        }),
                }
            })
            .await
            .map(Option::as_ref)
    }

    fn url(&self, path: &str) -> Result<Url, CallError> {
        self.base
            .join(path)
            .map_err(|e| CallError::Transport(format!("bad URL for {path}: {e}")))
    }

    /// One call with retries; returns the parsed JSON answer (`{}` for an empty one).
    async fn send(
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
                                    CallError::Transport(format!(
                                        "HTTP {status} with a body that is not JSON: {e}"
                                    ))
                                })
                            };
                        }
                        Ok(bytes) => (
                            api_error(status, &bytes),
                            status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                        ),
                        Err(e) => (
                            CallError::Transport(format!(
                                "reading the answer failed: {}",
                                transport_message(&e)
                            )),
                            retry == Retry::Idempotent,
                        ),
                    }
                }
                Err(e) => (
                    CallError::Transport(format!(
                        "cannot reach the MLflow server at {}: {}",
                        self.tracking_uri(),
                        transport_message(&e)
                    )),
                    // A refused connection never reached the server; any other failure (a
                    // timeout, a reused connection closed under the request) might have, so
                    // only an idempotent call is sent again.
                    e.is_connect() || retry == Retry::Idempotent,
                ),
            };
            if !retryable || attempt >= self.max_tries {
                return Err(match error {
                    CallError::Transport(message) if attempt > 1 => {
                        CallError::Transport(format!("{message} (after {attempt} tries)"))
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
    async fn api(
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

    /// The experiment's id, creating it (optionally with its own artifact location) when it
    /// does not exist.
    pub async fn ensure_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
    ) -> Result<String, TrackerError> {
        if let Some(id) = self.experiments.lock().await.get(name) {
            return Ok(id.clone());
        }
        let id = match self.experiment_by_name(name).await? {
            Some((id, tagged)) => {
                if !tagged {
                    self.tag_experiment_kind(&id).await?;
                }
                id
            }
            None => {
                let mut body =
                    json!({ "name": name, "tags": [logged_models::experiment_kind_tag()] });
                if let Some(location) = artifact_location {
                    body["artifact_location"] = json!(location);
                }
                match self
                    .api(
                        Method::POST,
                        "experiments/create",
                        &[],
                        Some(&body),
                        Retry::Create,
                    )
                    .await
                {
                    Ok(answer) => string_field(&answer, "experiment_id")
                        .map_err(|m| tracker_error("experiments/create", m))?,
                    // Another container created it in between.
                    Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {
                        let (id, tagged) =
                            self.experiment_by_name(name).await?.ok_or_else(|| {
                                tracker_error(
                                    "experiments/get-by-name",
                                    format!("experiment {name:?} exists but cannot be found"),
                                )
                            })?;
                        if !tagged {
                            self.tag_experiment_kind(&id).await?;
                        }
                        id
                    }
                    Err(e) => return Err(e.into_tracker_error("experiments/create")),
                }
            }
        };
        self.experiments
            .lock()
            .await
            .insert(name.to_string(), id.clone());
        Ok(id)
    }

    /// The experiment's id and whether it carries an experiment kind tag already.
    async fn experiment_by_name(&self, name: &str) -> Result<Option<(String, bool)>, TrackerError> {
        let call = "experiments/get-by-name";
        match self
            .api(
                Method::GET,
                call,
                &[("experiment_name", name)],
                None,
                Retry::Idempotent,
            )
            .await
        {
            Ok(answer) => {
                let experiment = &answer["experiment"];
                if experiment["lifecycle_stage"].as_str() == Some("deleted") {
                    return Err(tracker_error(
                        call,
                        format!(
                            "experiment {name:?} is deleted: restore it in MLflow or choose another name"
                        ),
                    ));
                }
                let id = string_field(experiment, "experiment_id")
                    .map_err(|m| tracker_error(call, m))?;
                Ok(Some((id, logged_models::has_experiment_kind(experiment))))
            }
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e.into_tracker_error(call)),
        }
    }

    async fn ensure_registered_model(&self, name: &str) -> Result<(), TrackerError> {
        if self.registered.lock().await.contains(name) {
            return Ok(());
        }
        let call = "registered-models/create";
        match self
            .api(
                Method::POST,
                call,
                &[],
                Some(&json!({ "name": name })),
                Retry::Create,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {}
            Err(e) => return Err(e.into_tracker_error(call)),
        }
        self.registered.lock().await.insert(name.to_string());
        Ok(())
    }

    /// The registered model's aliases, version by version (empty when the model is unknown).
    async fn aliases(&self, model_name: &str) -> Result<HashMap<u32, Vec<String>>, TrackerError> {
        let call = "registered-models/get";
        let answer = match self
            .api(
                Method::GET,
                call,
                &[("name", model_name)],
                None,
                Retry::Idempotent,
            )
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => return Ok(HashMap::new()),
            Err(e) => return Err(e.into_tracker_error(call)),
        };
        let mut map: HashMap<u32, Vec<String>> = HashMap::new();
        if let Some(aliases) = answer["registered_model"]["aliases"].as_array() {
            for entry in aliases {
                let alias = entry["alias"].as_str().unwrap_or_default().to_string();
                let version =
                    parse_version(&entry["version"]).map_err(|m| tracker_error(call, m))?;
                map.entry(version).or_default().push(alias);
            }
        }
        Ok(map)
    }

    /// Stores a file below an artifact URI: straight to S3 for `s3://...`, through the
    /// server's proxy for `mlflow-artifacts:/...`.
    async fn put_artifact(
        &self,
        artifact_uri: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        if !valid_relative_key(path) {
            return Err(tracker_error(
                "log-artifact",
                format!("invalid artifact path {path:?}"),
            ));
        }
        let uri = artifact_uri.trim_end_matches('/');
        if let Some((bucket, prefix)) = parse_s3_uri(uri) {
            let call = "log-artifact (S3 put)";
            let client = self.s3.as_ref().ok_or_else(|| {
                tracker_error(
                    call,
                    format!(
                        "the artifact URI is {uri} but no S3 client is configured \
                         (set FRAUDRISK_BUCKET / the AWS settings)"
                    ),
                )
            })?;
            let key = if prefix.is_empty() {
                path.to_string()
            } else {
                format!("{prefix}/{path}")
            };
            put_object(client, &bucket, &key, bytes, content_type_of(path))
                .await
                .map_err(|m| tracker_error(call, format!("s3://{bucket}/{key}: {m}")))
        } else if uri.starts_with("mlflow-artifacts:") {
            self.put_artifact_via_proxy(uri, path, bytes).await
        } else {
            Err(tracker_error(
                "log-artifact",
                format!(
                    "the artifact URI {uri} is neither s3:// nor mlflow-artifacts:/; \
                     start the server with --serve-artifacts or an s3:// artifact root"
                ),
            ))
        }
    }

    async fn put_artifact_via_proxy(
        &self,
        artifact_uri: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        let call = "mlflow-artifacts/artifacts";
        // mlflow-artifacts:/<path> or mlflow-artifacts://<host:port>/<path>; the proxy lives
        // on the tracking server either way.
        let rest = artifact_uri
            .strip_prefix("mlflow-artifacts:")
            .unwrap_or_default();
        let rest = match rest.strip_prefix("//") {
            Some(with_authority) => with_authority
                .split_once('/')
                .map(|(_, p)| p)
                .unwrap_or_default(),
            None => rest.trim_start_matches('/'),
        };
        let mut url = self
            .url("api/2.0/mlflow-artifacts/artifacts")
            .map_err(|e| e.into_tracker_error(call))?;
        {
            let mut segments = url.path_segments_mut().map_err(|_| {
                tracker_error(call, format!("cannot build a URL below {}", self.base))
            })?;
            segments.pop_if_empty();
            segments.extend(rest.split('/').filter(|s| !s.is_empty()));
            segments.extend(path.split('/'));
        }
        self.send(Method::PUT, url, &[], Body::Bytes(bytes), Retry::Idempotent)
            .await
            .map(|_| ())
            .map_err(|e| e.into_tracker_error(call))
    }
}

fn tracker_error(call: &str, message: impl Into<String>) -> TrackerError {
    TrackerError {
        call: call.to_string(),
        message: message.into(),
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> CallError {
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

fn string_field(value: &Value, field: &str) -> Result<String, String> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the answer has no {field}: {value}"))
}

/// MLflow sends versions as strings ("3"); accept numbers too.
fn parse_version(value: &Value) -> Result<u32, String> {
    match value {
        Value::String(text) => text
            .parse()
            .map_err(|_| format!("model version {text:?} is not a number")),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("model version {n} is out of range")),
        other => Err(format!("model version missing or malformed: {other}")),
    }
}

fn model_version_info(value: &Value, aliases: Vec<String>) -> Result<ModelVersionInfo, String> {
    let mut aliases = if aliases.is_empty() {
        value["aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        aliases
    };
    aliases.sort();
    Ok(ModelVersionInfo {
        version: parse_version(&value["version"])?,
        run_id: value["run_id"].as_str().unwrap_or_default().to_string(),
        source: value["source"].as_str().unwrap_or_default().to_string(),
        aliases,
    })
}

/// MLflow's JSON for a metric value (protobuf JSON spells non-finite doubles as strings).
fn metric_value(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value.is_infinite() {
        json!(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(value)
    }
}

/// Splits a batch into requests within MLflow's limits.
fn log_batch_bodies(run_id: &str, data: &RunData, timestamp_ms: i64) -> Vec<Value> {
    let mut params = data.params.iter().peekable();
    let mut tags = data.tags.iter().peekable();
    let mut metrics = data.metrics.iter().peekable();
    let mut bodies = Vec::new();
    while params.peek().is_some() || tags.peek().is_some() || metrics.peek().is_some() {
        let params_now: Vec<Value> = params
            .by_ref()
            .take(MAX_PARAMS_PER_BATCH)
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let tags_now: Vec<Value> = tags
            .by_ref()
            .take(MAX_TAGS_PER_BATCH)
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let room =
            (MAX_ENTRIES_PER_BATCH - params_now.len() - tags_now.len()).min(MAX_METRICS_PER_BATCH);
        let metrics_now: Vec<Value> = metrics
            .by_ref()
            .take(room)
            .map(|(k, v)| {
                json!({ "key": k, "value": metric_value(*v), "timestamp": timestamp_ms, "step": 0 })
            })
            .collect();
        bodies.push(json!({
            "run_id": run_id,
            "params": params_now,
            "tags": tags_now,
            "metrics": metrics_now,
        }));
    }
    bodies
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl Tracker for MlflowTracker {
    async fn start_run(&self, experiment: &str, run_name: &str) -> Result<RunInfo, TrackerError> {
        let experiment_id = self.ensure_experiment(experiment, None).await?;
        let call = "runs/create";
        let body = json!({
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": now_ms(),
            "tags": [
                { "key": "mlflow.runName", "value": run_name },
                { "key": "mlflow.source.name", "value": "fraudrisk" },
                { "key": "mlflow.source.type", "value": "JOB" },
            ],
        });
        let answer = self
            .api(Method::POST, call, &[], Some(&body), Retry::Create)
            .await
            .map_err(|e| e.into_tracker_error(call))?;
        let info = &answer["run"]["info"];
        let run = RunInfo {
            run_id: string_field(info, "run_id").map_err(|m| tracker_error(call, m))?,
            experiment_id: string_field(info, "experiment_id")
                .map_err(|m| tracker_error(call, m))?,
            artifact_uri: string_field(info, "artifact_uri").map_err(|m| tracker_error(call, m))?,
        };
        tracing::info!(run_id = %run.run_id, experiment, "started an MLflow run");
        Ok(run)
    }

    async fn log_batch(&self, run: &RunInfo, data: &RunData) -> Result<(), TrackerError> {
        let call = "runs/log-batch";
        for body in log_batch_bodies(&run.run_id, data, now_ms()) {
            self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
                .await
                .map_err(|e| e.into_tracker_error(call))?;
        }
        Ok(())
    }

    async fn log_artifact(
        &self,
        run: &RunInfo,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        self.put_artifact(&run.artifact_uri, path, bytes).await
    }

    async fn end_run(&self, run: &RunInfo, status: RunStatus) -> Result<(), TrackerError> {
        let call = "runs/update";
        let status = match status {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
        };
        let body = json!({ "run_id": run.run_id, "status": status, "end_time": now_ms() });
        self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
            .await
            .map(|_| ())
            .map_err(|e| e.into_tracker_error(call))
    }

    async fn create_logged_model(
        &self,
        run: &RunInfo,
        spec: &ModelSpec,
    ) -> Result<LoggedModel, TrackerError> {
        self.start_logged_model(run, spec).await
    }

    async fn log_model_metrics(
        &self,
        run: &RunInfo,
        model: &LoggedModel,
        metrics: &[(String, f64)],
    ) -> Result<(), TrackerError> {
        let call = "runs/log-batch";
        let data = RunData {
            metrics: metrics.to_vec(),
            ..RunData::default()
        };
        for mut body in log_batch_bodies(&run.run_id, &data, now_ms()) {
            if let Some(id) = &model.model_id {
                logged_models::link_metrics(&mut body, id);
            }
            self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
                .await
                .map_err(|e| e.into_tracker_error(call))?;
        }
        Ok(())
    }

    async fn log_model_artifact(
        &self,
        _run: &RunInfo,
        model: &LoggedModel,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        self.put_artifact(&model.artifact_uri, path, bytes).await
    }

    async fn finalize_logged_model(
        &self,
        model: &LoggedModel,
        ready: bool,
    ) -> Result<(), TrackerError> {
        self.finalize(model, ready).await
    }

    async fn create_model_version(
        &self,
        model_name: &str,
        run: &RunInfo,
        model: &LoggedModel,
    ) -> Result<ModelVersionInfo, TrackerError> {
        self.ensure_registered_model(model_name).await?;
        let call = "model-versions/create";
        let body = logged_models::model_version_body(model_name, run, model);
        let answer = self
            .api(Method::POST, call, &[], Some(&body), Retry::Create)
            .await
            .map_err(|e| e.into_tracker_error(call))?;
        let info = model_version_info(&answer["model_version"], Vec::new())
            .map_err(|m| tracker_error(call, m))?;
        tracing::info!(
            model_name,
            version = info.version,
            "registered a model version"
        );
        Ok(info)
    }

    async fn set_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: u32,
    ) -> Result<(), TrackerError> {
        let call = "registered-models/alias";
        // The version goes as a string: MLflow rejects a JSON number here.
        let body = json!({ "name": model_name, "alias": alias, "version": version.to_string() });
        self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
            .await
            .map(|_| ())
            .map_err(|e| e.into_tracker_error(call))
    }

    async fn alias_version(
        &self,
        model_name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersionInfo>, TrackerError> {
        let call = "registered-models/alias";
        match self
            .api(
                Method::GET,
                call,
                &[("name", model_name), ("alias", alias)],
                None,
                Retry::Idempotent,
            )
            .await
        {
            Ok(answer) => model_version_info(&answer["model_version"], Vec::new())
                .map(Some)
                .map_err(|m| tracker_error(call, m)),
            Err(e) if is_missing_alias(&e) => Ok(None),
            Err(e) => Err(e.into_tracker_error(call)),
        }
    }

    async fn list_versions(&self, model_name: &str) -> Result<Vec<ModelVersionInfo>, TrackerError> {
        let call = "model-versions/search";
        let filter = if model_name.contains('\'') {
            if model_name.contains('"') {
                return Err(tracker_error(
                    call,
                    format!("model name {model_name:?} has both kinds of quote"),
                ));
            }
            format!("name=\"{model_name}\"")
        } else {
            format!("name='{model_name}'")
        };
        // Search results carry no aliases: they come from the registered model.
        let mut aliases = self.aliases(model_name).await?;
        let page_size = SEARCH_PAGE_SIZE.to_string();
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("filter", filter.as_str()),
                ("max_results", page_size.as_str()),
            ];
            if let Some(t) = token.as_deref() {
                query.push(("page_token", t));
            }
            let answer = self
                .api(Method::GET, call, &query, None, Retry::Idempotent)
                .await
                .map_err(|e| e.into_tracker_error(call))?;
            for entry in answer["model_versions"].as_array().into_iter().flatten() {
                let version =
                    parse_version(&entry["version"]).map_err(|m| tracker_error(call, m))?;
                let info = model_version_info(entry, aliases.remove(&version).unwrap_or_default())
                    .map_err(|m| tracker_error(call, m))?;
                versions.push(info);
            }
            match answer["next_page_token"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        versions.sort_by_key(|v| v.version);
        Ok(versions)
    }
}

/// MLflow answers an unknown alias with INVALID_PARAMETER_VALUE ("... not found") and an
/// unknown model with RESOURCE_DOES_NOT_EXIST.
fn is_missing_alias(error: &CallError) -> bool {
    match error {
        CallError::Api { code, message, .. } => match code.as_deref() {
            Some("RESOURCE_DOES_NOT_EXIST") => true,
            Some("INVALID_PARAMETER_VALUE") => {
                let message = message.to_ascii_lowercase();
                message.contains("not found") || message.contains("does not exist")
            }
            _ => false,
        },
        CallError::Transport(_) => false,
    }
}

fn content_type_of(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("yaml" | "yml") => "application/yaml",
        _ if path.ends_with("MLmodel") => "application/yaml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_within_mlflows_limits() {
        let data = RunData {
            params: (0..250).map(|i| (format!("p{i}"), i.to_string())).collect(),
            metrics: (0..2500).map(|i| (format!("m{i}"), i as f64)).collect(),
            tags: (0..120).map(|i| (format!("t{i}"), i.to_string())).collect(),
        };
        let bodies = log_batch_bodies("r", &data, 0);
        let count = |b: &Value, f: &str| b[f].as_array().map_or(0, Vec::len);
        let mut totals = (0, 0, 0);
        for body in &bodies {
            let (p, m, t) = (
                count(body, "params"),
                count(body, "metrics"),
                count(body, "tags"),
            );
            assert!(p <= 100 && t <= 100 && m <= 1000 && p + m + t <= 1000);
            totals = (totals.0 + p, totals.1 + m, totals.2 + t);
        }
        assert_eq!(totals, (250, 2500, 120));
        assert!(log_batch_bodies("r", &RunData::default(), 0).is_empty());
    }

    #[test]
    fn non_finite_metrics_use_protobuf_spellings() {
        assert_eq!(metric_value(f64::NAN), json!("NaN"));
        assert_eq!(metric_value(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(metric_value(0.5), json!(0.5));
    }

    #[test]
    fn versions_parse_from_strings_or_numbers() {
        assert_eq!(parse_version(&json!("12")), Ok(12));
        assert_eq!(parse_version(&json!(3)), Ok(3));
        assert!(parse_version(&json!("x")).is_err());
        assert!(parse_version(&Value::Null).is_err());
    }

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
