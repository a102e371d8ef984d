//! MLflow 3's model-centric parts: the experiment kind tag and logged models.
//!
//! - `mlflow.experimentKind = custom_model_development` is the value the MLflow 3 UI writes
//!   for a classic machine-learning experiment (its `ExperimentKind` enum); without it the UI
//!   may open the experiment on the GenAI overview instead of the runs table.
//! - A logged model is created PENDING (`POST logged-models` with the source run, params and
//!   tags), listed as an output of the run (`runs/outputs`), gets its metrics through
//!   `runs/log-batch` entries that carry `model_id`, its files under its own artifact
//!   location, and ends READY or FAILED (`PATCH logged-models/<id>`). Registry versions then
//!   come from `models:/<model_id>` with `model_id`, as MLflow 3's own client does.
//! - Support is detected, not guessed from a version: an MLflow 2 server has no route for
//!   `logged-models` and answers 404 without an MLflow error code (or `ENDPOINT_NOT_FOUND`).
//!   The tracker then remembers it and logs the model as files under the run's `model/`
//!   folder, registering versions from there, as before MLflow 3.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::client::{string_field, tracker_error, CallError, Retry};
use super::MlflowTracker;
use crate::ports::{LoggedModel, ModelSpec, RunInfo, TrackerError};

/// The experiment tag the MLflow 3 UI reads to choose the experiment's page.
pub const EXPERIMENT_KIND_TAG: &str = "mlflow.experimentKind";
/// Its value for classic model training (the UI's `CUSTOM_MODEL_DEVELOPMENT`).
pub const EXPERIMENT_KIND_MODEL_TRAINING: &str = "custom_model_development";
/// Where a run keeps its model's files when the server has no logged models.
const RUN_MODEL_FOLDER: &str = "model";

pub(super) fn experiment_kind_tag() -> Value {
    json!({ "key": EXPERIMENT_KIND_TAG, "value": EXPERIMENT_KIND_MODEL_TRAINING })
}

/// Whether an `experiments/get-by-name` experiment has a kind already (any value: a kind a
/// person chose in the UI is kept).
pub(super) fn has_experiment_kind(experiment: &Value) -> bool {
    experiment["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|tag| tag["key"].as_str() == Some(EXPERIMENT_KIND_TAG))
}

/// True when the answer says the server has no such endpoint (as opposed to an MLflow error
/// about the request, which carries an error code such as RESOURCE_DOES_NOT_EXIST).
pub(super) fn endpoint_missing(error: &CallError) -> bool {
    match error {
        CallError::Api { status, code, .. } => match code.as_deref() {
            Some("ENDPOINT_NOT_FOUND") => true,
            None => *status == StatusCode::NOT_FOUND || *status == StatusCode::METHOD_NOT_ALLOWED,
            Some(_) => false,
        },
        CallError::Transport { .. } => false,
    }
}

/// The model of a run on a server without logged models: files under the run.
pub(super) fn files_under_run(run: &RunInfo) -> LoggedModel {
    LoggedModel {
        model_id: None,
        artifact_uri: format!(
            "{}/{RUN_MODEL_FOLDER}",
            run.artifact_uri.trim_end_matches('/')
        ),
    }
}

/// Links every metric of a `runs/log-batch` body to the logged model.
pub(super) fn link_metrics(body: &mut Value, model_id: &str) {
    if let Some(metrics) = body["metrics"].as_array_mut() {
        for metric in metrics {
            metric["model_id"] = json!(model_id);
        }
    }
}

/// The `model-versions/create` body: from the logged model when there is one.
pub(super) fn model_version_body(model_name: &str, run: &RunInfo, model: &LoggedModel) -> Value {
    match &model.model_id {
        Some(id) => json!({
            "name": model_name,
            "source": format!("models:/{id}"),
            "run_id": run.run_id,
            "model_id": id,
        }),
        None => json!({
            "name": model_name,
            "source": model.artifact_uri,
            "run_id": run.run_id,
        }),
    }
}

fn key_values(pairs: &[(String, String)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect()
}

/// MLflow's limit of params per logged-models request.
const MAX_MODEL_PARAMS_PER_REQUEST: usize = 100;

impl MlflowTracker {
    /// Sets the experiment kind on an experiment that has none.
    pub(super) async fn tag_experiment_kind(
        &self,
        experiment_id: &str,
    ) -> Result<(), TrackerError> {
        let call = "experiments/set-experiment-tag";
        let body = json!({
            "experiment_id": experiment_id,
            "key": EXPERIMENT_KIND_TAG,
            "value": EXPERIMENT_KIND_MODEL_TRAINING,
        });
        self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
            .await
            .map(|_| ())
            .map_err(|e| e.into_tracker_error(call))
    }

    /// Creates a PENDING logged model for the run, or falls back to files under the run when
    /// the server has no logged models.
    pub(super) async fn start_logged_model(
        &self,
        run: &RunInfo,
        spec: &ModelSpec,
    ) -> Result<LoggedModel, TrackerError> {
        if self.logged_models.get() == Some(&false) {
            return Ok(files_under_run(run));
        }
        let call = "logged-models";
        let (first, rest) = spec
            .params
            .split_at(spec.params.len().min(MAX_MODEL_PARAMS_PER_REQUEST));
        let body = json!({
            "experiment_id": run.experiment_id,
            "name": spec.name,
            "model_type": spec.model_type,
            "source_run_id": run.run_id,
            "params": key_values(first),
            "tags": key_values(&spec.tags),
        });
        let answer = match self
            .api(Method::POST, call, &[], Some(&body), Retry::Create)
            .await
        {
            Ok(answer) => answer,
            Err(e) if endpoint_missing(&e) => {
                tracing::info!(
                    "the MLflow server has no logged-models API (MLflow 2): the model is logged \
                     as files of the run"
                );
                let _ = self.logged_models.set(false);
                return Ok(files_under_run(run));
            }
            Err(e) => return Err(e.into_tracker_error(call)),
        };
        let _ = self.logged_models.set(true);
        let info = &answer["model"]["info"];
        let model = LoggedModel {
            model_id: Some(string_field(info, "model_id").map_err(|m| tracker_error(call, m))?),
            artifact_uri: string_field(info, "artifact_uri").map_err(|m| tracker_error(call, m))?,
        };
        let id = model.model_id.as_deref().unwrap_or_default();
        for chunk in rest.chunks(MAX_MODEL_PARAMS_PER_REQUEST) {
            let call = "logged-models/params";
            let body = json!({ "model_id": id, "params": key_values(chunk) });
            self.api(
                Method::POST,
                &format!("logged-models/{id}/params"),
                &[],
                Some(&body),
                Retry::Idempotent,
            )
            .await
            .map_err(|e| e.into_tracker_error(call))?;
        }
        // The run page lists its logged models from the run's outputs.
        let call = "runs/outputs";
        let body = json!({ "run_id": run.run_id, "models": [{ "model_id": id, "step": 0 }] });
        self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
            .await
            .map_err(|e| e.into_tracker_error(call))?;
        tracing::info!(model_id = id, run_id = %run.run_id, "created an MLflow logged model");
        Ok(model)
    }

    /// READY or FAILED (LoggedModelStatus 2 or 3); nothing to do without a logged model.
    pub(super) async fn finalize(
        &self,
        model: &LoggedModel,
        ready: bool,
    ) -> Result<(), TrackerError> {
        let Some(id) = &model.model_id else {
            return Ok(());
        };
        let call = "logged-models/finalize";
        let status = if ready {
            "LOGGED_MODEL_READY"
        } else {
            "LOGGED_MODEL_UPLOAD_FAILED"
        };
        let body = json!({ "model_id": id, "status": status });
        self.api(
            Method::PATCH,
            &format!("logged-models/{id}"),
            &[],
            Some(&body),
            Retry::Idempotent,
        )
        .await
        .map(|_| ())
        .map_err(|e| e.into_tracker_error(call))
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::api_error;
    use super::*;

    fn run() -> RunInfo {
        RunInfo {
            run_id: "r1".into(),
            experiment_id: "3".into(),
            artifact_uri: "s3://b/mlflow/3/r1/artifacts/".into(),
        }
    }

    #[test]
    fn an_mlflow_2_server_is_told_apart_from_a_refused_request() {
        // MLflow 2's Flask app has no route: an HTML 404 without an error code.
        let missing = api_error(
            StatusCode::NOT_FOUND,
            b"<!doctype html><title>404 Not Found</title>",
        );
        assert!(endpoint_missing(&missing));
        let missing = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error_code":"ENDPOINT_NOT_FOUND","message":"No such endpoint"}"#,
        );
        assert!(endpoint_missing(&missing));
        // A 404 about the request itself (an unknown experiment) is a real error.
        let unknown_experiment = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"No Experiment with id=9"}"#,
        );
        assert!(!endpoint_missing(&unknown_experiment));
        assert!(!endpoint_missing(&api_error(
            StatusCode::BAD_REQUEST,
            br#"{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}"#
        )));
        assert!(!endpoint_missing(&api_error(StatusCode::UNAUTHORIZED, b"")));
        assert!(!endpoint_missing(&CallError::Transport {
            message: "refused".into(),
            source: None,
        }));
    }

    #[test]
    fn without_logged_models_versions_come_from_the_runs_model_folder() {
        let fallback = files_under_run(&run());
        assert_eq!(fallback.model_id, None);
        assert_eq!(fallback.artifact_uri, "s3://b/mlflow/3/r1/artifacts/model");
        let body = model_version_body("fraud-risk", &run(), &fallback);
        assert_eq!(body["source"], "s3://b/mlflow/3/r1/artifacts/model");
        assert_eq!(body["run_id"], "r1");
        assert!(body.get("model_id").is_none());

        let logged = LoggedModel {
            model_id: Some("m-abc".into()),
            artifact_uri: "s3://b/mlflow/3/models/m-abc/artifacts".into(),
        };
        let body = model_version_body("fraud-risk", &run(), &logged);
        assert_eq!(body["source"], "models:/m-abc");
        assert_eq!(body["model_id"], "m-abc");
    }

    #[test]
    fn metrics_are_linked_and_the_kind_tag_is_found() {
        let mut body = json!({ "metrics": [{ "key": "holdout_roc_auc", "value": 0.9 }] });
        link_metrics(&mut body, "m-1");
        assert_eq!(body["metrics"][0]["model_id"], "m-1");
        let tagged = json!({ "tags": [{ "key": EXPERIMENT_KIND_TAG, "value": "finetuning" }] });
        assert!(has_experiment_kind(&tagged));
        assert!(!has_experiment_kind(&json!({ "tags": [] })));
        assert!(!has_experiment_kind(&json!({})));
        assert_eq!(experiment_kind_tag()["value"], "custom_model_development");
    }
}
