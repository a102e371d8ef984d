//! L2-penalised logistic regression by Newton's method, on the compact [`Design`].
//!
//! About 60 parameters and up to millions of rows: one Newton step costs a pass over the rows
//! for the 62 × 62 Hessian (only 21 columns of a row are non-zero; [`super::newton_passes`] blocks
//! it), a Cholesky solve that is free at this size, and the line search's pass for the loss and
//! gradient at the new point, which the next step reuses. Newton converges quadratically, so
//! a fit takes a handful of passes (fewer from a warm start, as the tests check) where L-BFGS
//! took tens to hundreds over a dense copy. The objective is linfa-logistic's,
//! `Σᵢ logloss(i) + α/2 · ‖w‖²` on the standardised columns with the intercept unpenalised;
//! the tests hold it to linfa-logistic's coefficients on the same data (1e-6 wherever linfa's
//! own L-BFGS gets that close to the optimum).
//!
//! It is a linfa algorithm: [`NewtonLogistic`] implements [`Fit`] for a [`DatasetBase`] whose
//! records are [`DesignRows`] (a row set of the design and its distinct rows), whose targets
//! say whether each distinct row is fraud and whose sample weights count its copies (none: one
//! each). A pass weights each distinct row by its copies, which is the loss of the whole row
//! set; the standardisation is still fitted on every row, as `Encoder::fit` does.

use linfa::dataset::Records;
use linfa::prelude::*;
use linfa_linalg::cholesky::SolveCInplace;
use ndarray::{Array1, Array2};

use super::design::{Design, Rows};
use super::encoding::Encoder;
use super::newton_passes::{
    hessian, loss_and_gradient, standardised_gradient, standardised_hessian, Weighted,
};
use super::ModelError;

/// A row set of a design: linfa's records for [`NewtonLogistic`].
#[derive(Clone, Copy)]
pub(crate) struct DesignRows<'a> {
    pub design: &'a Design,
    /// Every row of the set: the standardisation is fitted on them.
    pub rows: &'a Rows,
    /// The rows the passes run over, one per sample: `rows` itself, or one row of each group
    /// of identical rows with the dataset's weights counting the copies.
    pub distinct: &'a Rows,
}

impl Records for DesignRows<'_> {
    type Elem = f64;

    fn nsamples(&self) -> usize {
        self.distinct.len()
    }

    fn nfeatures(&self) -> usize {
        self.design.layout().n_columns
    }
}

/// The settings of one fit.
#[derive(Clone, Debug)]
pub(crate) struct NewtonLogistic {
    alpha: f64,
    gradient_tolerance_per_row: f64,
    max_iterations: u64,
    warm: Option<Array1<f64>>,
}

/// The solver stops once the largest component of the gradient of the mean loss falls below
/// this: Newton converges quadratically, so the last step usually lands far below it.
const GRADIENT_TOLERANCE_PER_ROW: f64 = 1e-12;

/// Relative size of the loss's rounding error: a predicted decrease below it is noise.
const LOSS_RESOLUTION: f64 = 1e-12;

/// Armijo's sufficient-decrease constant of the backtracking line search.
const ARMIJO: f64 = 1e-4;

impl NewtonLogistic {
    pub fn new(alpha: f64) -> Self {
        NewtonLogistic {
            alpha,
            gradient_tolerance_per_row: GRADIENT_TOLERANCE_PER_ROW,
            max_iterations: 100,
            warm: None,
        }
    }

    pub fn max_iterations(mut self, iterations: u64) -> Self {
        self.max_iterations = iterations;
        self
    }

    /// Starts from these parameters (weights then intercept, on the standardised columns);
    /// ignored when the length does not fit.
    pub fn warm_start(mut self, stacked: Option<Array1<f64>>) -> Self {
        self.warm = stacked;
        self
    }
}

/// A fitted model on the log-odds of fraud.
#[derive(Clone, Debug)]
pub(crate) struct Fitted {
    /// The standardisation of the rows it was fitted on.
    pub encoder: Encoder,
    pub weights: Array1<f64>,
    pub intercept: f64,
    /// Weights then intercept in one vector: the form a warm start takes.
    pub stacked: Array1<f64>,
    /// Newton steps taken.
    pub iterations: u64,
    /// Stored-value coefficients: the same model applied to a design's rows directly.
    scorer: Scorer,
}

impl Fitted {
    /// Log-odds of fraud of row `r` of `design`.
    #[inline]
    pub fn log_odds(&self, design: &Design, r: u32) -> f64 {
        self.scorer.log_odds(design, r)
    }
}

/// The model on stored values: `z = intercept + Σ dense · x + Σ column_weights[column]`.
#[derive(Clone, Debug)]
struct Scorer {
    intercept: f64,
    dense: Vec<f64>,
    /// Indexed by model column; the design's "no column" slot (and the intercept's) is zero.
    column_weights: Vec<f64>,
}

impl Scorer {
    /// `theta`: weights, intercept, then the always-zero slot.
    fn new(theta: &[f64], design: &Design, affine: &[(f64, f64)]) -> Self {
        let layout = design.layout();
        let mut intercept = theta[layout.intercept()];
        let mut dense = Vec::with_capacity(affine.len());
        for (&column, &(scale, shift)) in layout.dense_columns.iter().zip(affine) {
            dense.push(theta[column] * scale);
            intercept += theta[column] * shift;
        }
        let mut column_weights = theta.to_vec();
        column_weights[layout.intercept()] = 0.0;
        column_weights[layout.no_column()] = 0.0;
        Scorer {
            intercept,
            dense,
            column_weights,
        }
    }

    #[inline]
    fn log_odds(&self, design: &Design, r: u32) -> f64 {
        let mut z = self.intercept;
        for (w, x) in self.dense.iter().zip(design.dense(r)) {
            z += w * x;
        }
        for &c in design.columns(r) {
            z += self.column_weights[c as usize];
        }
        z
    }
}

impl<'a, T> Fit<DesignRows<'a>, T, ModelError> for NewtonLogistic
where
    T: AsTargets<Elem = bool, Ix = ndarray::Ix1>,
{
    type Object = Fitted;

    fn fit(&self, dataset: &DatasetBase<DesignRows<'a>, T>) -> Result<Fitted, ModelError> {
        let DesignRows {
            design,
            rows,
            distinct,
        } = *dataset.records();
        let targets = dataset.as_targets();
        if targets.len() != distinct.len() {
            return Err(ModelError::InvalidConfig(format!(
                "{} targets for {} rows",
                targets.len(),
                distinct.len()
            )));
        }
        let fraud: Vec<bool> = targets.iter().copied().collect();
        let copies: Vec<f64> = match dataset.weights() {
            Some(w) if w.len() == distinct.len() => w.iter().map(|&c| f64::from(c)).collect(),
            Some(w) => {
                return Err(ModelError::InvalidConfig(format!(
                    "{} weights for {} rows",
                    w.len(),
                    distinct.len()
                )))
            }
            None => vec![1.0; distinct.len()],
        };
        let total: f64 = copies.iter().sum();
        let encoder = design.encoder(rows)?;
        let affine = design.affine(&encoder);
        let layout = design.layout();
        let (columns, intercept) = (layout.n_columns, layout.intercept());
        let mut theta = vec![0.0; layout.no_column() + 1];
        match self.warm.as_ref().filter(|w| w.len() == columns + 1) {
            Some(warm) => theta[..=columns].copy_from_slice(&warm.to_vec()),
            None => {
                // The optimum's intercept when every weight is zero: fewer steps from there.
                let k: f64 = fraud
                    .iter()
                    .zip(&copies)
                    .filter(|(f, _)| **f)
                    .map(|(_, c)| c)
                    .sum();
                theta[intercept] = ((k + 0.5) / (total - k + 0.5)).ln();
            }
        }
        let tolerance = self.gradient_tolerance_per_row * total;
        let weighted = Weighted {
            rows: distinct,
            fraud: &fraud,
            copies: &copies,
        };
        let fit_error = |message: String| ModelError::Fit {
            alpha: self.alpha,
            message,
            source: None,
        };
        let penalty =
            |t: &[f64]| 0.5 * self.alpha * t[..columns].iter().map(|w| w * w).sum::<f64>();
        let mut iterations = 0;
        let mut previous_blind_gradient: Option<f64> = None;
        // The loss and gradient at `theta`: a line search's accepted trial computed them, so
        // a step costs one Hessian pass and (usually) one loss-and-gradient pass, and the last
        // check of the gradient needs no Hessian.
        let mut scorer = Scorer::new(&theta, design, &affine);
        let mut at_theta = loss_and_gradient(design, &weighted, |r| scorer.log_odds(design, r));
        loop {
            let loss = at_theta.loss + penalty(&theta);
            let mut gradient = standardised_gradient(design, &affine, &at_theta.gradient);
            for (g, w) in gradient[..columns].iter_mut().zip(&theta) {
                *g += self.alpha * w;
            }
            let largest = gradient.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            if !largest.is_finite() {
                return Err(fit_error("the gradient is not finite".into()));
            }
            if largest <= tolerance || iterations >= self.max_iterations {
                if largest > tolerance {
                    tracing::warn!(
                        alpha = self.alpha,
                        iterations,
                        gradient = largest / total,
                        "Newton stopped at max_iterations before the gradient tolerance"
                    );
                }
                break;
            }
            let raw_hessian = hessian(design, &weighted, |r| scorer.log_odds(design, r));
            let mut hessian = standardised_hessian(design, &affine, &raw_hessian);
            for c in 0..columns {
                hessian[[c, c]] += self.alpha;
            }
            let mut step = Array2::from_shape_fn((columns + 1, 1), |(i, _)| -gradient[i]);
            hessian.solvec_inplace(&mut step).map_err(|e| {
                fit_error(format!("the Newton system is not positive definite: {e}"))
            })?;
            let slope: f64 = step.iter().zip(&gradient).map(|(d, g)| d * g).sum();
            iterations += 1;
            if -slope <= LOSS_RESOLUTION * (1.0 + loss.abs()) {
                // The step would lower the loss by less than its rounding error, so the line
                // search cannot judge it; this close, Newton's full step is what converges.
                // Taken while it still shrinks the gradient.
                if previous_blind_gradient.is_some_and(|g| largest >= g) {
                    break;
                }
                previous_blind_gradient = Some(largest);
                for (i, d) in step.iter().enumerate() {
                    theta[i] += d;
                }
                scorer = Scorer::new(&theta, design, &affine);
                at_theta = loss_and_gradient(design, &weighted, |r| scorer.log_odds(design, r));
                continue;
            }
            // Backtracking: the full step almost always passes.
            let mut t = 1.0;
            let mut accepted = None;
            let mut candidate = theta.clone();
            for _ in 0..40 {
                for (i, d) in step.iter().enumerate() {
                    candidate[i] = theta[i] + t * d;
                }
                let trial_scorer = Scorer::new(&candidate, design, &affine);
                let trial =
                    loss_and_gradient(design, &weighted, |r| trial_scorer.log_odds(design, r));
                if trial.loss + penalty(&candidate) <= loss + ARMIJO * t * slope {
                    accepted = Some((trial_scorer, trial));
                    break;
                }
                t *= 0.5;
            }
            let Some((trial_scorer, trial)) = accepted else {
                // No decrease left at floating-point precision: this is the optimum.
                break;
            };
            theta = candidate;
            scorer = trial_scorer;
            at_theta = trial;
        }
        let weights = Array1::from(theta[..columns].to_vec());
        let stacked = Array1::from(theta[..=columns].to_vec());
        if theta.iter().any(|v| !v.is_finite()) {
            return Err(fit_error("the solver returned non-finite weights".into()));
        }
        let scorer = Scorer::new(&theta, design, &affine);
        Ok(Fitted {
            encoder,
            weights,
            intercept: theta[intercept],
            stacked,
            iterations,
            scorer,
        })
    }
}
