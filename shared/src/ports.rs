//! The ports: what the pipeline needs from the outside world, as traits.
//!
//! Each port has a local adapter (SQLite, folders) and a production adapter (PostgreSQL,
//! S3, MLflow). Pipeline functions ask for the narrowest port they need.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::artifact_store::{ArtifactError, ArtifactStore, BoundedObject, HEAD_BYTES};
use crate::dataset::{DataQuality, RecordSource, SourceRow};
pub use crate::jobs::{Job, JobCreated, JobError, JobKind, JobState, JobStore};
pub use crate::lock_owner::LockOwner;
use crate::monitor::{ScoreReference, WindowAggregates};
use crate::outcomes::{self, Outcome, StoredOutcome};
use crate::schema::LabeledRecord;
use crate::BoxError;

/// A driver's error shown in this crate's words (e.g. a PostgreSQL error with its SQLSTATE),
/// keeping the original beneath it. The words are what the wrapping error's message quotes,
/// so a reader of the whole chain sees them once.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct Reworded {
    pub text: String,
    #[source]
    pub source: BoxError,
}

impl Reworded {
    pub fn new(text: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Reworded {
            text: text.into(),
            source: source.into(),
        }
    }
}

/// A failure of the records, users or prediction-log store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error during {operation}: {message}")]
    Backend {
        operation: &'static str,
        /// What failed, readable on its own (it may quote `source`).
        message: String,
        /// The driver's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation conflicts with what is stored (e.g. the user exists already).
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// A backend failure described in words (no underlying error to keep).
    pub fn backend(operation: &'static str, error: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            operation,
            message: error.to_string(),
            source: None,
        }
    }

    /// A backend failure with the driver's error as its source; `message` says what failed.
    pub fn backend_source(
        operation: &'static str,
        message: impl std::fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        StoreError::Backend {
            operation,
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    /// A backend failure that is the driver's error, kept as the source.
    pub fn from_source<E>(operation: &'static str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let message = source.to_string();
        Self::backend_source(operation, message, source)
    }
}

/// Why a labelled row was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordRole {
    /// The reference data the initial model trains on.
    Reference,
    /// New labelled data, waiting to be drift-tested and absorbed by a retrain.
    New,
}

impl RecordRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordRole::Reference => "reference",
            RecordRole::New => "new",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reference" => Some(RecordRole::Reference),
            "new" => Some(RecordRole::New),
            _ => None,
        }
    }
}

/// What a bulk load did. Rows are keyed by source, key and a hash of their values
/// (`offered = new + changed + already_present`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoadSummary {
    /// Rows offered.
    pub offered: usize,
    /// Rows added to the table now (new ones, and changed ones whose old version a trained
    /// model had absorbed).
    pub inserted: usize,
    /// Unchanged rows, skipped: the same source, key and values were loaded before.
    pub already_present: usize,
    /// Rows whose source and key were never loaded.
    pub new: usize,
    /// Rows whose source and key were loaded before with other values.
    pub changed: usize,
    /// Of the changed rows, those that replaced in place an old version no model had
    /// absorbed yet (the others were added beside the absorbed old version, which stays).
    pub replaced: usize,
}

/// A stored labelled row with its database id.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredRecord {
    pub id: i64,
    pub record: LabeledRecord,
    /// The model version that absorbed the row, if any.
    pub absorbed_by: Option<u32>,
    /// When the row (this version of its values) was loaded.
    pub loaded_at: DateTime<Utc>,
}

/// How many rows are in which state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    pub reference: usize,
    pub new: usize,
    /// Rows absorbed by some model version.
    pub absorbed: usize,
    /// Rows waiting for a retrain.
    pub pending: usize,
}

/// A held training lock. Dropping it without `release` leaves the lock to expire.
#[async_trait]
pub trait TrainingLock: Send + Sync {
    /// Fails unless the lock is still ours (a fencing check right before promotion: a lock
    /// lost mid-training, e.g. with its database session, must not lead to a promotion).
    async fn confirm_held(&self) -> Result<(), StoreError>;
    /// Gives the lock back.
    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

/// Labelled records: loading, reading by state, absorbing, the training lock.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Applies pending schema migrations; returns the names of those applied now.
    async fn migrate(&self) -> Result<Vec<String>, StoreError>;

    /// Loads rows in one transaction, keyed by (source, key, hash of the values): a row
    /// stored already with the same values is skipped, so loading the same file twice does
    /// not duplicate; a row whose values changed replaces its old version if no model has
    /// absorbed that yet, and is added beside it otherwise.
    async fn load_records(
        &self,
        source: &str,
        role: RecordRole,
        rows: &[SourceRow],
    ) -> Result<LoadSummary, StoreError>;

    /// Rows of the given role, absorbed or not.
    async fn records_by_role(&self, role: RecordRole) -> Result<Vec<StoredRecord>, StoreError>;

    /// Rows some model version has absorbed.
    async fn absorbed_records(&self) -> Result<Vec<StoredRecord>, StoreError>;

    /// Rows no version has absorbed yet.
    async fn pending_records(&self) -> Result<Vec<StoredRecord>, StoreError>;

    /// Marks rows as absorbed by a model version (rows already absorbed keep their version).
    async fn mark_absorbed(&self, ids: &[i64], version: u32) -> Result<(), StoreError>;

    async fn record_counts(&self) -> Result<RecordCounts, StoreError>;

    /// Rows waiting for a retrain, counted by source (a file name, or `outcome`), by name.
    async fn pending_by_source(&self) -> Result<Vec<(String, usize)>, StoreError>;

    /// Every stored row counted by source and role, by source name then role.
    async fn record_sources(&self) -> Result<Vec<RecordSource>, StoreError>;

    /// Takes the training lock if nobody holds it; `None` when another training holds it.
    /// The lock records its owner (this process's pid and host, and the time).
    async fn try_lock_training(
        &self,
        holder: &str,
    ) -> Result<Option<Box<dyn TrainingLock>>, StoreError>;

    /// Who holds the training lock now, if anyone.
    async fn training_lock_owner(&self) -> Result<Option<LockOwner>, StoreError>;

    /// Removes the training lock whoever holds it (`fraudctl unlock`); returns the owner it
    /// removed. The holder, if still running, then fails its fencing check and does not promote.
    async fn force_unlock_training(&self) -> Result<Option<LockOwner>, StoreError>;
}

/// A user as listed (never with the hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// Users who may call the API, with argon2id password hashes.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user; `StoreError::Conflict` when the name is taken.
    async fn add_user(&self, username: &str, password_hash: &str) -> Result<(), StoreError>;
    /// The stored PHC hash string, if the user exists.
    async fn password_hash(&self, username: &str) -> Result<Option<String>, StoreError>;
    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError>;
    /// Removes a user; false when there was none.
    async fn remove_user(&self, username: &str) -> Result<bool, StoreError>;
}

/// One served prediction, as logged. Never used as a training label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionLogEntry {
    /// The id the answer carried (UUID v7); unique in the log. Rows logged before ids
    /// existed have none and cannot be looked up, so every entry read back has one.
    pub prediction_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub model_version: u32,
    /// The decision threshold the model applied (P(fraud) at or above it is fraud).
    pub threshold: f64,
    pub probability_of_fraud: f64,
    pub fraud: bool,
    /// The 20 inputs as a JSON object.
    pub features: serde_json::Value,
    pub username: Option<String>,
    /// The decision's reason codes (`R01` … `R20`), largest push toward fraud first; empty
    /// for rows logged before reason codes existed.
    #[serde(default)]
    pub reason_codes: Vec<String>,
}

/// Aggregates of the prediction log, logged by retrain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PredictionStats {
    pub count: u64,
    pub fraud_count: u64,
    pub mean_probability_of_fraud: f64,
}

/// A served prediction with the fraud outcome reported for it, if one was (the monitor's row).
#[derive(Clone, Debug, PartialEq)]
pub struct MonitoredPrediction {
    pub entry: PredictionLogEntry,
    /// The reported outcome: true = fraud.
    pub outcome: Option<bool>,
}

/// The log of served predictions.
#[async_trait]
pub trait PredictionLog: Send + Sync {
    /// Stores the entries in one transaction. An entry whose id is stored already is
    /// skipped, so a batch retried after an unconfirmed commit is not stored twice.
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError>;
    /// [`PredictionLog::log_predictions`] for entries the caller no longer needs: a log that
    /// keeps them (a queue for a background writer) takes them without a copy.
    async fn log_owned_predictions(
        &self,
        entries: Vec<PredictionLogEntry>,
    ) -> Result<(), StoreError> {
        self.log_predictions(&entries).await
    }
    /// The entry logged with this id (a unique-index lookup), if any.
    async fn prediction_by_id(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<PredictionLogEntry>, StoreError>;
    /// Aggregates over predictions made at or after `since` (all when `None`).
    async fn prediction_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError>;
    /// The predictions made at or after `since` and before `until` (unbounded when `None`),
    /// oldest first, each with its outcome. Row by row: the monitor's memory grows with the
    /// window (at most `limit` rows are read; the caller says when the window was cut).
    async fn predictions_in_window(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError>;
    /// The most recent `limit` predictions made at or after `since` that have an outcome,
    /// newest first: the rows of retrain's offline replay.
    async fn served_outcomes(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError>;
    /// The monitor's aggregates over the same window, computed in the store in one consistent
    /// read whose memory does not grow with the log: per feature the distinct logged values
    /// with their counts (SQL `GROUP BY`), and every prediction's score, decision, outcome,
    /// version, time and segment inputs streamed in P(fraud) order through a
    /// [`WindowScan`](crate::monitor::WindowScan) against `reference`.
    async fn window_aggregates(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        reference: &ScoreReference,
    ) -> Result<WindowAggregates, StoreError>;
    /// The data quality of the inputs logged in the window, read row by row in the order of
    /// [`PredictionLog::predictions_in_window`] but streamed: only counts and the first
    /// examples are kept. The monitor asks for it when the aggregates show a bad value.
    async fn window_data_quality(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<DataQuality, StoreError>;
}

/// Outcomes of served predictions, and the labelled rows they make.
#[async_trait]
pub trait OutcomeStore: Send + Sync {
    /// Records `outcomes` in one transaction, all or nothing: each one's fate is
    /// [`outcomes::decide`] over what is stored for its prediction id, and a recorded (or
    /// replaced) outcome writes the labelled row (source [`outcomes::OUTCOME_SOURCE`], key the
    /// prediction id) that waits for the next retrain. Decisions come back in input order.
    /// Outcome writers are serialised, so two reports of one id never both insert.
    async fn record_outcomes(
        &self,
        outcomes: &[Outcome],
        overwrite: bool,
        username: Option<&str>,
    ) -> Result<Vec<outcomes::Decision>, StoreError>;

    /// The outcome stored for a prediction, with the outcomes it replaced (oldest first).
    async fn outcome_of(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<(StoredOutcome, Vec<StoredOutcome>)>, StoreError>;
}

/// A logged prediction whose inputs cannot become a labelled row (a hand-edited log).
impl From<outcomes::UnusableInputs> for StoreError {
    fn from(error: outcomes::UnusableInputs) -> Self {
        StoreError::backend("record_outcomes", error)
    }
}

/// A failure of the tracking server or registry.
#[derive(Debug, thiserror::Error)]
#[error("tracking error in {call}: {message}")]
pub struct TrackerError {
    /// Which call failed (e.g. `runs/create`).
    pub call: String,
    /// What failed, readable on its own (it may quote `source`).
    pub message: String,
    /// The client's error (HTTP, file system, S3), when there is one.
    #[source]
    pub source: Option<BoxError>,
}

impl TrackerError {
    /// A failure described in words.
    pub fn new(call: impl Into<String>, message: impl Into<String>) -> Self {
        TrackerError {
            call: call.into(),
            message: message.into(),
            source: None,
        }
    }

    /// The same failure with the error underneath it.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// A tracking run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub artifact_uri: String,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Finished,
    Failed,
}

/// What a run logs in one batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunData {
    pub params: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
    pub tags: Vec<(String, String)>,
}

/// What a logged model is made of, apart from its files and metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelSpec {
    /// The model's name in the tracker (the registered model's name).
    pub name: String,
    /// A short kind of model, e.g. `logistic_regression`.
    pub model_type: String,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// A model a run is logging: its files, metrics and registry versions hang off it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedModel {
    /// The MLflow 3 logged model's id (`m-...`); `None` when the tracker has no logged
    /// models (an MLflow 2 server): the model is then only files under the run.
    pub model_id: Option<String>,
    /// Where the model's files go: the logged model's own location, or the run's
    /// `<artifact_uri>/model` without logged models.
    pub artifact_uri: String,
}

/// A registered model version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersionInfo {
    pub version: u32,
    pub run_id: String,
    pub source: String,
    pub aliases: Vec<String>,
}

/// Experiment tracking and the model registry (MLflow, or a local folder).
#[async_trait]
pub trait Tracker: Send + Sync {
    /// Creates the experiment if needed and starts a run in it.
    async fn start_run(&self, experiment: &str, run_name: &str) -> Result<RunInfo, TrackerError>;
    async fn log_batch(&self, run: &RunInfo, data: &RunData) -> Result<(), TrackerError>;
    /// Stores a file under the run's artifact root.
    async fn log_artifact(
        &self,
        run: &RunInfo,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError>;
    async fn end_run(&self, run: &RunInfo, status: RunStatus) -> Result<(), TrackerError>;
    /// Starts logging a model produced by the run (MLflow 3: a PENDING logged model with
    /// these params and tags; older servers: files under the run's `model/` folder).
    async fn create_logged_model(
        &self,
        run: &RunInfo,
        spec: &ModelSpec,
    ) -> Result<LoggedModel, TrackerError>;
    /// Logs metrics to the run, linked to the model where the tracker can link them.
    async fn log_model_metrics(
        &self,
        run: &RunInfo,
        model: &LoggedModel,
        metrics: &[(String, f64)],
    ) -> Result<(), TrackerError>;
    /// Stores one of the model's files under its artifact location.
    async fn log_model_artifact(
        &self,
        run: &RunInfo,
        model: &LoggedModel,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError>;
    /// Marks the logged model READY (its files are complete) or FAILED.
    async fn finalize_logged_model(
        &self,
        model: &LoggedModel,
        ready: bool,
    ) -> Result<(), TrackerError>;
    /// Registers the logged model as a new version (creating the registered model the first
    /// time).
    async fn create_model_version(
        &self,
        model_name: &str,
        run: &RunInfo,
        model: &LoggedModel,
    ) -> Result<ModelVersionInfo, TrackerError>;
    async fn set_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: u32,
    ) -> Result<(), TrackerError>;
    async fn alias_version(
        &self,
        model_name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersionInfo>, TrackerError>;
    async fn list_versions(&self, model_name: &str) -> Result<Vec<ModelVersionInfo>, TrackerError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn port_errors_keep_the_error_underneath() {
        let store = StoreError::from_source("open", std::io::Error::other("disk gone"));
        assert_eq!(store.to_string(), "database error during open: disk gone");
        assert_eq!(
            store.source().map(|s| s.to_string()).as_deref(),
            Some("disk gone")
        );
        assert!(StoreError::backend("open", "words only").source().is_none());

        let artifact = ArtifactError::new("get", "champion.json", "denied")
            .with_source(std::io::Error::other("denied"));
        assert!(artifact.source().is_some());
        let tracker = TrackerError::new("runs/create", "refused")
            .with_source(std::io::Error::other("refused"));
        assert_eq!(
            tracker.to_string(),
            "tracking error in runs/create: refused"
        );
        assert!(tracker.source().is_some());
    }
}
