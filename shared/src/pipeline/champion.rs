//! The champion: the small pointer that names the served model, loading the model it names
//! (checking its hash), publishing a trained version and promoting it.
//!
//! Promotion order, so a failure never leaves a half promotion: the model folder (`model.json`,
//! the Python loader in `code/`, `MLmodel`) is written under `models/v<N>/`, the registry
//! alias is moved, and the champion pointer is written last. Serving reads only the pointer
//! and the file it names. If the pointer cannot be written, the alias is moved back to the
//! previous champion.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::drift::DriftReport;
use crate::model::artifact::MODEL_JSON_FILE;
use crate::model::{model_folder, Model, ModelArtifact};
use crate::monitor::{reference_scores_key, ReferenceScores, REFERENCE_SCORES_FILE};
use crate::ports::{ArtifactStore, RunInfo, Tracker, TrainingLock};

use super::model_card::{model_card, store_model_card, CardContext};
use super::tracking::{self, ModelRecord, DRIFT_HTML_PATH, DRIFT_REPORT_PATH, DRIFT_TABLE_PATH};
use super::{json_bytes, sha256_hex, Cause, PipelineError, PipelineSettings};
use crate::report::HTML_CONTENT_TYPE;

/// The key of the champion pointer in the artifact store.
pub const CHAMPION_POINTER_KEY: &str = "champion.json";
/// The registry alias of the served model.
pub const CHAMPION_ALIAS: &str = "champion";

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
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        PipelineError::CorruptChampion(Cause::of(format!("{CHAMPION_POINTER_KEY}: {e}"), e))
    })
}

/// Loads the model the pointer names, checking its hash.
pub async fn load_champion_from(
    artifacts: &dyn ArtifactStore,
    pointer: ChampionPointer,
) -> Result<Champion, PipelineError> {
    let bytes = artifacts.get(&pointer.model_key).await?.ok_or_else(|| {
        PipelineError::CorruptChampion(Cause::new(format!("{} is missing", pointer.model_key)))
    })?;
    if sha256_hex(&bytes) != pointer.sha256 {
        return Err(PipelineError::CorruptChampion(Cause::new(format!(
            "{} does not match the pointer's checksum",
            pointer.model_key
        ))));
    }
    let artifact = ModelArtifact::from_json_bytes(&bytes)
        .map_err(|e| PipelineError::CorruptChampion(Cause::of(e.to_string(), e)))?;
    let model = artifact
        .model()
        .map_err(|e| PipelineError::CorruptChampion(Cause::of(e.to_string(), e)))?;
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

/// A registered version whose files are in the artifact store, not yet promoted.
pub(super) struct PublishedVersion {
    pub(super) version: u32,
    model_key: String,
    sha256: String,
    run_id: String,
}

/// What goes beside a version's model, in its run and its folder.
pub(super) struct VersionFiles<'a> {
    /// The drift report at training time (retrain).
    pub(super) drift: Option<&'a DriftReport>,
    /// The holdout's text report (empty: none).
    pub(super) classification_report: &'a str,
    /// The model's scores on its held-out rows: the monitor's reference.
    pub(super) reference_scores: Option<ReferenceScores>,
    /// What the model card says besides the artifact.
    pub(super) card: &'a CardContext<'a>,
}

/// Logs the model to the tracker, registers a version, and writes the serving copy.
pub(super) async fn publish_version(
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    run: &RunInfo,
    mut artifact: ModelArtifact,
    files: VersionFiles<'_>,
) -> Result<PublishedVersion, PipelineError> {
    let VersionFiles {
        drift,
        classification_report,
        reference_scores,
        card,
    } = files;
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
    let drift_page = drift.map(tracking::drift_page);
    if let (Some(bytes), Some(page), Some(drift)) = (&drift_bytes, &drift_page, drift) {
        tracker
            .log_artifact(run, DRIFT_REPORT_PATH, bytes.clone())
            .await?;
        tracker
            .log_artifact(run, DRIFT_HTML_PATH, page.clone())
            .await?;
        tracker
            .log_artifact(run, DRIFT_TABLE_PATH, tracking::drift_table(drift)?)
            .await?;
    }
    let version = registered.version;

    artifact.provenance.version = Some(version);
    let serving_copy = artifact.to_json_bytes()?;
    let sha256 = sha256_hex(&serving_copy);
    let model_key = format!("models/v{version}/{MODEL_JSON_FILE}");
    // The whole model folder, so `models/v<N>/` loads in MLflow's Python client as well.
    for file in model_folder(serving_copy, mlmodel) {
        artifacts
            .put(
                &format!("models/v{version}/{}", file.path),
                file.bytes,
                file.content_type,
            )
            .await?;
    }
    if let Some(bytes) = drift_bytes {
        artifacts
            .put(
                &format!("models/v{version}/{DRIFT_REPORT_PATH}"),
                bytes,
                "application/json",
            )
            .await?;
    }
    if let Some(page) = drift_page {
        artifacts
            .put(
                &format!("models/v{version}/{DRIFT_HTML_PATH}"),
                page,
                HTML_CONTENT_TYPE,
            )
            .await?;
    }
    if let Some(mut scores) = reference_scores {
        // The monitor's reference score distribution, beside the model and in its run.
        scores.version = Some(version);
        let bytes = scores
            .to_json_bytes()
            .map_err(|e| PipelineError::Internal(Cause::of("reference scores as JSON", e)))?;
        tracker
            .log_artifact(run, REFERENCE_SCORES_FILE, bytes.clone())
            .await?;
        artifacts
            .put(&reference_scores_key(version), bytes, "application/json")
            .await?;
    }
    let card = model_card(card, &artifact, &settings.model_name, version, &run.run_id);
    store_model_card(artifacts, tracker, run, &card).await?;
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
pub(super) async fn promote(
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
