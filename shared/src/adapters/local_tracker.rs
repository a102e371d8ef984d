//! A local folder as tracking server and model registry: the local default, so the whole
//! life cycle runs with no MLflow server. The layout mirrors MLflow's concepts:
//!
//! ```text
//! <root>/runs/<run_id>/run.json          status, experiment, params, metrics, tags
//! <root>/runs/<run_id>/artifacts/...     logged files (the model's under `model/`)
//! <root>/models/<model_id>.json          a logged model: status, source run, params, metrics
//! <root>/registry/<model>.json           versions and aliases
//! ```
//!
//! Metric, param and tag names are the pipeline's, the same as on MLflow.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::local_artifacts::safe_join;
use crate::ports::{
    LoggedModel, ModelSpec, ModelVersionInfo, RunData, RunInfo, RunStatus, Tracker, TrackerError,
};

/// Runs and registered models as JSON files below a root folder.
#[derive(Debug)]
pub struct LocalTracker {
    root: PathBuf,
    // One writer at a time inside this process; read-modify-write of the JSON files.
    write_lock: Mutex<()>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredRun {
    run_id: String,
    experiment: String,
    run_name: String,
    status: String,
    start_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    params: Vec<(String, String)>,
    metrics: Vec<(String, f64)>,
    tags: Vec<(String, String)>,
}

/// A logged model, as MLflow 3 keeps one.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredModel {
    model_id: String,
    name: String,
    model_type: String,
    source_run_id: String,
    /// PENDING, READY or FAILED.
    status: String,
    artifact_uri: String,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    metrics: Vec<(String, f64)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredRegistry {
    name: String,
    versions: Vec<ModelVersionInfo>,
}

/// A failure described in words.
fn failure(call: &str, message: impl std::fmt::Display) -> TrackerError {
    TrackerError::new(call, message.to_string())
}

/// A failure of the file system or JSON, kept as the source.
fn failed<E>(call: &str, error: E) -> TrackerError
where
    E: std::error::Error + Send + Sync + 'static,
{
    TrackerError::new(call, error.to_string()).with_source(error)
}

impl LocalTracker {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalTracker {
            root: root.into(),
            write_lock: Mutex::new(()),
        }
    }

    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    fn model_file(&self, call: &str, model: &LoggedModel) -> Result<PathBuf, TrackerError> {
        let id = model
            .model_id
            .as_deref()
            .ok_or_else(|| failure(call, "the model has no id"))?;
        safe_join(&self.root.join("models"), &format!("{id}.json"))
            .ok_or_else(|| failure(call, format!("invalid model id {id:?}")))
    }

    async fn update_model(
        &self,
        call: &str,
        model: &LoggedModel,
        change: impl FnOnce(&mut StoredModel),
    ) -> Result<(), TrackerError> {
        let _guard = self.write_lock.lock().await;
        let path = self.model_file(call, model)?;
        let mut stored: StoredModel = Self::read_json(call, &path).await?;
        if Some(stored.model_id.as_str()) != model.model_id.as_deref() {
            return Err(failure(
                call,
                format!("no logged model {:?}", model.model_id),
            ));
        }
        change(&mut stored);
        Self::write_json(call, &path, &stored).await
    }

    fn registry_file(&self, call: &str, model: &str) -> Result<PathBuf, TrackerError> {
        safe_join(&self.root.join("registry"), &format!("{model}.json"))
            .ok_or_else(|| failure(call, format!("invalid model name {model:?}")))
    }

    async fn read_json<T: for<'de> Deserialize<'de> + Default>(
        call: &str,
        path: &PathBuf,
    ) -> Result<T, TrackerError> {
        match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| failed(call, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(failed(call, e)),
        }
    }

    async fn write_json<T: Serialize>(
        call: &str,
        path: &PathBuf,
        value: &T,
    ) -> Result<(), TrackerError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| failed(call, e))?;
        }
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| failed(call, e))?;
        let temporary = path.with_extension("partial");
        tokio::fs::write(&temporary, bytes)
            .await
            .map_err(|e| failed(call, e))?;
        tokio::fs::rename(&temporary, path)
            .await
            .map_err(|e| failed(call, e))
    }

    async fn update_run(
        &self,
        call: &str,
        run: &RunInfo,
        change: impl FnOnce(&mut StoredRun),
    ) -> Result<(), TrackerError> {
        let _guard = self.write_lock.lock().await;
        let path = self.run_dir(&run.run_id).join("run.json");
        let mut stored: StoredRun = Self::read_json(call, &path).await?;
        if stored.run_id != run.run_id {
            return Err(failure(call, format!("no run {}", run.run_id)));
        }
        change(&mut stored);
        Self::write_json(call, &path, &stored).await
    }
}

#[async_trait]
impl Tracker for LocalTracker {
    async fn start_run(&self, experiment: &str, run_name: &str) -> Result<RunInfo, TrackerError> {
        let _guard = self.write_lock.lock().await;
        let now = Utc::now();
        let run_id = format!(
            "{}{:08x}",
            now.format("%Y%m%d%H%M%S%6f"),
            rand::random::<u32>()
        );
        let dir = self.run_dir(&run_id);
        let stored = StoredRun {
            run_id: run_id.clone(),
            experiment: experiment.to_string(),
            run_name: run_name.to_string(),
            status: "RUNNING".to_string(),
            start_time: Some(now),
            ..StoredRun::default()
        };
        Self::write_json("runs/create", &dir.join("run.json"), &stored).await?;
        Ok(RunInfo {
            run_id,
            experiment_id: experiment.to_string(),
            artifact_uri: dir.join("artifacts").display().to_string(),
        })
    }

    async fn log_batch(&self, run: &RunInfo, data: &RunData) -> Result<(), TrackerError> {
        self.update_run("runs/log-batch", run, |stored| {
            stored.params.extend(data.params.iter().cloned());
            stored.metrics.extend(data.metrics.iter().cloned());
            stored.tags.extend(data.tags.iter().cloned());
        })
        .await
    }

    async fn log_artifact(
        &self,
        run: &RunInfo,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        let target = safe_join(&self.run_dir(&run.run_id).join("artifacts"), path)
            .ok_or_else(|| failure("log-artifact", format!("invalid artifact path {path:?}")))?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| failed("log-artifact", e))?;
        }
        tokio::fs::write(&target, bytes)
            .await
            .map_err(|e| failed("log-artifact", e))
    }

    async fn end_run(&self, run: &RunInfo, status: RunStatus) -> Result<(), TrackerError> {
        self.update_run("runs/update", run, |stored| {
            stored.status = match status {
                RunStatus::Finished => "FINISHED",
                RunStatus::Failed => "FAILED",
            }
            .to_string();
            stored.end_time = Some(Utc::now());
        })
        .await
    }

    async fn create_logged_model(
        &self,
        run: &RunInfo,
        spec: &ModelSpec,
    ) -> Result<LoggedModel, TrackerError> {
        let model = LoggedModel {
            model_id: Some(format!("m-{:032x}", rand::random::<u128>())),
            artifact_uri: self
                .run_dir(&run.run_id)
                .join("artifacts")
                .join("model")
                .display()
                .to_string(),
        };
        let stored = StoredModel {
            model_id: model.model_id.clone().unwrap_or_default(),
            name: spec.name.clone(),
            model_type: spec.model_type.clone(),
            source_run_id: run.run_id.clone(),
            status: "PENDING".to_string(),
            artifact_uri: model.artifact_uri.clone(),
            params: spec.params.clone(),
            tags: spec.tags.clone(),
            metrics: Vec::new(),
        };
        let call = "logged-models";
        let _guard = self.write_lock.lock().await;
        Self::write_json(call, &self.model_file(call, &model)?, &stored).await?;
        Ok(model)
    }

    async fn log_model_metrics(
        &self,
        run: &RunInfo,
        model: &LoggedModel,
        metrics: &[(String, f64)],
    ) -> Result<(), TrackerError> {
        self.update_run("runs/log-batch", run, |stored| {
            stored.metrics.extend(metrics.iter().cloned());
        })
        .await?;
        self.update_model("runs/log-batch", model, |stored| {
            stored.metrics.extend(metrics.iter().cloned());
        })
        .await
    }

    async fn log_model_artifact(
        &self,
        run: &RunInfo,
        _model: &LoggedModel,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        self.log_artifact(run, &format!("model/{path}"), bytes)
            .await
    }

    async fn finalize_logged_model(
        &self,
        model: &LoggedModel,
        ready: bool,
    ) -> Result<(), TrackerError> {
        self.update_model("logged-models/finalize", model, |stored| {
            stored.status = if ready { "READY" } else { "FAILED" }.to_string();
        })
        .await
    }

    async fn create_model_version(
        &self,
        model_name: &str,
        run: &RunInfo,
        model: &LoggedModel,
    ) -> Result<ModelVersionInfo, TrackerError> {
        let call = "model-versions/create";
        let _guard = self.write_lock.lock().await;
        let path = self.registry_file(call, model_name)?;
        let mut registry: StoredRegistry = Self::read_json(call, &path).await?;
        registry.name = model_name.to_string();
        let version = registry
            .versions
            .iter()
            .map(|v| v.version)
            .max()
            .unwrap_or(0)
            + 1;
        let info = ModelVersionInfo {
            version,
            run_id: run.run_id.clone(),
            source: model.artifact_uri.clone(),
            aliases: Vec::new(),
        };
        registry.versions.push(info.clone());
        Self::write_json(call, &path, &registry).await?;
        Ok(info)
    }

    async fn set_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: u32,
    ) -> Result<(), TrackerError> {
        let call = "registered-models/alias";
        let _guard = self.write_lock.lock().await;
        let path = self.registry_file(call, model_name)?;
        let mut registry: StoredRegistry = Self::read_json(call, &path).await?;
        if !registry.versions.iter().any(|v| v.version == version) {
            return Err(failure(
                call,
                format!("model {model_name} has no version {version}"),
            ));
        }
        for entry in registry.versions.iter_mut() {
            entry.aliases.retain(|a| a != alias);
            if entry.version == version {
                entry.aliases.push(alias.to_string());
            }
        }
        Self::write_json(call, &path, &registry).await
    }

    async fn alias_version(
        &self,
        model_name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersionInfo>, TrackerError> {
        let call = "registered-models/alias";
        let path = self.registry_file(call, model_name)?;
        let registry: StoredRegistry = Self::read_json(call, &path).await?;
        Ok(registry
            .versions
            .into_iter()
            .find(|v| v.aliases.iter().any(|a| a == alias)))
    }

    async fn list_versions(&self, model_name: &str) -> Result<Vec<ModelVersionInfo>, TrackerError> {
        let call = "model-versions/search";
        let path = self.registry_file(call, model_name)?;
        let registry: StoredRegistry = Self::read_json(call, &path).await?;
        Ok(registry.versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_count_up_and_the_alias_moves() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = LocalTracker::new(dir.path());
        let run = tracker
            .start_run("fraud-risk", "initialtrain")
            .await
            .unwrap();
        tracker
            .log_batch(
                &run,
                &RunData {
                    metrics: vec![("roc_auc".into(), 0.8)],
                    ..RunData::default()
                },
            )
            .await
            .unwrap();
        let spec = ModelSpec {
            name: "fraud-risk".into(),
            model_type: "logistic_regression".into(),
            params: vec![("alpha".into(), "1".into())],
            tags: Vec::new(),
        };
        let model = tracker.create_logged_model(&run, &spec).await.unwrap();
        tracker
            .log_model_artifact(&run, &model, "model.json", b"{}".to_vec())
            .await
            .unwrap();
        tracker
            .log_model_metrics(&run, &model, &[("holdout_roc_auc".into(), 0.9)])
            .await
            .unwrap();
        tracker.finalize_logged_model(&model, true).await.unwrap();
        let stored_model: StoredModel = serde_json::from_slice(
            &std::fs::read(tracker.model_file("test", &model).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(stored_model.status, "READY");
        assert_eq!(stored_model.source_run_id, run.run_id);
        assert_eq!(stored_model.metrics, [("holdout_roc_auc".to_string(), 0.9)]);
        assert!(std::path::Path::new(&model.artifact_uri)
            .join("model.json")
            .is_file());
        let v1 = tracker
            .create_model_version("fraud-risk", &run, &model)
            .await
            .unwrap();
        let v2 = tracker
            .create_model_version("fraud-risk", &run, &model)
            .await
            .unwrap();
        assert_eq!(v1.source, model.artifact_uri);
        assert_eq!((v1.version, v2.version), (1, 2));
        tracker
            .set_alias("fraud-risk", "champion", 1)
            .await
            .unwrap();
        tracker
            .set_alias("fraud-risk", "champion", 2)
            .await
            .unwrap();
        let champion = tracker
            .alias_version("fraud-risk", "champion")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(champion.version, 2);
        let versions = tracker.list_versions("fraud-risk").await.unwrap();
        assert!(versions[0].aliases.is_empty());
        assert!(tracker
            .set_alias("fraud-risk", "champion", 9)
            .await
            .is_err());
        tracker.end_run(&run, RunStatus::Finished).await.unwrap();
        let stored: StoredRun = serde_json::from_slice(
            &std::fs::read(dir.path().join("runs").join(&run.run_id).join("run.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(stored.status, "FINISHED");
        assert_eq!(
            stored.metrics,
            [
                ("roc_auc".to_string(), 0.8),
                ("holdout_roc_auc".to_string(), 0.9)
            ]
        );
    }
}
