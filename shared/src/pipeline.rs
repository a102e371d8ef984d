//! The life cycle: initial training, drift check, retraining, promotion, prediction.
//!
//! Pure logic over the ports; the same code runs in a Lambda, in `fraudctl` and in tests.
//!
//! Promotion order, so a failure never leaves a half promotion: the model files are written
//! under `models/v<N>/`, the registry alias is moved, and the champion pointer is written
//! last. Serving reads only the pointer and the file it names. If the pointer cannot be
//! written, the alias is moved back to the previous champion.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::fingerprint;
use crate::drift::{detect_drift, DriftConfig, DriftReport};
use crate::model::{
    distinct_row_count, evaluate, fit, stratified_split, train_with_holdout, Metrics, Model,
    ModelArtifact, ModelError, Prediction, Provenance, TrainConfig,
};
use crate::ports::{
    ArtifactError, ArtifactStore, PredictionLog, PredictionLogEntry, RecordRole, RecordStore,
    RunData, RunInfo, RunStatus, StoreError, Tracker, TrackerError, TrainingLock,
};
use crate::schema::{Applicant, LabeledRecord};

mod tracking;
use tracking::{
    describe, push_common_tags, push_drift_metrics, push_metrics, push_prediction_metrics,
    push_training_params, ModelRecord,
};
pub use tracking::{DRIFT_TABLE_PATH, NOTE_TAG, NO_PREDICTIONS_TAG};

/// The key of the champion pointer in the artifact store.
pub const CHAMPION_POINTER_KEY: &str = "champion.json";
/// The registry alias of the served model.
pub const CHAMPION_ALIAS: &str = "champion";

/// What can stop a pipeline step.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("another training is running; try again when it has finished")]
    Busy,
    #[error("no model has been trained yet: run initialtrain first")]
    NoChampion,
    #[error("there is no reference data: load it first (fraudctl load-data)")]
    NoReferenceData,
    #[error("the champion model in the artifact store is unusable: {0}")]
    CorruptChampion(String),
    /// `initialtrain` would replace, untested, a champion a retrain promoted after comparing.
    #[error(
        "the champion, version {version}, was promoted by retrain after a comparison; \
         initialtrain would replace it without one"
    )]
    ChampionFromRetrain { version: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error("training failed: {0}")]
    Model(#[from] ModelError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    /// What the caller can do about the error, when there is something to do.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PipelineError::ChampionFromRetrain { .. } => Some(
                "to replace it anyway: fraudctl initialtrain --force (API: POST /initialtrain?force=true); \
                 to improve on it: load new rows and retrain",
            ),
            _ => None,
        }
    }
}

/// How `retrain` decides whether to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetrainMode {
    /// Train a challenger whenever new rows wait (the monthly rule, the manual endpoint).
    Always,
    /// Train only when enough new rows wait and the drift test fires; otherwise absorb them.
    IfDrift,
}

impl RetrainMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "always" => Some(RetrainMode::Always),
            "if-drift" | "if_drift" => Some(RetrainMode::IfDrift),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RetrainMode::Always => "always",
            RetrainMode::IfDrift => "if-drift",
        }
    }
}

/// Settings of the life cycle.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Tracking experiment name.
    pub experiment: String,
    /// Registered model name.
    pub model_name: String,
    pub training: TrainConfig,
    pub drift: DriftConfig,
    /// A challenger is promoted when its ROC AUC on recent held-out rows is at least the
    /// champion's minus this margin.
    pub promotion_margin: f64,
    /// `if-drift` waits for this many new rows (the seed's number).
    pub min_new_rows: usize,
    /// Share of the new rows held out to compare challenger and champion.
    pub recent_holdout_fraction: f64,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            experiment: "fraud-risk".to_string(),
            model_name: "fraud-risk".to_string(),
            training: TrainConfig::default(),
            drift: DriftConfig::default(),
            promotion_margin: 0.005,
            min_new_rows: 1000,
            recent_holdout_fraction: 0.3,
        }
    }
}

/// `ChampionPointer::promoted_by` of a champion `initialtrain` made.
pub const PROMOTED_BY_INITIALTRAIN: &str = "initialtrain";
/// `ChampionPointer::promoted_by` of a challenger `retrain` promoted after comparing.
pub const PROMOTED_BY_RETRAIN: &str = "retrain";

/// The small object that names the served model. Written last on promotion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChampionPointer {
    pub version: u32,
    /// Key of the model artifact in the artifact store.
    pub model_key: String,
    /// SHA-256 of the model artifact, checked on load.
    pub sha256: String,
    pub run_id: String,
    pub promoted_at: DateTime<Utc>,
    /// `initialtrain` or `retrain`; absent in pointers written before it was recorded.
    #[serde(default)]
    pub promoted_by: Option<String>,
}

/// The served model, loaded from the artifact store.
#[derive(Clone, Debug)]
pub struct Champion {
    pub pointer: ChampionPointer,
    pub artifact: Arc<ModelArtifact>,
    pub model: Arc<Model>,
}

/// Reads the champion pointer alone (a cheap check whether the champion changed).
pub async fn read_champion_pointer(
    artifacts: &dyn ArtifactStore,
) -> Result<Option<ChampionPointer>, PipelineError> {
    let Some(bytes) = artifacts.get(CHAMPION_POINTER_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| PipelineError::CorruptChampion(format!("{CHAMPION_POINTER_KEY}: {e}")))
}

/// Loads the model the pointer names, checking its hash.
pub async fn load_champion_from(
    artifacts: &dyn ArtifactStore,
    pointer: ChampionPointer,
) -> Result<Champion, PipelineError> {
    let bytes = artifacts.get(&pointer.model_key).await?.ok_or_else(|| {
        PipelineError::CorruptChampion(format!("{} is missing", pointer.model_key))
    })?;
    if sha256_hex(&bytes) != pointer.sha256 {
        return Err(PipelineError::CorruptChampion(format!(
            "{} does not match the pointer's checksum",
            pointer.model_key
        )));
    }
    let artifact = ModelArtifact::from_json_bytes(&bytes)
        .map_err(|e| PipelineError::CorruptChampion(e.to_string()))?;
    let model = artifact
        .model()
        .map_err(|e| PipelineError::CorruptChampion(e.to_string()))?;
    Ok(Champion {
        pointer,
        artifact: Arc::new(artifact),
        model: Arc::new(model),
    })
}

/// Loads the champion, or `None` before the first training.
pub async fn load_champion(
    artifacts: &dyn ArtifactStore,
) -> Result<Option<Champion>, PipelineError> {
    match read_champion_pointer(artifacts).await? {
        Some(pointer) => load_champion_from(artifacts, pointer).await.map(Some),
        None => Ok(None),
    }
}

/// What a training run produced.
#[derive(Clone, Debug, Serialize)]
pub struct TrainingSummary {
    pub version: u32,
    pub run_id: String,
    pub promoted: bool,
    pub alpha: f64,
    pub training_rows: usize,
    pub holdout_rows: usize,
    pub data_fingerprint: String,
    pub metrics: Metrics,
}

/// Challenger against champion on held-out recent rows.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub holdout_rows: usize,
    pub margin: f64,
    pub challenger: Metrics,
    pub champion: Metrics,
}

/// What `retrain` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrainOutcome {
    /// The challenger became champion.
    Promoted,
    /// The challenger was registered but the champion stays.
    Rejected,
    /// No drift: the new rows joined the reference pool, no training.
    AbsorbedWithoutRetraining,
    /// `if-drift` mode: too few new rows yet.
    WaitingForRows,
    /// Nothing new to learn from.
    NoNewRows,
}

/// The summary of a retrain call.
#[derive(Clone, Debug, Serialize)]
pub struct RetrainSummary {
    pub mode: RetrainMode,
    pub outcome: RetrainOutcome,
    pub reason: String,
    pub previous_champion_version: u32,
    pub champion_version: u32,
    pub challenger_version: Option<u32>,
    pub new_rows: usize,
    pub run_id: Option<String>,
    pub drift: Option<DriftReport>,
    pub comparison: Option<Comparison>,
}

/// A served prediction and the version that made it.
#[derive(Clone, Debug, Serialize)]
pub struct ServedPrediction {
    #[serde(flatten)]
    pub prediction: Prediction,
    pub model_version: u32,
}

/// Scores one applicant with the champion and logs it (never as a training label).
pub async fn predict_and_log(
    champion: &Champion,
    applicants: &[Applicant],
    log: &dyn PredictionLog,
    username: Option<&str>,
) -> Result<Vec<ServedPrediction>, PipelineError> {
    let now = Utc::now();
    let served: Vec<ServedPrediction> = applicants
        .iter()
        .map(|a| ServedPrediction {
            prediction: champion.model.predict(a),
            model_version: champion.pointer.version,
        })
        .collect();
    let entries: Vec<PredictionLogEntry> = applicants
        .iter()
        .zip(served.iter())
        .map(|(a, s)| PredictionLogEntry {
            created_at: now,
            model_version: s.model_version,
            probability_of_fraud: s.prediction.probability_of_fraud,
            fraud: s.prediction.decision == crate::model::Decision::Fraud,
            features: a.to_json(),
            username: username.map(str::to_string),
        })
        .collect();
    log.log_predictions(&entries).await?;
    Ok(served)
}

/// Trains on all reference rows, registers a new version and makes it champion.
pub async fn initial_train(
    records: &dyn RecordStore,
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    force: bool,
) -> Result<TrainingSummary, PipelineError> {
    let lock = records
        .try_lock_training("initialtrain")
        .await?
        .ok_or(PipelineError::Busy)?;
    let result =
        initial_train_locked(records, artifacts, tracker, settings, lock.as_ref(), force).await;
    let released = lock.release().await;
    let summary = result?;
    released?;
    Ok(summary)
}

async fn initial_train_locked(
    records: &dyn RecordStore,
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    lock: &dyn TrainingLock,
    force: bool,
) -> Result<TrainingSummary, PipelineError> {
    let stored = records.records_by_role(RecordRole::Reference).await?;
    if stored.is_empty() {
        return Err(PipelineError::NoReferenceData);
    }
    let previous = read_champion_pointer(artifacts).await?;
    if let Some(champion) = previous.as_ref().filter(|_| !force) {
        if champion.promoted_by.as_deref() == Some(PROMOTED_BY_RETRAIN) {
            return Err(PipelineError::ChampionFromRetrain {
                version: champion.version,
            });
        }
    }
    let labeled: Vec<LabeledRecord> = stored.iter().map(|s| s.record).collect();
    let data_fingerprint = fingerprint(&labeled);
    let distinct_rows = distinct_row_count(&labeled);
    let config = settings.training.clone();
    let outcome = run_blocking(move || train_with_holdout(&labeled, &config)).await??;

    let run = tracker
        .start_run(&settings.experiment, "initialtrain")
        .await?;
    let result = async {
        let mut data = RunData::default();
        push_training_params(&mut data, &settings.training, outcome.chosen_alpha);
        data.params.extend([
            ("mode".to_string(), "initialtrain".to_string()),
            ("training_rows".to_string(), outcome.train_rows.to_string()),
            ("holdout_rows".to_string(), outcome.holdout_rows.to_string()),
        ]);
        push_common_tags(&mut data, &data_fingerprint, "promoted");
        tracker.log_batch(&run, &data).await?;

        let provenance = Provenance::now(
            outcome.train_rows,
            distinct_rows,
            data_fingerprint.clone(),
            settings.training.seed,
        );
        let artifact = ModelArtifact::new(
            &outcome.model,
            outcome.chosen_alpha,
            outcome.cv.clone(),
            Some(outcome.metrics.clone()),
            provenance,
        );
        let published = publish_version(
            artifacts,
            tracker,
            settings,
            &run,
            artifact,
            None,
            &outcome.metrics.classification_report(),
        )
        .await?;
        describe(
            tracker,
            &run,
            format!(
                "Trained a logistic regression (alpha {}) on {} reference rows: ROC AUC {:.4} \
                 on {} held-out rows; registered as version {} and made champion.",
                outcome.chosen_alpha,
                outcome.train_rows,
                outcome.metrics.roc_auc,
                outcome.holdout_rows,
                published.version
            ),
        )
        .await?;
        promote(
            artifacts,
            tracker,
            settings,
            lock,
            &published,
            previous.as_ref(),
            PROMOTED_BY_INITIALTRAIN,
        )
        .await?;
        let ids: Vec<i64> = stored
            .iter()
            .filter(|s| s.absorbed_by.is_none())
            .map(|s| s.id)
            .collect();
        records.mark_absorbed(&ids, published.version).await?;
        Ok(TrainingSummary {
            version: published.version,
            run_id: run.run_id.clone(),
            promoted: true,
            alpha: outcome.chosen_alpha,
            training_rows: outcome.train_rows,
            holdout_rows: outcome.holdout_rows,
            data_fingerprint: data_fingerprint.clone(),
            metrics: outcome.metrics.clone(),
        })
    }
    .await;
    finish_run(tracker, &run, result).await
}

/// Drift-tests the waiting rows against the champion's training data and, depending on the
/// mode and the test, trains a challenger and promotes it if it is not worse.
pub async fn retrain(
    records: &dyn RecordStore,
    predictions: &dyn PredictionLog,
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    mode: RetrainMode,
) -> Result<RetrainSummary, PipelineError> {
    let lock = records
        .try_lock_training(&format!("retrain ({})", mode.as_str()))
        .await?
        .ok_or(PipelineError::Busy)?;
    let result = retrain_locked(
        records,
        predictions,
        artifacts,
        tracker,
        settings,
        mode,
        lock.as_ref(),
    )
    .await;
    let released = lock.release().await;
    let summary = result?;
    released?;
    Ok(summary)
}

async fn retrain_locked(
    records: &dyn RecordStore,
    predictions: &dyn PredictionLog,
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    mode: RetrainMode,
    lock: &dyn TrainingLock,
) -> Result<RetrainSummary, PipelineError> {
    let champion = load_champion(artifacts)
        .await?
        .ok_or(PipelineError::NoChampion)?;
    let champion_version = champion.pointer.version;
    let pending = records.pending_records().await?;
    let summary = |outcome, reason: String| RetrainSummary {
        mode,
        outcome,
        reason,
        previous_champion_version: champion_version,
        champion_version,
        challenger_version: None,
        new_rows: pending.len(),
        run_id: None,
        drift: None,
        comparison: None,
    };
    if pending.is_empty() {
        return Ok(summary(
            RetrainOutcome::NoNewRows,
            "no new labelled rows are waiting".to_string(),
        ));
    }
    if mode == RetrainMode::IfDrift && pending.len() < settings.min_new_rows {
        return Ok(summary(
            RetrainOutcome::WaitingForRows,
            format!(
                "{} new rows are waiting; if-drift mode tests from {}",
                pending.len(),
                settings.min_new_rows
            ),
        ));
    }

    let absorbed = records.absorbed_records().await?;
    let reference: Vec<Applicant> = absorbed
        .iter()
        .filter(|s| s.absorbed_by.is_some_and(|v| v <= champion_version))
        .map(|s| s.record.applicant)
        .collect();
    let current: Vec<Applicant> = pending.iter().map(|s| s.record.applicant).collect();
    let drift_config = settings.drift.clone();
    let drift = run_blocking(move || detect_drift(&reference, &current, &drift_config)).await?;
    let pending_ids: Vec<i64> = pending.iter().map(|s| s.id).collect();
    let data_fingerprint = fingerprint(&pending.iter().map(|s| s.record).collect::<Vec<_>>());
    let stats = predictions
        .prediction_stats(Some(champion.pointer.promoted_at))
        .await?;

    let run_name = format!("retrain-{}", mode.as_str());
    if mode == RetrainMode::IfDrift && !drift.drift {
        let run = tracker.start_run(&settings.experiment, &run_name).await?;
        let result = async {
            let mut data = RunData::default();
            data.params
                .push(("mode".to_string(), mode.as_str().to_string()));
            data.params
                .push(("new_rows".to_string(), pending.len().to_string()));
            push_drift_metrics(&mut data, &drift);
            push_prediction_metrics(&mut data, &stats);
            push_common_tags(&mut data, &data_fingerprint, "absorbed_without_retraining");
            tracker.log_batch(&run, &data).await?;
            tracker
                .log_artifact(&run, "drift_report.json", json_bytes(&drift)?)
                .await?;
            tracker
                .log_artifact(&run, DRIFT_TABLE_PATH, tracking::drift_table(&drift)?)
                .await?;
            describe(
                tracker,
                &run,
                format!(
                    "Drift-tested {} new rows: no feature drifted, so they joined the \
                     reference data without retraining; version {} stays champion.",
                    pending.len(),
                    champion_version
                ),
            )
            .await?;
            records
                .mark_absorbed(&pending_ids, champion_version)
                .await?;
            Ok(())
        }
        .await;
        finish_run(tracker, &run, result).await?;
        let mut out = summary(
            RetrainOutcome::AbsorbedWithoutRetraining,
            "no feature drifted: the new rows joined the reference data without retraining"
                .to_string(),
        );
        out.run_id = Some(run.run_id);
        out.drift = Some(drift);
        return Ok(out);
    }

    // Hold out a slice of the new rows to compare challenger and champion on recent data.
    let pending_records: Vec<LabeledRecord> = pending.iter().map(|s| s.record).collect();
    let (recent_train, recent_holdout) = stratified_split(
        &pending_records,
        settings.recent_holdout_fraction,
        settings.training.seed,
    );
    let mut training: Vec<LabeledRecord> = absorbed.iter().map(|s| s.record).collect();
    training.extend(recent_train.iter().copied());
    let training_rows = training.len();
    let distinct_rows = distinct_row_count(&training);
    let config = settings.training.clone();
    let fitted = run_blocking(move || fit(&training, &config)).await??;
    let challenger_metrics = evaluate(&fitted.model, &recent_holdout);
    let champion_metrics = evaluate(&champion.model, &recent_holdout);

    let run = tracker.start_run(&settings.experiment, &run_name).await?;
    let result = async {
        let (comparison, promote_it, reason) = match (challenger_metrics, champion_metrics) {
            (Ok(challenger), Ok(champion_m)) => {
                let promote_it =
                    challenger.roc_auc >= champion_m.roc_auc - settings.promotion_margin;
                let reason = format!(
                    "on {} held-out new rows the challenger's ROC AUC is {:.4} and the champion's {:.4} (margin {}){}",
                    recent_holdout.len(),
                    challenger.roc_auc,
                    champion_m.roc_auc,
                    settings.promotion_margin,
                    if promote_it { ": promoted" } else { ": the champion stays" }
                );
                let comparison = Comparison {
                    holdout_rows: recent_holdout.len(),
                    margin: settings.promotion_margin,
                    challenger,
                    champion: champion_m,
                };
                (Some(comparison), promote_it, reason)
            }
            (Err(e), _) | (_, Err(e)) => (
                None,
                false,
                format!("challenger and champion could not be compared on the held-out new rows ({e}): the champion stays"),
            ),
        };
        let decision = if promote_it { "promoted" } else { "rejected" };
        let mut data = RunData::default();
        push_training_params(&mut data, &settings.training, fitted.chosen_alpha);
        data.params.extend([
            ("mode".to_string(), mode.as_str().to_string()),
            ("new_rows".to_string(), pending.len().to_string()),
            ("training_rows".to_string(), training_rows.to_string()),
            ("recent_holdout_rows".to_string(), recent_holdout.len().to_string()),
            ("previous_champion_version".to_string(), champion_version.to_string()),
            ("promotion_margin".to_string(), settings.promotion_margin.to_string()),
        ]);
        // The challenger's holdout figures go with its logged model (publish_version).
        if let Some(c) = &comparison {
            push_metrics(&mut data, "champion_holdout_", &c.champion);
        }
        push_drift_metrics(&mut data, &drift);
        push_prediction_metrics(&mut data, &stats);
        push_common_tags(&mut data, &data_fingerprint, decision);
        tracker.log_batch(&run, &data).await?;

        let provenance = Provenance::now(
            training_rows,
            distinct_rows,
            data_fingerprint.clone(),
            settings.training.seed,
        );
        let artifact = ModelArtifact::new(
            &fitted.model,
            fitted.chosen_alpha,
            fitted.cv.clone(),
            comparison.as_ref().map(|c| c.challenger.clone()),
            provenance,
        );
        let report = comparison
            .as_ref()
            .map(|c| c.challenger.classification_report())
            .unwrap_or_default();
        let published =
            publish_version(artifacts, tracker, settings, &run, artifact, Some(&drift), &report)
                .await?;
        let significant = drift.features.iter().filter(|f| f.significant).count();
        describe(
            tracker,
            &run,
            format!(
                "Retrained on {training_rows} rows ({} new; {significant} of {} features \
                 drifted) and registered version {}: {reason}.",
                pending.len(),
                drift.features.len(),
                published.version
            ),
        )
        .await?;
        if promote_it {
            promote(
                artifacts,
                tracker,
                settings,
                lock,
                &published,
                Some(&champion.pointer),
                PROMOTED_BY_RETRAIN,
            )
            .await?;
        }
        records.mark_absorbed(&pending_ids, published.version).await?;
        Ok(RetrainSummary {
            mode,
            outcome: if promote_it {
                RetrainOutcome::Promoted
            } else {
                RetrainOutcome::Rejected
            },
            reason,
            previous_champion_version: champion_version,
            champion_version: if promote_it {
                published.version
            } else {
                champion_version
            },
            challenger_version: Some(published.version),
            new_rows: pending.len(),
            run_id: Some(run.run_id.clone()),
            drift: Some(drift.clone()),
            comparison,
        })
    }
    .await;
    finish_run(tracker, &run, result).await
}

/// A registered version whose files are in the artifact store, not yet promoted.
struct PublishedVersion {
    version: u32,
    model_key: String,
    sha256: String,
    run_id: String,
}

/// Logs the model to the tracker, registers a version, and writes the serving copy.
async fn publish_version(
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    run: &RunInfo,
    mut artifact: ModelArtifact,
    drift: Option<&DriftReport>,
    classification_report: &str,
) -> Result<PublishedVersion, PipelineError> {
    let mlmodel = artifact.mlmodel_file(&run.run_id);
    let registered = tracking::log_and_register_model(
        tracker,
        settings,
        run,
        ModelRecord {
            config: &settings.training,
            chosen_alpha: artifact.alpha,
            cv: &artifact.cv,
            holdout: artifact.metrics.as_ref(),
            data_fingerprint: &artifact.provenance.data_fingerprint,
            model_json: artifact.to_json_bytes()?,
            mlmodel: mlmodel.clone(),
        },
    )
    .await?;
    if !classification_report.is_empty() {
        tracker
            .log_artifact(
                run,
                "classification_report.txt",
                classification_report.as_bytes().to_vec(),
            )
            .await?;
    }
    let drift_bytes = drift.map(json_bytes).transpose()?;
    if let (Some(bytes), Some(drift)) = (&drift_bytes, drift) {
        tracker
            .log_artifact(run, "drift_report.json", bytes.clone())
            .await?;
        tracker
            .log_artifact(run, DRIFT_TABLE_PATH, tracking::drift_table(drift)?)
            .await?;
    }
    let version = registered.version;

    artifact.provenance.version = Some(version);
    let serving_copy = artifact.to_json_bytes()?;
    let sha256 = sha256_hex(&serving_copy);
    let model_key = format!("models/v{version}/model.json");
    artifacts
        .put(&model_key, serving_copy, "application/json")
        .await?;
    artifacts
        .put(
            &format!("models/v{version}/MLmodel"),
            mlmodel.into_bytes(),
            "application/yaml",
        )
        .await?;
    if let Some(bytes) = drift_bytes {
        artifacts
            .put(
                &format!("models/v{version}/drift_report.json"),
                bytes,
                "application/json",
            )
            .await?;
    }
    Ok(PublishedVersion {
        version,
        model_key,
        sha256,
        run_id: run.run_id.clone(),
    })
}

/// Moves the registry alias, then writes the pointer: the pointer is the commit point.
/// Checks first that the training lock is still ours, so a training whose lock was lost
/// meanwhile (while another one may have started) cannot promote.
async fn promote(
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    lock: &dyn TrainingLock,
    published: &PublishedVersion,
    previous: Option<&ChampionPointer>,
    promoted_by: &str,
) -> Result<(), PipelineError> {
    lock.confirm_held().await?;
    tracker
        .set_alias(&settings.model_name, CHAMPION_ALIAS, published.version)
        .await?;
    let pointer = ChampionPointer {
        version: published.version,
        model_key: published.model_key.clone(),
        sha256: published.sha256.clone(),
        run_id: published.run_id.clone(),
        promoted_at: Utc::now(),
        promoted_by: Some(promoted_by.to_string()),
    };
    let written = artifacts
        .put(
            CHAMPION_POINTER_KEY,
            json_bytes(&pointer)?,
            "application/json",
        )
        .await;
    if let Err(error) = written {
        if let Some(previous) = previous {
            if let Err(restore) = tracker
                .set_alias(&settings.model_name, CHAMPION_ALIAS, previous.version)
                .await
            {
                tracing::error!(%restore, "could not move the champion alias back");
            }
        }
        return Err(error.into());
    }
    tracing::info!(version = published.version, "promoted a new champion");
    Ok(())
}

/// Ends the run as FINISHED or FAILED according to the result, and passes the result on.
async fn finish_run<T>(
    tracker: &dyn Tracker,
    run: &RunInfo,
    result: Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    match result {
        Ok(value) => {
            tracker.end_run(run, RunStatus::Finished).await?;
            Ok(value)
        }
        Err(error) => {
            let note = describe(tracker, run, format!("Failed: {error}.")).await;
            if let Err(note_error) = note {
                tracing::warn!(%note_error, "could not describe the failed run");
            }
            if let Err(end_error) = tracker.end_run(run, RunStatus::Failed).await {
                tracing::warn!(%end_error, "could not mark the run as failed");
            }
            Err(error)
        }
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, PipelineError> {
    serde_json::to_vec_pretty(value).map_err(|e| PipelineError::Internal(e.to_string()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs CPU-heavy work (training, drift) off the async threads.
async fn run_blocking<T, F>(work: F) -> Result<T, PipelineError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))
}
