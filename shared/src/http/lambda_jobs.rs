//! Training jobs in Lambda: the API side invokes the training function asynchronously
//! ([`LambdaInvoker`], `InvocationType=Event`) with `{"job_id": ..., "kind": ...}`; the
//! training function recognises that payload ([`JobEvent`]) beside API Gateway's events (and
//! EventBridge's, for `retrain`) and runs the job with [`super::jobs::run_job`].
//!
//! Why an Event invocation and not a queue: no extra resource to deploy and watch, and Lambda
//! keeps the event for us. Lambda retries a failed asynchronous invocation, so a job is
//! idempotent by id: one that is not queued any more is not run again.

use std::sync::Arc;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use axum::Router;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::jobs::{run_job, JobDispatch};
use super::lambda::{api, api_gateway_v2_response, EventError};
use super::{App, AppError};
use crate::config::{process, Config, ENV_JOB_FUNCTION};
use crate::jobs::JobKind;

/// The payload of a job invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEvent {
    pub job_id: Uuid,
    pub kind: JobKind,
}

impl JobEvent {
    /// The job event in `payload`, if it is one (an object with a `job_id`).
    pub fn from_payload(payload: &Value) -> Result<Option<Self>, EventError> {
        if payload.get("job_id").is_none() {
            return Ok(None);
        }
        serde_json::from_value(payload.clone())
            .map(Some)
            .map_err(|e| EventError::BadJob(e.to_string()))
    }
}

/// Why a job could not be handed to the training function.
#[derive(Debug, thiserror::Error)]
#[error("invoking {function}: {message}")]
pub struct InvokeError {
    pub function: String,
    pub message: String,
}

/// Invokes the training function asynchronously.
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaInvoker {
    /// A client for `function`, with the AWS settings of `config`; the endpoint is
    /// `AWS_ENDPOINT_URL_LAMBDA` when set (a local emulator), else the general one.
    pub async fn new(config: &Config, function: String) -> Self {
        let sdk = config.aws.sdk_config().await;
        let mut builder = aws_sdk_lambda::config::Builder::from(&sdk);
        if let Some(endpoint) = process::lambda_endpoint() {
            builder = builder.endpoint_url(endpoint);
        }
        LambdaInvoker {
            client: aws_sdk_lambda::Client::from_conf(builder.build()),
            function,
        }
    }

    /// The function jobs are sent to.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// Sends the job; Lambda answers 202 once it has queued the event.
    // The SDK retries a failed send; a job delivered twice runs once (see `run_job`).
    pub async fn invoke(&self, job_id: Uuid, kind: JobKind) -> Result<(), InvokeError> {
        let fail = |message: String| InvokeError {
            function: self.function.clone(),
            message,
        };
        let payload = serde_json::to_vec(&JobEvent { job_id, kind })
            .map_err(|e| fail(format!("cannot encode the event: {e}")))?;
        let output = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| fail(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()))?;
        if let Some(error) = output.function_error() {
            return Err(fail(format!("the function failed: {error}")));
        }
        match output.status_code() {
            202 => Ok(()),
            // A local emulator (`cargo lambda watch`) runs an Event invocation to its end and
            // answers 200; the job is then done already, which is fine.
            200 => Ok(()),
            other => Err(fail(format!("Lambda answered {other}, not 202"))),
        }
    }
}

/// The app of a training function: as [`super::lambda::app_from_env`], with jobs sent to
/// [`ENV_JOB_FUNCTION`] or, unset, to the function itself (`AWS_LAMBDA_FUNCTION_NAME`).
/// Outside Lambda (neither set) jobs run as background tasks.
pub async fn training_app_from_env() -> Result<Arc<App>, AppError> {
    let app = App::from_config(&super::lambda::lambda_config()?).await?;
    let Some(function) = process::job_function() else {
        return Ok(Arc::new(app));
    };
    let settings = Config::from_env().map_err(|e| AppError::Config {
        name: ENV_JOB_FUNCTION,
        message: e.to_string(),
    })?;
    let invoker = LambdaInvoker::new(&settings, function).await;
    tracing::info!(function = invoker.function(), "training jobs go to Lambda");
    Ok(Arc::new(
        app.with_job_dispatch(JobDispatch::Lambda(Arc::new(invoker))),
    ))
}

/// Runs the job of a job event. Always a successful invocation once the job's outcome is
/// stored (a failed training is a failed job, not a failed invocation: a retry would not
/// run it anyway); a store failure fails the invocation.
pub async fn job_event(app: &App, event: JobEvent) -> Result<Value, EventError> {
    let JobEvent { job_id, kind } = event;
    tracing::info!(%job_id, kind = kind.as_str(), "job event");
    match run_job(app, job_id).await? {
        // Not started: it waited past the job timeout and is stored as failed.
        Some(job) => Ok(json!({ "ran": job.started_at.is_some(), "job": job })),
        None => Ok(json!({
            "ran": false,
            "job_id": job_id,
            "reason": "the job is unknown or not queued (already run, or timed out): not run again",
        })),
    }
}

/// The `initialtrain` function: API Gateway events through `router`, job events run.
pub async fn initialtrain_event(
    app: &App,
    router: &Router,
    payload: Value,
) -> Result<Value, EventError> {
    if let Some(event) = JobEvent::from_payload(&payload)? {
        return job_event(app, event).await;
    }
    if payload.get("requestContext").is_none() {
        return Err(EventError::Unrecognised);
    }
    let event: ApiGatewayV2httpRequest =
        serde_json::from_value(payload).map_err(|e| EventError::BadApiEvent(e.to_string()))?;
    let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(event).into();
    api_gateway_v2_response(api(router, request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_events_are_recognised() {
        let id = Uuid::new_v4();
        let event = JobEvent::from_payload(&json!({"job_id": id, "kind": "retrain"}));
        assert!(
            matches!(event, Ok(Some(JobEvent { job_id, kind: JobKind::Retrain })) if job_id == id)
        );
        assert!(matches!(
            JobEvent::from_payload(&json!({"mode": "always"})),
            Ok(None)
        ));
        assert!(matches!(
            JobEvent::from_payload(&json!({"job_id": "x", "kind": "retrain"})),
            Err(EventError::BadJob(_))
        ));
        assert!(matches!(
            JobEvent::from_payload(&json!({"job_id": id, "kind": "dance"})),
            Err(EventError::BadJob(_))
        ));
    }
}
