//! The life cycle: initial training, drift check, retraining, promotion, prediction.
//!
//! Pure logic over the ports; the same code runs in a Lambda, in `fraudctl` and in tests.
//!
//! Promotion order, so a failure never leaves a half promotion: the model folder (`model.json`,
//! `code/fraudrisk_pyfunc.py`, `MLmodel`) is written under `models/v<N>/`, the registry alias
//! is moved, and the champion pointer is written last. Serving reads only the pointer and the file it names. If the pointer cannot be
//! written, the alias is moved back to the previous champion.
//!
//! Layout: [`champion`] (the pointer, loading, publishing a version, promoting it),
//! [`initial_train`](mod@initial_train) and [`retrain`](mod@retrain) (each a sequence of named
//! steps), [`promotion`] (the decisions, as pure functions), `predict` (scoring and logging),
//! [`monitor`](mod@monitor) (served traffic against the champion's data), `tracking` (what runs
//! record, under which names).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::drift::DriftConfig;
use crate::model::{ModelError, TrainConfig};
use crate::ports::{
    ArtifactError, RecordStore, RunInfo, RunStatus, StoreError, Tracker, TrackerError, TrainingLock,
};
use crate::BoxError;

mod challenger;
pub mod champion;
pub mod initial_train;
pub mod model_card;
pub mod monitor;
mod predict;
pub mod promotion;
mod replay;
pub mod retrain;
mod tracking;

pub use champion::{
    load_champion, load_champion_from, read_champion_pointer, Champion, ChampionPointer,
    CHAMPION_ALIAS, CHAMPION_POINTER_KEY, PROMOTED_BY_INITIALTRAIN, PROMOTED_BY_RETRAIN,
};
pub use initial_train::{initial_train, TrainingSummary};
pub use monitor::{
    monitor, monitor_and_record, served_input_drift, MonitorRequest, MONITORING_EXPERIMENT,
    MONITOR_HTML_PATH, MONITOR_REPORT_PATH,
};
pub use predict::{predict_and_log, ServedPrediction};
pub use promotion::{Comparison, GateMargins, PromotionGate};
pub use retrain::{retrain, RetrainOutcome, RetrainSummary};
use tracking::describe;
pub use tracking::{
    DRIFT_HTML_PATH, DRIFT_REPORT_PATH, DRIFT_TABLE_PATH, NOTE_TAG, NO_PREDICTIONS_TAG,
};

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
    CorruptChampion(#[source] Cause),
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
    Internal(#[source] Cause),
}

/// What went wrong, in words, with the error underneath when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Cause {
    /// Readable on its own (it may quote `source`).
    pub message: String,
    #[source]
    pub source: Option<BoxError>,
}

impl Cause {
    /// A cause described in words alone.
    pub fn new(message: impl Into<String>) -> Self {
        Cause {
            message: message.into(),
            source: None,
        }
    }

    /// A cause that is `error`, kept as the source; `message` may add context.
    pub fn of<E>(message: impl Into<String>, error: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Cause {
            message: message.into(),
            source: Some(Box::new(error)),
        }
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// When a challenger replaces the champion: margins per criterion and the replay.
    pub promotion: PromotionGate,
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
            promotion: PromotionGate::default(),
            min_new_rows: 1000,
            recent_holdout_fraction: 0.3,
        }
    }
}

/// Takes the training lock, or refuses with [`PipelineError::Busy`] when another training
/// holds it.
async fn take_training_lock(
    records: &dyn RecordStore,
    holder: &str,
) -> Result<Box<dyn TrainingLock>, PipelineError> {
    records
        .try_lock_training(holder)
        .await?
        .ok_or(PipelineError::Busy)
}

/// Gives the lock back whatever the work's result; the work's error wins over a release
/// error.
async fn release_training_lock<T>(
    lock: Box<dyn TrainingLock>,
    result: Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    let released = lock.release().await;
    let value = result?;
    released?;
    Ok(value)
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
    serde_json::to_vec_pretty(value)
        .map_err(|e| PipelineError::Internal(Cause::of(e.to_string(), e)))
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
        .map_err(|e| PipelineError::Internal(Cause::of(e.to_string(), e)))
}
