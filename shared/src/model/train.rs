//! Training: a grid over the L2 strength chosen by grouped, stratified k-fold ROC AUC, then a
//! refit on all records, and the decision threshold that minimises the expected cost on the
//! chosen strength's out-of-fold probabilities (the same folds; never the holdout). With
//! Platt scaling configured, the calibration is fitted on those out-of-fold log-odds first and
//! the threshold is chosen on the calibrated out-of-fold probabilities (as scikit-learn's
//! `CalibratedClassifierCV(ensemble=False)`: cross-validated predictions calibrate the model
//! refitted on everything).
//!
//! linfa-logistic minimises `Σᵢ logloss(i) + α/2 · ‖w‖²` (intercept not penalised);
//! scikit-learn's `LogisticRegression` minimises `C · Σᵢ logloss(i) + ½ · ‖w‖²`. Both have the
//! same minimiser when `α = 1 / C`, so the default grid α ∈ {0.1, 1, 10, 100, 1000} is
//! scikit-learn's C ∈ {10, 1, 0.1, 0.01, 0.001}. As in scikit-learn, the penalty does not
//! scale with the number of rows. One fit with linfa is in `solver`.

use crate::progress::{Step, Unit};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::calibration::{platt_scaling, CalibrationMethod};
use super::cost::{cost_minimising_threshold, CostMatrix};
use super::design::Design;
use super::metrics::{evaluate, roc_auc, Metrics};
use super::solver::{fit_rows, model_on_rows};
use super::split::{selection_sample_of, stratified_group_folds_of, stratified_split_owned};
use super::{check_threshold, sigmoid, Model, ModelError};
use crate::schema::LabeledRecord;

/// Settings of [`fit`] and [`train_with_holdout`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Seed of the holdout split and of the fold assignment.
    pub seed: u64,
    /// L2 strengths to try (linfa's `alpha`; scikit-learn's `C` is `1 / alpha`). Each > 0.
    pub alphas: Vec<f64>,
    /// Number of cross-validation folds (at least 2).
    pub folds: usize,
    /// Share of distinct rows held out by [`train_with_holdout`], strictly between 0 and 1.
    pub holdout_fraction: f64,
    /// What wrong decisions cost: the threshold minimises their expected cost.
    pub costs: CostMatrix,
    /// Lower end of an optional review band `[review_below, threshold)`, strictly between 0
    /// and 1; `None`: no band, decisions are fraud or not fraud.
    #[serde(default)]
    pub review_below: Option<f64>,
    /// Upper bound on Newton steps per fit (a handful are typical).
    pub max_iterations: u64,
    /// Recalibration of the probabilities: none, or Platt scaling on the out-of-fold log-odds.
    #[serde(default)]
    pub calibration: CalibrationMethod,
    /// Model selection (the grid, the threshold, the calibration) runs on a stratified sample
    /// of about this many rows when there are more; the final fit always uses every row.
    #[serde(default = "default_selection_rows")]
    pub selection_rows: usize,
}

/// The default row cap of model selection: on the seed-like data it picks the same alpha as
/// all the rows (README, "Training at scale"), and keeps the grid's 25 fits to seconds.
pub const DEFAULT_SELECTION_ROWS: usize = 200_000;

/// The smallest row cap accepted: below it the folds get too few distinct rows to rank the grid.
pub const MIN_SELECTION_ROWS: usize = 1_000;

fn default_selection_rows() -> usize {
    DEFAULT_SELECTION_ROWS
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            alphas: vec![0.1, 1.0, 10.0, 100.0, 1000.0],
            folds: 5,
            holdout_fraction: 0.2,
            costs: CostMatrix::default(),
            review_below: None,
            max_iterations: 100,
            calibration: CalibrationMethod::None,
            selection_rows: DEFAULT_SELECTION_ROWS,
        }
    }
}

impl TrainConfig {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |m: String| Err(ModelError::InvalidConfig(m));
        if self.alphas.is_empty() {
            return invalid("alphas is empty; give at least one L2 strength".into());
        }
        if let Some(a) = self.alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
            return invalid(format!("every alpha must be finite and > 0, got {a}"));
        }
        if self.folds < 2 {
            return invalid(format!("folds must be at least 2, got {}", self.folds));
        }
        if !(self.holdout_fraction > 0.0 && self.holdout_fraction < 1.0) {
            return invalid(format!(
                "holdout_fraction must be strictly between 0 and 1, got {}",
                self.holdout_fraction
            ));
        }
        self.costs.validate()?;
        if let Some(p) = self.review_below {
            check_threshold(p)
                .map_err(|m| ModelError::InvalidConfig(format!("review_below: {m}")))?;
        }
        if self.max_iterations == 0 {
            return invalid("max_iterations must be at least 1".into());
        }
        if self.selection_rows < MIN_SELECTION_ROWS {
            return invalid(format!(
                "selection_rows must be at least {MIN_SELECTION_ROWS}, got {}",
                self.selection_rows
            ));
        }
        Ok(())
    }
}

/// Cross-validated ROC AUC of one L2 strength.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    /// linfa's `alpha` (scikit-learn's `C = 1 / alpha`).
    pub alpha: f64,
    /// Mean validation ROC AUC over the folds.
    pub mean_roc_auc: f64,
    /// Population standard deviation of the fold AUCs (as scikit-learn's `std_test_score`).
    pub std_roc_auc: f64,
}

/// What [`fit`] returns.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    /// The model refitted on all records with the chosen alpha, at the cost-minimising
    /// threshold.
    pub model: Model,
    /// One result per alpha, in the configured order.
    pub cv: Vec<CvResult>,
    /// The alpha with the best mean AUC (ties go to the stronger regularisation).
    pub chosen_alpha: f64,
    /// Expected cost per applicant of the chosen threshold on the out-of-fold probabilities.
    pub cv_expected_cost: f64,
    /// P(fraud) of each row of `selection_rows` (in that order) by the chosen alpha's model of
    /// the fold that did not see it, calibrated when the model is: what the threshold was chosen on.
    pub oof_probabilities: Vec<f64>,
    /// The uncalibrated log-odds behind them: what a calibration is fitted on.
    pub oof_log_odds: Vec<f64>,
    /// The rows model selection ran on: indices into the records, ascending; every record
    /// unless there were more than `selection_rows` (the out-of-fold figures are theirs).
    pub selection_rows: Vec<usize>,
}

/// What [`train_with_holdout`] returns.
#[derive(Clone, Debug)]
pub struct TrainingOutcome {
    /// The model fitted on the training part.
    pub model: Model,
    /// Cross-validation on the training part, one result per alpha.
    pub cv: Vec<CvResult>,
    /// The alpha the model was refitted with.
    pub chosen_alpha: f64,
    /// Expected cost per applicant of the chosen threshold on the out-of-fold probabilities.
    pub cv_expected_cost: f64,
    /// Metrics on the holdout part.
    pub metrics: Metrics,
    /// Number of records in the training part.
    pub train_rows: usize,
    /// Number of them model selection ran on (`train_rows` unless capped by `selection_rows`).
    pub selection_rows: usize,
    /// Number of records in the holdout part.
    pub holdout_rows: usize,
    /// The model's P(fraud) on each holdout record: the reference the monitor compares
    /// served scores with.
    pub holdout_scores: Vec<f64>,
    /// The held-out records, in the order of `holdout_scores` (the model card's segments).
    pub holdout: Vec<LabeledRecord>,
}

/// Chooses alpha by stratified k-fold ROC AUC over distinct rows (the standardisation is
/// refitted on each fold's training part, so the validation rows never inform the scaling),
/// then refits on all records. The threshold minimises the expected cost
/// ([`cost_minimising_threshold`]) on the chosen alpha's out-of-fold probabilities: each row
/// scored by the fold model that did not see it, so the threshold is not tuned on scores of
/// rows the model was fitted to. With more than `config.selection_rows` records, the folds,
/// the threshold and the calibration use a stratified sample of about that many
/// ([`selection_sample`](super::split)); the refit uses every record.
///
/// The records are encoded once ([`Design`]); folds are row sets of it. The folds run on
/// [`training_threads`] threads; the result is deterministic for `config.seed` whatever the
/// thread count.
pub fn fit(records: &[LabeledRecord], config: &TrainConfig) -> Result<FitOutcome, ModelError> {
    let prepared = prepare(records, config)?;
    fit_prepared(prepared, config)
}

/// [`fit`] on records the caller gives up: they are dropped once encoded, so the grid and the
/// refit hold only the compact design (106 B a row instead of 168).
pub fn fit_owned(
    records: Vec<LabeledRecord>,
    config: &TrainConfig,
) -> Result<FitOutcome, ModelError> {
    let prepared = prepare(&records, config)?;
    drop(records);
    fit_prepared(prepared, config)
}

/// What [`fit`] needs of the records: their design, the model-selection rows and their folds.
struct Prepared {
    design: Design,
    /// Rows of the design model selection runs on, ascending.
    selection: Vec<u32>,
    /// The fold of each of them.
    fold_of_row: Vec<usize>,
}

fn prepare(records: &[LabeledRecord], config: &TrainConfig) -> Result<Prepared, ModelError> {
    config.validate()?;
    check_both_classes(records, "training")?;
    check_finite(records)?;
    let design = Design::new(records)?;
    let groups = design.groups();
    let sample = selection_sample_of(groups, config.selection_rows, config.seed);
    let (selection, fold_of_row) = match sample {
        Some(rows) => {
            let sampled = groups.restricted(&rows);
            check_both_classes_of(&sampled.is_fraud, rows.len(), "the model-selection sample")?;
            let folds = stratified_group_folds_of(&sampled, config.folds, config.seed)?;
            (rows, folds)
        }
        None => (
            design.all_rows(),
            stratified_group_folds_of(groups, config.folds, config.seed)?,
        ),
    };
    if selection.len() < records.len() {
        tracing::info!(
            rows = records.len(),
            sample = selection.len(),
            "model selection on a stratified sample (selection_rows)"
        );
    }
    Ok(Prepared {
        design,
        selection,
        fold_of_row,
    })
}

fn fit_prepared(prepared: Prepared, config: &TrainConfig) -> Result<FitOutcome, ModelError> {
    let Prepared {
        design,
        selection,
        fold_of_row,
    } = prepared;
    let rows = design.all_rows();

    // Strongest penalty first: each solution warm-starts the next, weaker one.
    let mut order: Vec<usize> = (0..config.alphas.len()).collect();
    order.sort_by(|&a, &b| config.alphas[b].total_cmp(&config.alphas[a]));

    // Folds are independent, so they run on the available cores. Each fold's result depends
    // only on its own data, and errors are reported in fold order: the outcome does not depend
    // on scheduling.
    let threads = training_threads().min(config.folds);
    let next_fold = AtomicUsize::new(0);
    let progress = Step::start(
        format!(
            "cross-validation on {} rows: {} folds x {} strengths",
            selection.len(),
            config.folds,
            config.alphas.len()
        ),
        Unit::Fits,
        (config.folds * config.alphas.len()) as u64,
    );
    let cv_data = CvData {
        design: &design,
        selection: &selection,
        fold_of_row: &fold_of_row,
    };
    let mut per_fold: Vec<(usize, Result<FoldResult, ModelError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let fold = next_fold.fetch_add(1, Ordering::Relaxed);
                        if fold >= config.folds {
                            return done;
                        }
                        done.push((
                            fold,
                            validate_fold(&cv_data, fold, &order, config, &progress),
                        ));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    progress.finish();
    per_fold.sort_by_key(|(fold, _)| *fold);
    let mut fold_aucs = vec![Vec::with_capacity(config.folds); config.alphas.len()];
    let mut fold_params: Vec<Vec<Array1<f64>>> = vec![Vec::new(); config.alphas.len()];
    // Out-of-fold log-odds, per alpha, in the order of `selection`.
    let mut oof = vec![vec![0.0; selection.len()]; config.alphas.len()];
    for (_, result) in per_fold {
        let result = result?;
        for (((aucs, params), log_odds), score) in fold_aucs
            .iter_mut()
            .zip(&mut fold_params)
            .zip(&mut oof)
            .zip(result.scores)
        {
            aucs.push(score.roc_auc);
            params.push(score.stacked);
            for (&position, z) in result.positions.iter().zip(score.log_odds) {
                log_odds[position] = z;
            }
        }
    }

    let cv: Vec<CvResult> = config
        .alphas
        .iter()
        .zip(&fold_aucs)
        .map(|(&alpha, aucs)| {
            let n = aucs.len() as f64;
            let mean = aucs.iter().sum::<f64>() / n;
            let var = aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
            CvResult {
                alpha,
                mean_roc_auc: mean,
                std_roc_auc: var.sqrt(),
            }
        })
        .collect();
    let chosen_alpha = choose_alpha(&cv);
    tracing::debug!(?cv, chosen_alpha, "cross-validation done");

    // The refit starts from the folds' average solution for the chosen alpha: the folds hold
    // 1 − 1/k of the same rows, so it is close and the refit needs few iterations.
    let chosen = config
        .alphas
        .iter()
        .position(|a| *a == chosen_alpha)
        .ok_or_else(|| ModelError::InvalidConfig("the chosen alpha is not in the grid".into()))?;
    let warm = mean_vector(&fold_params[chosen]);
    let is_fraud: Vec<bool> = selection.iter().map(|&r| design.is_fraud(r)).collect();
    let oof_log_odds = oof.swap_remove(chosen);
    let calibration = match config.calibration {
        CalibrationMethod::None => None,
        CalibrationMethod::Platt => Some(platt_scaling(&oof_log_odds, &is_fraud)?),
    };
    tracing::debug!(?calibration, "calibration on the out-of-fold log-odds");
    let oof_probabilities: Vec<f64> = oof_log_odds
        .iter()
        .map(|&z| match &calibration {
            Some(c) => c.probability(z),
            None => sigmoid(z),
        })
        .collect();
    let threshold = cost_minimising_threshold(&is_fraud, &oof_probabilities, &config.costs)?;
    let cv_expected_cost = config
        .costs
        .expected_cost(&is_fraud, &oof_probabilities, threshold);
    tracing::debug!(threshold, cv_expected_cost, "cost-minimising threshold");
    let refit = Step::start(format!("refit on {} rows", rows.len()), Unit::Fits, 1);
    if config.review_below.is_some_and(|from| from >= threshold) {
        tracing::warn!(
            review_below = config.review_below,
            threshold,
            "the review band is empty: its lower end is not below the cost-based threshold"
        );
    }
    let model = model_on_rows(&design, &rows, chosen_alpha, config, warm)?
        .with_threshold(threshold)?
        .with_review_band(config.review_below)?
        .with_calibration(calibration)?;
    refit.advance(1);
    refit.finish();
    Ok(FitOutcome {
        model,
        cv,
        chosen_alpha,
        cv_expected_cost,
        oof_probabilities,
        oof_log_odds,
        selection_rows: selection.iter().map(|&r| r as usize).collect(),
    })
}

/// Splits by distinct rows ([`stratified_split`]), fits on the training part and scores the
/// holdout part.
pub fn train_with_holdout(
    records: Vec<LabeledRecord>,
    config: &TrainConfig,
) -> Result<TrainingOutcome, ModelError> {
    config.validate()?;
    check_both_classes(&records, "training with a holdout")?;
    let (train, holdout) = stratified_split_owned(records, config.holdout_fraction, config.seed);
    check_both_classes(&holdout, "the holdout")?;
    let train_rows = train.len();
    let outcome = fit_owned(train, config)?;
    let evaluation = Step::start(
        format!("evaluate on {} holdout rows", holdout.len()),
        Unit::Rows,
        holdout.len() as u64,
    );
    let metrics = evaluate(&outcome.model, &holdout, &config.costs)?;
    let holdout_scores = holdout
        .iter()
        .map(|r| outcome.model.probability_of_fraud(&r.applicant))
        .collect();
    evaluation.advance(holdout.len() as u64);
    evaluation.finish();
    Ok(TrainingOutcome {
        model: outcome.model,
        cv: outcome.cv,
        chosen_alpha: outcome.chosen_alpha,
        cv_expected_cost: outcome.cv_expected_cost,
        metrics,
        train_rows,
        selection_rows: outcome.selection_rows.len(),
        holdout_rows: holdout.len(),
        holdout_scores,
        holdout,
    })
}

/// One alpha's result on one validation fold.
#[derive(Clone)]
struct FoldScore {
    roc_auc: f64,
    /// Weights then intercept, kept to warm-start the refit.
    stacked: Array1<f64>,
    /// Log-odds of fraud of the fold's validation rows, in the order of [`FoldResult::positions`].
    log_odds: Vec<f64>,
}

/// One validation fold: its positions in the model-selection rows and each alpha's result.
struct FoldResult {
    positions: Vec<usize>,
    scores: Vec<FoldScore>,
}

/// What every fold reads: the design, the model-selection rows and their folds.
struct CvData<'a> {
    design: &'a Design,
    /// Rows of the design model selection runs on, ascending.
    selection: &'a [u32],
    /// The fold of each of them.
    fold_of_row: &'a [usize],
}

/// The element-wise mean of equally long vectors (None when there are none).
fn mean_vector(vectors: &[Array1<f64>]) -> Option<Array1<f64>> {
    let first = vectors.first()?;
    let mut sum = Array1::zeros(first.len());
    for v in vectors {
        sum += v;
    }
    Some(sum / vectors.len() as f64)
}

/// Fits every alpha on the other folds and returns the validation scores of `fold`, indexed
/// like `config.alphas`. The standardisation is fitted on the training part only.
fn validate_fold(
    data: &CvData<'_>,
    fold: usize,
    order: &[usize],
    config: &TrainConfig,
    progress: &Step,
) -> Result<FoldResult, ModelError> {
    let mut train = Vec::with_capacity(data.selection.len());
    let mut positions = Vec::new();
    for (position, (&row, &f)) in data.selection.iter().zip(data.fold_of_row).enumerate() {
        if f == fold {
            positions.push(position);
        } else {
            train.push(row);
        }
    }
    let valid_fraud: Vec<bool> = positions
        .iter()
        .map(|&p| data.design.is_fraud(data.selection[p]))
        .collect();
    let mut scores_by_alpha: Vec<Option<FoldScore>> = vec![None; config.alphas.len()];
    let mut warm = None;
    for &a in order {
        let fitted = fit_rows(data.design, &train, config.alphas[a], config, warm)?;
        let log_odds: Vec<f64> = positions
            .iter()
            .map(|&p| fitted.log_odds(data.design, data.selection[p]))
            .collect();
        let scores: Vec<f64> = log_odds.iter().map(|z| sigmoid(*z)).collect();
        scores_by_alpha[a] = Some(FoldScore {
            roc_auc: roc_auc(&valid_fraud, &scores)?,
            stacked: fitted.stacked.clone(),
            log_odds,
        });
        warm = Some(fitted.stacked);
        progress.advance(1);
    }
    // `order` is a permutation of the alpha indices, so every slot is filled.
    Ok(FoldResult {
        positions,
        scores: scores_by_alpha.into_iter().flatten().collect(),
    })
}

/// Environment variable capping the threads cross-validation runs on (default: every core).
pub const ENV_TRAINING_THREADS: &str = "FRAUDRISK_TRAINING_THREADS";

/// Threads for the folds: `FRAUDRISK_TRAINING_THREADS` when it is a positive number, else
/// `available_parallelism()`. Benchmarks set it to compare one core with one core.
pub fn training_threads() -> usize {
    std::env::var(ENV_TRAINING_THREADS)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The best mean AUC; among equals (within rounding) the largest alpha, the simpler model.
fn choose_alpha(cv: &[CvResult]) -> f64 {
    let best = cv
        .iter()
        .map(|c| c.mean_roc_auc)
        .fold(f64::NEG_INFINITY, f64::max);
    cv.iter()
        .filter(|c| c.mean_roc_auc >= best - 1e-12)
        .map(|c| c.alpha)
        .fold(f64::NEG_INFINITY, f64::max)
}

fn check_both_classes(records: &[LabeledRecord], context: &'static str) -> Result<(), ModelError> {
    if records.is_empty() {
        return Err(ModelError::Empty(context));
    }
    let fraud = records.iter().filter(|r| r.is_fraud()).count();
    if fraud == 0 || fraud == records.len() {
        return Err(ModelError::OneClass {
            context,
            count: records.len(),
            only: if fraud == 0 { "not_fraud" } else { "fraud" },
        });
    }
    Ok(())
}

/// [`check_both_classes`] of `rows` rows, from the labels of their groups of identical rows.
fn check_both_classes_of(
    group_is_fraud: &[bool],
    rows: usize,
    context: &'static str,
) -> Result<(), ModelError> {
    let fraud = group_is_fraud.iter().filter(|f| **f).count();
    if fraud == 0 || fraud == group_is_fraud.len() {
        return Err(ModelError::OneClass {
            context,
            count: rows,
            only: if fraud == 0 { "not_fraud" } else { "fraud" },
        });
    }
    Ok(())
}

fn check_finite(records: &[LabeledRecord]) -> Result<(), ModelError> {
    for (row, record) in records.iter().enumerate() {
        if let Some(i) = record.applicant.0.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite(format!(
                "training record {row}, feature {}",
                crate::schema::FEATURES[i].name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
