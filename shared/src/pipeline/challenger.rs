//! The challenger a retrain trains: every absorbed row plus most of the waiting ones, with a
//! stratified slice of the waiting rows held out to compare it with the champion.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;

use crate::model::{distinct_row_count, fit_owned, stratified_split_owned, FitOutcome};
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
    absorbed: Vec<StoredRecord>,
    pending: &[StoredRecord],
    settings: &PipelineSettings,
) -> Result<Challenger, PipelineError> {
    let pending_records: Vec<LabeledRecord> = pending.iter().map(|s| s.record).collect();
    let (recent_train, recent_holdout) = stratified_split_owned(
        pending_records,
        settings.recent_holdout_fraction,
        settings.training.seed,
    );
    let training_window = settings.training_window;
    let config = settings.training.clone();
    let now = Utc::now();
    run_blocking(move || {
        let (kept, window) = select_absorbed(&absorbed, recent_train.len(), &training_window, now);
        let mut training: Vec<LabeledRecord> = kept.iter().map(|s| s.record).collect();
        training.extend(recent_train.iter().copied());
        // Every absorbed row counts, also those a window left out: the champion may have been
        // trained on them, and the replay must be out-of-sample for both models.
        let trained_inputs: HashSet<u64> = absorbed
            .iter()
            .map(|s| &s.record)
            .chain(&recent_train)
            .map(|r| input_hash(&r.applicant))
            .collect();
        // The stored rows are not needed past here: at a million rows they are 200 MB.
        drop(kept);
        drop(absorbed);
        let training_rows = training.len();
        let distinct_rows = distinct_row_count(&training);
        let fitted = fit_owned(training, &config)?;
        Ok::<_, PipelineError>(Challenger {
            fitted,
            training_rows,
            distinct_rows,
            recent_holdout,
            window,
            trained_inputs: Arc::new(trained_inputs),
        })
    })
    .await?
}
