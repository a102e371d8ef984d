//! One L2-penalised logistic regression with linfa-logistic, on the log-odds of fraud
//! whatever class linfa takes as positive, with an optional warm start.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, Axis};

use super::encoding::Encoder;
use super::train::TrainConfig;
use super::{Model, ModelError};
use crate::schema::LabeledRecord;

/// The solver stops once the L2 norm of the gradient of the summed loss falls below this
/// times the number of rows, i.e. a per-row (mean-loss) gradient of 1e-5: tighter than
/// scikit-learn's default `tol=1e-4`, loose enough to stop in tens of iterations.
const GRADIENT_TOLERANCE_PER_ROW: f64 = 1e-5;

/// Fits encoder and weights on all `records` with one alpha.
pub(super) fn fit_one(
    records: &[LabeledRecord],
    alpha: f64,
    config: &TrainConfig,
    warm: Option<Array1<f64>>,
) -> Result<Model, ModelError> {
    let encoder = Encoder::fit(records.iter().map(|r| &r.applicant))?;
    let x = encoder.encode_records(records.iter());
    let y: Array1<bool> = records.iter().map(|r| r.is_fraud()).collect();
    let solution = solve(&x, &y, alpha, config.max_iterations, warm.as_ref())?;
    let column_means = x
        .mean_axis(Axis(0))
        .map(|m| m.to_vec())
        .ok_or(ModelError::Empty("compute column means of"))?;
    Model::from_parts(
        encoder,
        solution.intercept,
        solution.weights.to_vec(),
        column_means,
        // `fit` then moves it to the cost-minimising threshold.
        super::DEFAULT_THRESHOLD,
    )
}

/// A solver result on the log-odds of fraud.
pub(super) struct Solution {
    pub(super) weights: Array1<f64>,
    pub(super) intercept: f64,
    /// Weights then intercept in one vector: the form a warm start takes.
    pub(super) stacked: Array1<f64>,
}

/// Whether linfa will model P(fraud) rather than P(not fraud) on these targets: it takes the
/// more frequent class as positive, the first one seen on a tie. Only the warm start relies
/// on this guess; the fitted model's own labels decide the orientation of the result.
fn linfa_models_fraud(is_fraud: &Array1<bool>) -> bool {
    let fraud = is_fraud.iter().filter(|f| **f).count();
    let not_fraud = is_fraud.len() - fraud;
    fraud > not_fraud || (fraud == not_fraud && is_fraud.first().copied().unwrap_or(false))
}

/// Fits one L2-penalised logistic regression. `warm` (weights then intercept, on the log-odds
/// of fraud) is the starting point when given.
pub(super) fn solve(
    x: &Array2<f64>,
    is_fraud: &Array1<bool>,
    alpha: f64,
    max_iterations: u64,
    warm: Option<&Array1<f64>>,
) -> Result<Solution, ModelError> {
    let fit_error = |e: linfa_logistic::error::Error| ModelError::Fit {
        alpha,
        message: e.to_string(),
        source: Some(Box::new(e)),
    };
    let dataset = DatasetBase::new(x.view(), is_fraud.view());
    let mut params = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .gradient_tolerance(GRADIENT_TOLERANCE_PER_ROW * x.nrows() as f64);
    if let Some(initial) = warm.filter(|w| w.len() == x.ncols() + 1) {
        let sign = if linfa_models_fraud(is_fraud) {
            1.0
        } else {
            -1.0
        };
        params = params.initial_params(initial * sign);
    }
    let fitted = params.fit(&dataset).map_err(fit_error)?;
    // linfa models P(its "positive" class): turn the parameters around when that is not fraud.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let weights = fitted.params() * sign;
    let intercept = fitted.intercept() * sign;
    if !intercept.is_finite() || weights.iter().any(|w| !w.is_finite()) {
        return Err(ModelError::Fit {
            alpha,
            message: "the solver returned non-finite weights".into(),
            source: None,
        });
    }
    let mut stacked = Array1::zeros(weights.len() + 1);
    stacked
        .slice_mut(ndarray::s![..weights.len()])
        .assign(&weights);
    stacked[weights.len()] = intercept;
    Ok(Solution {
        weights,
        intercept,
        stacked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testdata;

    fn config() -> TrainConfig {
        TrainConfig {
            alphas: vec![0.1, 1.0, 10.0, 100.0],
            ..TrainConfig::default()
        }
    }

    #[test]
    fn warm_starts_do_not_move_the_optimum() {
        let records = testdata::records(300, 3, 21);
        let cold = fit_one(&records, 10.0, &config(), None).unwrap();
        let mut stacked: Array1<f64> = cold.weights().iter().copied().collect();
        stacked = ndarray::concatenate![Axis(0), stacked, Array1::from(vec![cold.intercept()])];
        // A start on the wrong side of every weight still ends at the same optimum.
        let far = fit_one(&records, 10.0, &config(), Some(stacked * -3.0)).unwrap();
        let gap = cold
            .weights()
            .iter()
            .zip(far.weights())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(gap < 0.01, "{gap}");
    }

    #[test]
    fn the_orientation_guess_matches_linfa() {
        for fraud_share in [0.3, 0.7] {
            let mut records = testdata::records(200, 1, 2);
            for (i, r) in records.iter_mut().enumerate() {
                r.creditability = u8::from((i as f64 / 200.0) >= fraud_share);
            }
            let encoder = Encoder::fit(records.iter().map(|r| &r.applicant)).unwrap();
            let x = encoder.encode_records(records.iter());
            let y: Array1<bool> = records.iter().map(|r| r.is_fraud()).collect();
            let fitted = LogisticRegression::default()
                .fit(&DatasetBase::new(x.view(), y.view()))
                .unwrap();
            assert_eq!(linfa_models_fraud(&y), fitted.labels().pos.class);
        }
    }
}
