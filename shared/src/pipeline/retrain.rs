//! `retrain`: drift-test the waiting rows against the champion's training data and, depending
//! on the mode and the test, train a challenger and promote it if it is not worse.
//!
//! The steps, in order: [`waiting_outcome`] (nothing to do yet?), [`drift_test`], then either
//! [`absorb_without_retraining`] (`if-drift` without drift) or `train_challenger`, the
//! decision ([`promotion::decide`]) and, inside a tracking run, [`log_retrain_run`],
//! [`publish_challenger`], [`promote`] when the decision says so, and absorbing the rows.

use serde::Serialize;

use crate::dataset::fingerprint;
use crate::drift::{detect_drift, DriftReport};
use crate::model::{ModelArtifact, Provenance};
use crate::monitor::ServedInputDrift;
use crate::monitor::{ReferenceScores, ScoreReferenceSource};
use crate::ports::{
    ArtifactStore, PredictionLog, PredictionStats, RecordStore, RunData, RunInfo, StoredRecord,
    Tracker, TrainingLock,
};
use crate::report::PromotionRecord;
use crate::schema::Applicant;

use super::challenger::{train_challenger, Challenger};
use super::champion::{promote, publish_version, PublishedVersion, VersionFiles};
use super::model_card::CardContext;
use super::promotion::{self, Comparison, Decision, PROMOTION_GATE_PATH};
use super::replay::{evaluate_both, replay_served_outcomes};
use super::tracking::{
    self, describe, push_common_tags, push_drift_metrics, push_gate, push_metrics,
    push_prediction_metrics, push_training_params, DRIFT_HTML_PATH, DRIFT_REPORT_PATH,
    DRIFT_TABLE_PATH,
};
use super::training_window::AppliedWindow;
use super::{
    finish_run, json_bytes, load_champion, release_training_lock, run_blocking, served_input_drift,
    take_training_lock, PipelineError, PipelineSettings, RetrainMode, PROMOTED_BY_RETRAIN,
};

/// What `retrain` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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
    /// `if-drift` only: the monitor's input-drift verdict on the traffic served since the
    /// champion's promotion; a drift there trains a challenger even when the waiting rows
    /// did not drift.
    pub served_input_drift: Option<ServedInputDrift>,
    pub comparison: Option<Comparison>,
    /// The absorbed rows the challenger trained on (FRAUDRISK_TRAINING_WINDOW_*); absent when
    /// no challenger was trained.
    pub training_window: Option<AppliedWindow>,
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
    let lock = take_training_lock(records, &format!("retrain ({})", mode.as_str())).await?;
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
    release_training_lock(lock, result).await
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
    let pending = records.pending_records().await?;
    let context = Context {
        records,
        artifacts,
        tracker,
        settings,
        mode,
        champion_version: champion.pointer.version,
        new_rows: pending.len(),
    };
    if let Some((outcome, reason)) = waiting_outcome(mode, pending.len(), settings) {
        return Ok(context.summary(outcome, reason));
    }
    let absorbed = records.absorbed_records().await?;
    let drift = drift_test(&absorbed, &pending, context.champion_version, settings).await?;
    let stats = predictions
        .prediction_stats(Some(champion.pointer.promoted_at))
        .await?;
    let data_fingerprint = fingerprint(&pending.iter().map(|s| s.record).collect::<Vec<_>>());
    let served_drift = if mode == RetrainMode::IfDrift {
        let reference = champion_rows(&absorbed, context.champion_version);
        Some(
            served_input_drift(
                predictions,
                reference,
                champion.pointer.promoted_at,
                &settings.drift,
            )
            .await?,
        )
    } else {
        None
    };
    let served_drifted = served_drift.as_ref().is_some_and(|s| s.drift);
    if mode == RetrainMode::IfDrift && !drift.drift && !served_drifted {
        let mut summary =
            absorb_without_retraining(&context, &pending, drift, &stats, &data_fingerprint).await?;
        summary.served_input_drift = served_drift;
        return Ok(summary);
    }
    let challenger = train_challenger(absorbed, &pending, settings).await?;
    let holdout = evaluate_both(
        &challenger.fitted.model,
        &champion.model,
        &challenger.recent_holdout,
        settings,
    );
    let replay = replay_served_outcomes(
        predictions,
        champion.pointer.promoted_at,
        &challenger,
        &champion.model,
        settings,
    )
    .await?;
    let decision = promotion::decide(holdout, replay, &settings.promotion.margins);
    let run = tracker
        .start_run(&settings.experiment, &context.run_name())
        .await?;
    let result = async {
        log_retrain_run(
            &context,
            &run,
            &challenger,
            &decision,
            &drift,
            &stats,
            &data_fingerprint,
        )
        .await?;
        let published = publish_challenger(
            &context,
            &run,
            &challenger,
            &decision,
            &drift,
            &data_fingerprint,
        )
        .await?;
        if decision.promote {
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
        let pending_ids: Vec<i64> = pending.iter().map(|s| s.id).collect();
        records
            .mark_absorbed(&pending_ids, published.version)
            .await?;
        let mut summary = context.challenger_summary(&run, &published, decision, drift.clone());
        if let Some(served) = &served_drift {
            if served.drift && !drift.drift {
                summary.reason = format!(
                    "the waiting rows did not drift, but {} of the {} predictions served since \
                     the champion's promotion drifted ({}); {}",
                    served.drifted_features.len(),
                    served.served,
                    served.drifted_features.join(", "),
                    summary.reason
                );
            }
        }
        summary.served_input_drift = served_drift;
        summary.training_window = Some(challenger.window.clone());
        Ok(summary)
    }
    .await;
    finish_run(tracker, &run, result).await
}

/// What every step needs to know.
struct Context<'a> {
    records: &'a dyn RecordStore,
    artifacts: &'a dyn ArtifactStore,
    tracker: &'a dyn Tracker,
    settings: &'a PipelineSettings,
    mode: RetrainMode,
    champion_version: u32,
    new_rows: usize,
}

impl Context<'_> {
    fn run_name(&self) -> String {
        format!("retrain-{}", self.mode.as_str())
    }

    /// A summary in which the champion stays and no challenger was made.
    fn summary(&self, outcome: RetrainOutcome, reason: String) -> RetrainSummary {
        RetrainSummary {
            mode: self.mode,
            outcome,
            reason,
            previous_champion_version: self.champion_version,
            champion_version: self.champion_version,
            challenger_version: None,
            new_rows: self.new_rows,
            run_id: None,
            drift: None,
            served_input_drift: None,
            comparison: None,
            training_window: None,
        }
    }

    /// The summary of a trained challenger, promoted or not.
    fn challenger_summary(
        &self,
        run: &RunInfo,
        published: &PublishedVersion,
        decision: Decision,
        drift: DriftReport,
    ) -> RetrainSummary {
        RetrainSummary {
            mode: self.mode,
            outcome: if decision.promote {
                RetrainOutcome::Promoted
            } else {
                RetrainOutcome::Rejected
            },
            reason: decision.reason,
            previous_champion_version: self.champion_version,
            champion_version: if decision.promote {
                published.version
            } else {
                self.champion_version
            },
            challenger_version: Some(published.version),
            new_rows: self.new_rows,
            run_id: Some(run.run_id.clone()),
            drift: Some(drift),
            served_input_drift: None,
            comparison: decision.comparison,
            training_window: None,
        }
    }
}

/// Why there is nothing to do yet: no waiting rows, or (`if-drift`) fewer than it tests from.
fn waiting_outcome(
    mode: RetrainMode,
    waiting: usize,
    settings: &PipelineSettings,
) -> Option<(RetrainOutcome, String)> {
    if waiting == 0 {
        return Some((
            RetrainOutcome::NoNewRows,
            "no new labelled rows are waiting".to_string(),
        ));
    }
    if mode == RetrainMode::IfDrift && waiting < settings.min_new_rows {
        return Some((
            RetrainOutcome::WaitingForRows,
            format!(
                "{waiting} new rows are waiting; if-drift mode tests from {}",
                settings.min_new_rows
            ),
        ));
    }
    None
}

/// The drift tests of the waiting rows against the rows the champion was trained on (those
/// absorbed by its version or an earlier one), off the async threads.
async fn drift_test(
    absorbed: &[StoredRecord],
    pending: &[StoredRecord],
    champion_version: u32,
    settings: &PipelineSettings,
) -> Result<DriftReport, PipelineError> {
    let reference = champion_rows(absorbed, champion_version);
    let current: Vec<Applicant> = pending.iter().map(|s| s.record.applicant).collect();
    let drift_config = settings.drift.clone();
    run_blocking(move || detect_drift(&reference, &current, &drift_config)).await
}

/// The rows the champion was trained on: those its version, or an earlier one, absorbed.
fn champion_rows(absorbed: &[StoredRecord], champion_version: u32) -> Vec<Applicant> {
    absorbed
        .iter()
        .filter(|s| s.absorbed_by.is_some_and(|v| v <= champion_version))
        .map(|s| s.record.applicant)
        .collect()
}

/// `if-drift` without drift: the waiting rows join the champion's data, with a run that
/// records the drift report and says so.
async fn absorb_without_retraining(
    context: &Context<'_>,
    pending: &[StoredRecord],
    drift: DriftReport,
    stats: &PredictionStats,
    data_fingerprint: &str,
) -> Result<RetrainSummary, PipelineError> {
    let tracker = context.tracker;
    let run = tracker
        .start_run(&context.settings.experiment, &context.run_name())
        .await?;
    let result = async {
        let mut data = RunData::default();
        data.params
            .push(("mode".to_string(), context.mode.as_str().to_string()));
        data.params
            .push(("new_rows".to_string(), pending.len().to_string()));
        push_drift_metrics(&mut data, &drift);
        push_prediction_metrics(&mut data, stats);
        push_common_tags(&mut data, data_fingerprint, "absorbed_without_retraining");
        tracker.log_batch(&run, &data).await?;
        tracker
            .log_artifact(&run, DRIFT_REPORT_PATH, json_bytes(&drift)?)
            .await?;
        tracker
            .log_artifact(&run, DRIFT_HTML_PATH, tracking::drift_page(&drift))
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
                context.champion_version
            ),
        )
        .await?;
        let pending_ids: Vec<i64> = pending.iter().map(|s| s.id).collect();
        context
            .records
            .mark_absorbed(&pending_ids, context.champion_version)
            .await?;
        Ok(())
    }
    .await;
    finish_run(tracker, &run, result).await?;
    let mut out = context.summary(
        RetrainOutcome::AbsorbedWithoutRetraining,
        "no feature drifted: the new rows joined the reference data without retraining".to_string(),
    );
    out.run_id = Some(run.run_id);
    out.drift = Some(drift);
    Ok(out)
}

/// The run's params, the champion's figures on the held-out rows, drift, predictions, tags.
async fn log_retrain_run(
    context: &Context<'_>,
    run: &RunInfo,
    challenger: &Challenger,
    decision: &Decision,
    drift: &DriftReport,
    stats: &PredictionStats,
    data_fingerprint: &str,
) -> Result<(), PipelineError> {
    let settings = context.settings;
    let mut data = RunData::default();
    push_training_params(
        &mut data,
        &settings.training,
        challenger.fitted.chosen_alpha,
    );
    data.params.extend([
        ("mode".to_string(), context.mode.as_str().to_string()),
        ("new_rows".to_string(), context.new_rows.to_string()),
        (
            "training_rows".to_string(),
            challenger.training_rows.to_string(),
        ),
        (
            "recent_holdout_rows".to_string(),
            challenger.recent_holdout.len().to_string(),
        ),
        (
            "previous_champion_version".to_string(),
            context.champion_version.to_string(),
        ),
        (
            "promotion_margin_roc_auc".to_string(),
            settings.promotion.margins.roc_auc.to_string(),
        ),
        (
            "promotion_margin_expected_cost".to_string(),
            settings.promotion.margins.expected_cost.to_string(),
        ),
        (
            "promotion_margin_brier".to_string(),
            settings.promotion.margins.brier.to_string(),
        ),
        (
            "replay_min_outcomes".to_string(),
            settings.promotion.replay_min_outcomes.to_string(),
        ),
        (
            "training_window".to_string(),
            settings.training_window.describe(),
        ),
        (
            "training_window_left_out".to_string(),
            challenger.window.left_out.to_string(),
        ),
    ]);
    // The challenger's holdout figures go with its logged model (publish_version).
    if let Some(c) = &decision.comparison {
        push_metrics(&mut data, "champion_holdout_", &c.champion);
        push_gate(&mut data, c);
    }
    push_drift_metrics(&mut data, drift);
    push_prediction_metrics(&mut data, stats);
    push_common_tags(&mut data, data_fingerprint, decision.tag());
    context.tracker.log_batch(run, &data).await?;
    if let Some(c) = &decision.comparison {
        context
            .tracker
            .log_artifact(run, PROMOTION_GATE_PATH, json_bytes(c)?)
            .await?;
    }
    Ok(())
}

/// Registers the challenger as the next version with its files, and describes the run.
async fn publish_challenger(
    context: &Context<'_>,
    run: &RunInfo,
    challenger: &Challenger,
    decision: &Decision,
    drift: &DriftReport,
    data_fingerprint: &str,
) -> Result<PublishedVersion, PipelineError> {
    let settings = context.settings;
    let provenance = Provenance::now(
        challenger.training_rows,
        challenger.distinct_rows,
        data_fingerprint.to_string(),
        settings.training.seed,
    );
    let artifact = ModelArtifact::new(
        &challenger.fitted.model,
        settings.training.costs,
        challenger.fitted.chosen_alpha,
        challenger.fitted.cv.clone(),
        decision.comparison.as_ref().map(|c| c.challenger.clone()),
        provenance,
    );
    let report = decision
        .comparison
        .as_ref()
        .map(|c| c.challenger.report())
        .unwrap_or_default();
    // The challenger's scores on the held-out new rows: the monitor's reference once it serves.
    let scores: Vec<f64> = challenger
        .recent_holdout
        .iter()
        .map(|r| challenger.fitted.model.probability_of_fraud(&r.applicant))
        .collect();
    let card = CardContext {
        trained_by: format!("retrain ({})", context.mode.as_str()),
        holdout_description: format!(
            "{} of the {} new rows held out (stratified by label); the challenger never saw \
             them, and both models were compared on them.",
            challenger.recent_holdout.len(),
            context.new_rows
        ),
        holdout: &challenger.recent_holdout,
        holdout_scores: &scores,
        sources: context.records.record_sources().await?,
        training_window: Some(match challenger.window.left_out {
            0 => challenger.window.window.describe(),
            n => format!(
                "{} ({n} older rows left out)",
                challenger.window.window.describe()
            ),
        }),
        drift: Some(drift),
        promotion: PromotionRecord {
            promoted: decision.promote,
            reason: decision.reason.clone(),
            criteria: decision
                .comparison
                .as_ref()
                .map(|c| c.criteria.clone())
                .unwrap_or_default(),
        },
    };
    let reference_scores = (!scores.is_empty())
        .then(|| ReferenceScores::new(ScoreReferenceSource::RecentHoldout, scores.clone()));
    let published = publish_version(
        context.artifacts,
        context.tracker,
        settings,
        run,
        artifact,
        VersionFiles {
            drift: Some(drift),
            classification_report: &report,
            reference_scores,
            card: &card,
        },
    )
    .await?;
    let significant = drift.features.iter().filter(|f| f.significant).count();
    describe(
        context.tracker,
        run,
        format!(
            "Retrained on {} rows ({} new; {significant} of {} features drifted) and \
             registered version {}: {}.",
            challenger.training_rows,
            context.new_rows,
            drift.features.len(),
            published.version,
            decision.reason
        ),
    )
    .await?;
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_waiting_or_too_little_for_if_drift_is_not_a_retrain() {
        let settings = PipelineSettings::default();
        assert_eq!(
            waiting_outcome(RetrainMode::Always, 0, &settings).map(|(o, _)| o),
            Some(RetrainOutcome::NoNewRows)
        );
        assert_eq!(waiting_outcome(RetrainMode::Always, 1, &settings), None);
        let (outcome, reason) =
            waiting_outcome(RetrainMode::IfDrift, 999, &settings).expect("too few rows");
        assert_eq!(outcome, RetrainOutcome::WaitingForRows);
        assert_eq!(
            reason,
            "999 new rows are waiting; if-drift mode tests from 1000"
        );
        assert_eq!(waiting_outcome(RetrainMode::IfDrift, 1000, &settings), None);
    }
}
