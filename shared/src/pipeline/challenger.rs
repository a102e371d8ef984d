//! The challenger a retrain trains: every absorbed row plus most of the waiting ones, with a
//! stratified slice of the waiting rows held out to compare it with the champion.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;

use crate::model::{distinct_row_count, fit, stratified_split, FitOutcome};
use crate::ports::StoredRecord;
use crate::schema::LabeledRecord;

use super::replay::input_hash;
use super::training_window::{select_absorbed, AppliedWindow};
use super::{run_blocking, PipelineError, PipelineSettings};

/// A challenger and the recent rows held out to compare it with the champion.
pub(super) struct Challenger {
    pub(super) fitted: FitOutcome,
    pub(super) training_rows: usize,
    pub(super) distinct_rows: usize,
    pub(super) recent_holdout: Vec<LabeledRecord>,
    /// The absorbed rows the training window kept.
    pub(super) window: AppliedWindow,
    /// A hash of the inputs of each row the challenger or the champion may have been trained on
    /// (its training rows, and every absorbed row): the replay leaves out served predictions
    /// with those inputs (an outcome becomes a training row), so it is out-of-sample for both.
    pub(super) trained_inputs: Arc<HashSet<u64>>,
}

/// Trains on the absorbed rows the training window keeps (default: all) plus most of the
/// waiting ones; a stratified slice of the waiting rows is held out to compare challenger and
/// champion on recent data.
pub(super) async fn train_challenger(
    absorbed: &[StoredRecord],
    pending: &[StoredRecord],
    settings: &PipelineSettings,
) -> Result<Challenger, PipelineError> {
    let pending_records: Vec<LabeledRecord> = pending.iter().map(|s| s.record).collect();
    let (recent_train, recent_holdout) = stratified_split(
        &pending_records,
        settings.recent_holdout_fraction,
        settings.training.seed,
    );
    let (kept, window) = select_absorbed(
        absorbed,
        recent_train.len(),
        &settings.training_window,
        Utc::now(),
    );
    let mut training: Vec<LabeledRecord> = kept.iter().map(|s| s.record).collect();
    training.extend(recent_train.iter().copied());
    let training_rows = training.len();
    let distinct_rows = distinct_row_count(&training);
    let config = settings.training.clone();
    // Rows a window left out still count: the champion may have been trained on them, and the
    // replay must be out-of-sample for both models.
    let left_out: Vec<LabeledRecord> = if window.left_out == 0 {
        Vec::new()
    } else {
        absorbed.iter().map(|s| s.record).collect()
    };
    let (fitted, trained_inputs) = run_blocking(move || {
        let inputs: HashSet<u64> = training
            .iter()
            .chain(&left_out)
            .map(|r| input_hash(&r.applicant))
            .collect();
        fit(&training, &config).map(|fitted| (fitted, inputs))
    })
    .await??;
    Ok(Challenger {
        fitted,
        training_rows,
        distinct_rows,
        recent_holdout,
        window,
        trained_inputs: Arc::new(trained_inputs),
    })
}
