//! `initialtrain`: train on every reference row, register the next version and make it
//! champion. The steps, in order: [`reference_rows`], the replace check
//! ([`promotion::initialtrain_may_replace`]), [`train_on_reference`], then inside a tracking
//! run [`log_training_run`], [`publish_and_promote`] and marking the rows absorbed.

use serde::Serialize;

use crate::dataset::{fingerprint, RecordSource};
use crate::model::{
    distinct_row_count, train_with_holdout, Calibration, CostMatrix, Metrics, ModelArtifact,
    Provenance, TrainingOutcome,
};
use crate::monitor::{ReferenceScores, ScoreReferenceSource};
use crate::ports::{
    ArtifactStore, RecordRole, RecordStore, RunData, RunInfo, StoredRecord, Tracker, TrainingLock,
};
use crate::report::PromotionRecord;
use crate::schema::LabeledRecord;

use super::champion::{promote, publish_version, ChampionPointer, PublishedVersion, VersionFiles};
use super::model_card::CardContext;
use super::tracking::{describe, push_common_tags, push_training_params};
use super::{
    finish_run, promotion, read_champion_pointer, release_training_lock, run_blocking,
    take_training_lock, PipelineError, PipelineSettings, PROMOTED_BY_INITIALTRAIN,
};

/// What a training run produced.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TrainingSummary {
    pub version: u32,
    pub run_id: String,
    pub promoted: bool,
    pub alpha: f64,
    /// The decision threshold: the lowest expected cost on out-of-fold probabilities.
    pub threshold: f64,
    /// The costs the threshold minimises.
    pub cost_matrix: CostMatrix,
    /// The recalibration the model's probabilities go through, when one was configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    pub training_rows: usize,
    pub holdout_rows: usize,
    pub data_fingerprint: String,
    pub metrics: Metrics,
}

/// Trains on all reference rows, registers a new version and makes it champion. Refuses
/// ([`PipelineError::ChampionFromRetrain`]) to replace a champion retrain promoted, unless
/// `force`.
pub async fn initial_train(
    records: &dyn RecordStore,
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    force: bool,
) -> Result<TrainingSummary, PipelineError> {
    let lock = take_training_lock(records, "initialtrain").await?;
    let result =
        initial_train_locked(records, artifacts, tracker, settings, lock.as_ref(), force).await;
    release_training_lock(lock, result).await
}

async fn initial_train_locked(
    records: &dyn RecordStore,
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    lock: &dyn TrainingLock,
    force: bool,
) -> Result<TrainingSummary, PipelineError> {
    let stored = reference_rows(records).await?;
    let sources = records.record_sources().await?;
    let previous = read_champion_pointer(artifacts).await?;
    promotion::initialtrain_may_replace(previous.as_ref(), force)?;
    // Only the ids of the rows to absorb outlive the training: at a million rows the stored
    // rows are 200 MB the fit does not need.
    let to_absorb: Vec<i64> = stored
        .iter()
        .filter(|s| s.absorbed_by.is_none())
        .map(|s| s.id)
        .collect();
    let labeled: Vec<LabeledRecord> = stored.into_iter().map(|s| s.record).collect();
    let trained = train_on_reference(labeled, reference_sources(sources), settings).await?;
    let run = tracker
        .start_run(&settings.experiment, "initialtrain")
        .await?;
    let result = async {
        log_training_run(tracker, &run, settings, &trained).await?;
        let published = publish_and_promote(
            artifacts,
            tracker,
            settings,
            lock,
            &run,
            &trained,
            previous.as_ref(),
        )
        .await?;
        records.mark_absorbed(&to_absorb, published.version).await?;
        Ok(TrainingSummary {
            version: published.version,
            run_id: run.run_id.clone(),
            promoted: true,
            alpha: trained.outcome.chosen_alpha,
            threshold: trained.outcome.model.threshold(),
            cost_matrix: settings.training.costs,
            calibration: trained.outcome.model.calibration().copied(),
            training_rows: trained.outcome.train_rows,
            holdout_rows: trained.outcome.holdout_rows,
            data_fingerprint: trained.data_fingerprint.clone(),
            metrics: trained.outcome.metrics.clone(),
        })
    }
    .await;
    finish_run(tracker, &run, result).await
}

/// The reference rows; [`PipelineError::NoReferenceData`] when there are none.
async fn reference_rows(records: &dyn RecordStore) -> Result<Vec<StoredRecord>, PipelineError> {
    let stored = records.records_by_role(RecordRole::Reference).await?;
    if stored.is_empty() {
        return Err(PipelineError::NoReferenceData);
    }
    Ok(stored)
}

/// A model trained on the reference rows, with what its provenance records.
struct Trained {
    outcome: TrainingOutcome,
    data_fingerprint: String,
    distinct_rows: usize,
    /// Where the reference rows came from (the model card).
    sources: Vec<RecordSource>,
}

/// Trains with an 80/20 holdout by distinct rows, off the async threads.
async fn train_on_reference(
    labeled: Vec<LabeledRecord>,
    sources: Vec<RecordSource>,
    settings: &PipelineSettings,
) -> Result<Trained, PipelineError> {
    let data_fingerprint = fingerprint(&labeled);
    let distinct_rows = distinct_row_count(&labeled);
    let config = settings.training.clone();
    let outcome = run_blocking(move || train_with_holdout(labeled, &config)).await??;
    Ok(Trained {
        outcome,
        data_fingerprint,
        distinct_rows,
        sources,
    })
}

/// The run's params and tags.
async fn log_training_run(
    tracker: &dyn Tracker,
    run: &RunInfo,
    settings: &PipelineSettings,
    trained: &Trained,
) -> Result<(), PipelineError> {
    let outcome = &trained.outcome;
    let mut data = RunData::default();
    push_training_params(&mut data, &settings.training, outcome.chosen_alpha);
    data.params.extend([
        ("mode".to_string(), "initialtrain".to_string()),
        ("training_rows".to_string(), outcome.train_rows.to_string()),
        ("holdout_rows".to_string(), outcome.holdout_rows.to_string()),
    ]);
    push_common_tags(&mut data, &trained.data_fingerprint, "promoted");
    tracker.log_batch(run, &data).await?;
    Ok(())
}

/// Publishes the model as the next version, describes the run, and makes it champion.
async fn publish_and_promote(
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    lock: &dyn TrainingLock,
    run: &RunInfo,
    trained: &Trained,
    previous: Option<&ChampionPointer>,
) -> Result<PublishedVersion, PipelineError> {
    let outcome = &trained.outcome;
    let card = CardContext {
        trained_by: "initialtrain".to_string(),
        holdout_description: format!(
            "{} of the {} reference rows held out (stratified by label, by distinct rows: \
             repeated rows stay on one side); the model never saw them.",
            outcome.holdout_rows,
            outcome.train_rows + outcome.holdout_rows
        ),
        holdout: &outcome.holdout,
        holdout_scores: &outcome.holdout_scores,
        sources: trained.sources.clone(),
        training_window: None,
        drift: None,
        promotion: PromotionRecord {
            promoted: true,
            reason: "an initial training makes its model champion.".to_string(),
            criteria: Vec::new(),
        },
    };
    let provenance = Provenance::now(
        outcome.train_rows,
        trained.distinct_rows,
        trained.data_fingerprint.clone(),
        settings.training.seed,
    );
    let artifact = ModelArtifact::new(
        &outcome.model,
        settings.training.costs,
        outcome.chosen_alpha,
        outcome.cv.clone(),
        Some(outcome.metrics.clone()),
        provenance,
    );
    let published = publish_version(
        artifacts,
        tracker,
        settings,
        run,
        artifact,
        VersionFiles {
            drift: None,
            classification_report: &outcome.metrics.report(),
            reference_scores: Some(ReferenceScores::new(
                ScoreReferenceSource::Holdout,
                outcome.holdout_scores.clone(),
            )),
            card: &card,
        },
    )
    .await?;
    describe(
        tracker,
        run,
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
        previous,
        PROMOTED_BY_INITIALTRAIN,
    )
    .await?;
    Ok(published)
}

/// The sources of the reference rows (those an initial training trains on).
fn reference_sources(sources: Vec<RecordSource>) -> Vec<RecordSource> {
    sources
        .into_iter()
        .filter(|s| s.role == RecordRole::Reference.as_str())
        .collect()
}
