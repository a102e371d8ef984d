//! Experiments and runs: the experiment looked up by name and created when missing (ids
//! cached per process, tagged with the experiment kind), `runs/create`, `runs/log-batch`
//! chunked to MLflow's limits (at most 1000 metrics, 100 params, 100 tags and 1000 entries in
//! all per request), `runs/update` to FINISHED or FAILED.

use reqwest::Method;
use serde_json::{json, Value};

use crate::ports::{LoggedModel, RunData, RunInfo, RunStatus, TrackerError};

use super::client::{string_field, tracker_error, Retry};
use super::{logged_models, MlflowTracker};

/// MLflow's per-request limits for `runs/log-batch`.
const MAX_METRICS_PER_BATCH: usize = 1000;
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_ENTRIES_PER_BATCH: usize = 1000;

impl MlflowTracker {
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

    /// Creates the experiment if needed and starts a run in it.
    pub(super) async fn create_run(
        &self,
        experiment: &str,
        run_name: &str,
    ) -> Result<RunInfo, TrackerError> {
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

    /// Logs params, metrics and tags in as many requests as MLflow's limits need.
    pub(super) async fn log_run_data(
        &self,
        run: &RunInfo,
        data: &RunData,
    ) -> Result<(), TrackerError> {
        let call = "runs/log-batch";
        for body in log_batch_bodies(&run.run_id, data, now_ms()) {
            self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
                .await
                .map_err(|e| e.into_tracker_error(call))?;
        }
        Ok(())
    }

    /// Ends the run as FINISHED or FAILED.
    pub(super) async fn finish_run(
        &self,
        run: &RunInfo,
        status: RunStatus,
    ) -> Result<(), TrackerError> {
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

    /// Logs metrics to the run, each linked to the logged model when there is one.
    pub(super) async fn log_linked_metrics(
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
}
