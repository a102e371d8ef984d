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
//!
//! Layout: `client` (HTTP, retry, auth), `tracking` (experiments, runs), `registry`
//! (versions, aliases), `artifacts`, `logged_models`; this module holds the tracker and its
//! [`Tracker`] implementation.

mod artifacts;
mod client;
mod logged_models;
mod registry;
mod tracking;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use tokio::sync::Mutex;

use super::secrets::SecretsClient;
use crate::config::{MlflowConfig, Redacted};
use crate::ports::{
    LoggedModel, ModelSpec, ModelVersionInfo, RunData, RunInfo, RunStatus, Tracker, TrackerError,
};
use client::transport_message;

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
        let setup = |message: String| TrackerError::new("client setup", message);
        let base = Url::parse(&format!("{}/", config.tracking_uri.trim_end_matches('/'))).map_err(
            |e| setup(format!("bad tracking URI {:?}: {e}", config.tracking_uri)).with_source(e),
        )?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            // Below uvicorn's 5 s keep-alive: a pooled connection the server has just closed
            // fails with "connection closed before message completed", even on a read.
            .pool_idle_timeout(Duration::from_secs(2))
            .user_agent(concat!("fraudrisk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(transport_message(&e)).with_source(e))?;
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
}

#[async_trait]
impl Tracker for MlflowTracker {
    async fn start_run(&self, experiment: &str, run_name: &str) -> Result<RunInfo, TrackerError> {
        self.create_run(experiment, run_name).await
    }

    async fn log_batch(&self, run: &RunInfo, data: &RunData) -> Result<(), TrackerError> {
        self.log_run_data(run, data).await
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
        self.finish_run(run, status).await
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
        self.log_linked_metrics(run, model, metrics).await
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
        self.register_version(model_name, run, model).await
    }

    async fn set_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: u32,
    ) -> Result<(), TrackerError> {
        self.move_alias(model_name, alias, version).await
    }

    async fn alias_version(
        &self,
        model_name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersionInfo>, TrackerError> {
        self.version_by_alias(model_name, alias).await
    }

    async fn list_versions(&self, model_name: &str) -> Result<Vec<ModelVersionInfo>, TrackerError> {
        self.versions(model_name).await
    }
}
