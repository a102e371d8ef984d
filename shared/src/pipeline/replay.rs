//! Retrain's comparison data: both models on the held-out new rows, and the offline replay of
//! served predictions whose outcomes came back, re-scored from their logged inputs.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::{evaluate, Model, ModelError};
use crate::outcomes::{labeled_record, LoggedInputs, Outcome};
use crate::ports::PredictionLog;
use crate::schema::{Applicant, LabeledRecord};

use super::challenger::Challenger;
use super::promotion::{Evaluation, Replay};
use super::{run_blocking, PipelineError, PipelineSettings};

/// A hash of an applicant's values, bit for bit (a collision only leaves a row out of the
/// replay).
pub(super) fn input_hash(applicant: &Applicant) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for value in applicant.0 {
        value.to_bits().hash(&mut hasher);
    }
    hasher.finish()
}

/// Both models on the same labelled rows.
pub(super) fn evaluate_both(
    challenger: &Model,
    champion: &Model,
    rows: &[LabeledRecord],
    settings: &PipelineSettings,
) -> Result<Evaluation, ModelError> {
    let costs = &settings.training.costs;
    Ok(Evaluation {
        rows: rows.len(),
        challenger: evaluate(challenger, rows, costs)?,
        champion: evaluate(champion, rows, costs)?,
    })
}

/// The offline replay: the most recent served predictions since the champion's promotion
/// that have an outcome, minus those whose inputs the challenger was trained on, re-scored
/// by both models from their logged inputs. It counts when at least
/// `replay_min_outcomes` rows remain and they hold both classes.
pub(super) async fn replay_served_outcomes(
    predictions: &dyn PredictionLog,
    since: DateTime<Utc>,
    challenger: &Challenger,
    champion: &Model,
    settings: &PipelineSettings,
) -> Result<Replay, PipelineError> {
    let gate = settings.promotion;
    let served = predictions
        .served_outcomes(since, gate.replay_max_rows)
        .await?;
    let trained = Arc::clone(&challenger.trained_inputs);
    let models = (challenger.fitted.model.clone(), champion.clone());
    let settings = settings.clone();
    run_blocking(move || {
        let served_outcomes = served.len();
        let rows: Vec<LabeledRecord> = served
            .into_iter()
            .filter_map(|row| {
                let outcome = Outcome {
                    prediction_id: row.entry.prediction_id,
                    fraud: row.outcome?,
                    observed_at: row.entry.created_at,
                };
                labeled_record(&outcome, &LoggedInputs::of_json(&row.entry.features)).ok()
            })
            .filter(|r| !trained.contains(&input_hash(&r.applicant)))
            .collect();
        let excluded = served_outcomes - rows.len();
        let skipped = |why: String| Replay {
            served_outcomes,
            excluded,
            evaluation: None,
            skipped: Some(why),
        };
        if rows.len() < gate.replay_min_outcomes {
            return skipped(format!(
                "{} served outcomes the challenger was not trained on, fewer than {}",
                rows.len(),
                gate.replay_min_outcomes
            ));
        }
        match evaluate_both(&models.0, &models.1, &rows, &settings) {
            Ok(evaluation) => Replay {
                served_outcomes,
                excluded,
                evaluation: Some(evaluation),
                skipped: None,
            },
            Err(e) => skipped(format!("{} served outcomes: {e}", rows.len())),
        }
    })
    .await
}
