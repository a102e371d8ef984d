//! The challenger a retrain trains: every absorbed row plus most of the waiting ones, with a
//! stratified slice of the waiting rows held out to compare it with the champion.

use std::collections::HashSet;
use std::sync::Arc;

use crate::model::{distinct_row_count, fit, stratified_split, FitOutcome};
use crate::ports::StoredRecord;
use crate::schema::LabeledRecord;

use super::replay::input_hash;
use super::{run_blocking, PipelineError, PipelineSettings};

/// A challenger and the recent rows held out to compare it with the champion.
pub(super) struct Challenger {
    pub(super) fitted: FitOutcome,
    pub(super) training_rows: usize,
    pub(super) distinct_rows: usize,
    pub(super) recent_holdout: Vec<LabeledRecord>,
    /// A hash of each training row's inputs: the replay leaves out served predictions the
    /// challenger was trained on (an outcome becomes a training row), so it is out-of-sample.
    pub(super) trained_inputs: Arc<HashSet<u64>>,
}

/// Trains on every absorbed row plus most of the waiting ones; a stratified slice of the
/// waiting rows is held out to compare challenger and champion on recent data.
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
    let mut training: Vec<LabeledRecord> = absorbed.iter().map(|s| s.record).collect();
    training.extend(recent_train.iter().copied());
    let training_rows = training.len();
    let distinct_rows = distinct_row_count(&training);
    let config = settings.training.clone();
    let (fitted, trained_inputs) = run_blocking(move || {
        let inputs: HashSet<u64> = training.iter().map(|r| input_hash(&r.applicant)).collect();
        fit(&training, &config).map(|fitted| (fitted, inputs))
    })
    .await??;
    Ok(Challenger {
        fitted,
        training_rows,
        distinct_rows,
        recent_holdout,
        trained_inputs: Arc::new(trained_inputs),
    })
}
