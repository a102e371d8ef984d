//! Training as jobs: `POST /initialtrain` and `POST /retrain` store a queued job, hand it to
//! a worker and answer 202 at once; `?wait=true` runs it within the request and answers 200
//! with the summary; `GET /jobs/{job_id}` reads it. See [`crate::jobs`].
//!
//! Workers ([`JobDispatch`]): a tokio task in a long-running server (`fraudctl serve`); in
//! Lambda, an asynchronous invocation (`InvocationType=Event`) of the training function with
//! `{"job_id": ..., "kind": ...}` (see [`super::lambda_jobs`]). Either way the worker calls
//! [`run_job`], which runs a job only if it is still queued.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, LOCATION};
use http::{Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::json_response;
use super::lambda_jobs::LambdaInvoker;
use super::router::RoutePrefix;
use super::{ApiError, App};
use crate::jobs::{timed_out_error, Job, JobCreated, JobError, JobKind, JobState};
use crate::pipeline::RetrainMode;
use crate::ports::StoreError;
use crate::schema::FieldError;

/// Who runs a queued job.
#[derive(Clone, Default)]
pub enum JobDispatch {
    /// A tokio task in this process (a long-running server).
    #[default]
    Background,
    /// An asynchronous invocation of a Lambda function (a frozen container cannot finish
    /// background work).
    Lambda(Arc<LambdaInvoker>),
}

/// A validated training request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Training {
    /// `POST /initialtrain`, replacing a retrain-promoted champion when `force`.
    Initial { force: bool },
    /// `POST /retrain` in this mode.
    Retrain { mode: RetrainMode },
}

impl Training {
    pub fn kind(self) -> JobKind {
        match self {
            Training::Initial { .. } => JobKind::Initialtrain,
            Training::Retrain { .. } => JobKind::Retrain,
        }
    }

    /// The job's `parameters`.
    pub fn parameters(self) -> Value {
        match self {
            Training::Initial { force } => json!({ "force": force }),
            Training::Retrain { mode } => json!({ "mode": mode.as_str() }),
        }
    }

    /// The request a stored job was made from.
    pub fn of(job: &Job) -> Result<Self, JobError> {
        let bad = || JobError {
            code: "invalid_job".to_string(),
            message: format!(
                "the job's parameters {} do not name a training",
                job.parameters
            ),
        };
        match job.kind {
            JobKind::Initialtrain => Ok(Training::Initial {
                force: job
                    .parameters
                    .get("force")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }),
            JobKind::Retrain => {
                let mode = match job.parameters.get("mode").and_then(Value::as_str) {
                    None => RetrainMode::Always,
                    Some(text) => RetrainMode::parse(text).ok_or_else(bad)?,
                };
                Ok(Training::Retrain { mode })
            }
        }
    }
}

/// The 202 answer.
#[derive(Serialize, ToSchema)]
pub(super) struct JobAccepted {
    /// The job's id.
    job_id: Uuid,
    kind: JobKind,
    /// `queued`.
    state: JobState,
    /// Where to read the job's state: `/jobs/<job_id>`, under the stage or mapping the request
    /// came through (`/prod/jobs/<job_id>`); also in `Location`.
    status_url: String,
}

/// `wait` from the query: `true` or `false` (default), once.
pub(super) fn wait_parameter(value: &str, seen: bool) -> Result<bool, FieldError> {
    if seen {
        return Err(FieldError::new("wait", "is given twice".to_string(), None));
    }
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(FieldError::new(
            "wait",
            "must be true or false".to_string(),
            Some(other.to_string()),
        )),
    }
}

/// Stores the job (409 naming the active job when one is queued or running), then runs it
/// here (`wait`: 200 with the summary) or hands it to a worker (202).
pub(super) async fn start(
    app: &Arc<App>,
    training: Training,
    wait: bool,
    username: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, ApiError> {
    let job = Job::queued(training.kind(), training.parameters(), Some(username));
    match app.services.jobs.create_job(&job, app.job_timeout).await? {
        JobCreated::Busy(active) => return Err(ApiError::JobActive(Box::new(active))),
        JobCreated::Queued(_) => {}
    }
    let job_id = job.job_id;
    if wait {
        if app.services.jobs.mark_job_running(job_id).await?.is_none() {
            return Err(ApiError::Internal(format!(
                "job {job_id} left the queue unexpectedly"
            )));
        }
        let result = train(app, training).await;
        record(app, job_id, &result).await?;
        return result.map(|summary| json_response(StatusCode::OK, &summary));
    }
    match &app.job_dispatch {
        JobDispatch::Background => {
            let app = Arc::clone(app);
            tokio::spawn(async move {
                if let Err(error) = run_job(&app, job_id).await {
                    tracing::error!(%error, %job_id, "the job's state could not be stored");
                }
            });
        }
        JobDispatch::Lambda(invoker) => {
            if let Err(error) = invoker.invoke(job_id, job.kind).await {
                tracing::error!(%error, %job_id, "the training function could not be invoked");
                let failure = JobError {
                    code: "dispatch_failed".to_string(),
                    message: format!("the training function could not be invoked: {error}"),
                };
                app.services.jobs.mark_job_failed(job_id, &failure).await?;
                return Err(ApiError::Dependency(
                    "the training function could not be invoked; see the service log".to_string(),
                ));
            }
        }
    }
    tracing::info!(%job_id, kind = job.kind.as_str(), "training job queued");
    // Under the stage or mapping the request came through (`/prod/jobs/<id>`).
    let prefix = request
        .extensions()
        .get::<RoutePrefix>()
        .map_or("", |p| p.0.as_str());
    let status_url = format!("{prefix}/jobs/{job_id}");
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &JobAccepted {
            job_id,
            kind: job.kind,
            state: JobState::Queued,
            status_url: status_url.clone(),
        },
    );
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// Runs a queued job to its end and stores the outcome; returns the stored job, or `None`
/// when the job is unknown or not queued any more (run already: a repeated delivery). A job
/// queued longer than the job timeout is stored as failed (`timed_out`) and not run.
pub async fn run_job(app: &App, job_id: Uuid) -> Result<Option<Job>, StoreError> {
    // An event delivered after the job timeout (it waited in Lambda's queue) would run a
    // job its callers were told had failed: it is stored as failed instead.
    if let Some(queued) = app.services.jobs.job(job_id).await? {
        if queued.is_stale(chrono::Utc::now(), app.job_timeout) {
            let error = timed_out_error(queued.state, app.job_timeout);
            tracing::warn!(%job_id, "the job waited past the job timeout; not run");
            app.services.jobs.mark_job_failed(job_id, &error).await?;
            return app.services.jobs.job(job_id).await;
        }
    }
    let Some(job) = app.services.jobs.mark_job_running(job_id).await? else {
        tracing::warn!(%job_id, "the job is unknown or not queued; not run again");
        return Ok(None);
    };
    tracing::info!(%job_id, kind = job.kind.as_str(), "training job running");
    match Training::of(&job) {
        Ok(training) => {
            let result = train(app, training).await;
            record(app, job_id, &result).await?;
        }
        Err(error) => app.services.jobs.mark_job_failed(job_id, &error).await?,
    }
    app.services.jobs.job(job_id).await
}

/// Runs the training; its summary as JSON, or the refusal the synchronous API answers.
async fn train(app: &App, training: Training) -> Result<Value, ApiError> {
    let summary = match training {
        Training::Initial { force } => app
            .services
            .initial_train_with_force(&app.settings, force)
            .await
            .map(|s| serde_json::to_value(&s)),
        Training::Retrain { mode } => app
            .services
            .retrain(&app.settings, mode)
            .await
            .map(|s| serde_json::to_value(&s)),
    };
    // A failed training may still have moved the pointer; read it again either way.
    app.champion.invalidate();
    summary?.map_err(|e| ApiError::Internal(format!("the summary could not be encoded: {e}")))
}

/// Stores how the job ended.
async fn record(
    app: &App,
    job_id: Uuid,
    result: &Result<Value, ApiError>,
) -> Result<(), StoreError> {
    match result {
        Ok(summary) => {
            tracing::info!(%job_id, "training job succeeded");
            app.services.jobs.mark_job_succeeded(job_id, summary).await
        }
        Err(error) => {
            tracing::warn!(%job_id, %error, "training job failed");
            let error = JobError {
                code: error.code().to_string(),
                message: error.to_string(),
            };
            app.services.jobs.mark_job_failed(job_id, &error).await
        }
    }
}

/// `GET /jobs/{job_id}`: the job (a stale active one as failed, `timed_out`); 404 for an
/// unknown id, 422 for one that is not a UUID.
pub(super) async fn get(app: &App, job_id: &str) -> Result<Response<Bytes>, ApiError> {
    let Ok(id) = Uuid::parse_str(job_id) else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "job_id",
            "must be a UUID such as 0b6f2f9e-7d4c-4f7e-9a53-1c2d3e4f5a6b".to_string(),
            Some(job_id.chars().take(64).collect()),
        )]));
    };
    match app.services.jobs.job(id).await? {
        Some(job) => Ok(json_response(
            StatusCode::OK,
            &job.as_seen(chrono::Utc::now(), app.job_timeout),
        )),
        None => Err(ApiError::UnknownJob(id)),
    }
}
