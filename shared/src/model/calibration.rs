//! Calibration: the reliability table and expected calibration error (ECE) of a set of
//! probabilities, and Platt scaling, the optional recalibration of a model's probabilities.
//!
//! **Reliability table**: ten equal-width bins on [0, 1] exactly as scikit-learn's
//! `calibration_curve(n_bins=10, strategy="uniform")` builds them: the edges are
//! `numpy.linspace(0, 1, 11)` (so `i · 0.1` in floating point, e.g. 0.30000000000000004) and
//! a probability goes to the bin `searchsorted(edges[1:-1], p)` names: a probability equal
//! to an inner edge belongs to the bin BELOW it. The bins are therefore [0, 0.1], (0.1, 0.2],
//! …, (0.9, 1]: both ends of [0, 1] are inside. scikit-learn drops empty bins; here they stay,
//! with no mean and no rate. ECE = Σ_bins count / n · |observed rate − mean predicted|.
//!
//! **Platt scaling** (Platt 1999, with Lin, Lin & Weng's 2007 notes): on the out-of-fold
//! log-odds `f` of the uncalibrated model, fit P(fraud | f) = sigmoid(a · f + b) by maximum
//! likelihood against Platt's smoothed targets, as scikit-learn's `_sigmoid_calibration`
//! does: a fraud counts as (N₊ + 1) / (N₊ + 2), a genuine applicant as 1 / (N₋ + 2), so a
//! perfectly separated fold cannot push the fit to infinity. scikit-learn models
//! 1 / (1 + exp(A · f + B)); the same curve is ours with `a = −A`, `b = −B`.
//! scikit-learn minimises with L-BFGS to a gradient of 1e-6; here Newton's method on the two
//! parameters (the loss is convex, its Hessian 2 × 2) runs to the optimum itself.

use serde::{Deserialize, Serialize};

use super::{sigmoid, ModelError};

/// Number of bins of the reliability table.
pub const RELIABILITY_BINS: usize = 10;

/// One bin of the reliability table. (Its OpenAPI name differs from the monitor's
/// `ReliabilityBin`, which bins served predictions with outcomes.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = MetricsReliabilityBin)]
pub struct ReliabilityBin {
    /// Lower edge of the bin (excluded, except 0 in the first bin).
    pub lower: f64,
    /// Upper edge of the bin (included).
    pub upper: f64,
    /// Number of records whose P(fraud) falls in the bin.
    pub count: usize,
    /// Mean P(fraud) of those records; absent when the bin is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_predicted: Option<f64>,
    /// Share of those records that are fraud; absent when the bin is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_rate: Option<f64>,
}

/// The `i`-th of the 11 bin edges, as `numpy.linspace(0, 1, 11)` computes it.
fn edge(i: usize) -> f64 {
    if i == RELIABILITY_BINS {
        1.0
    } else {
        i as f64 * (1.0 / RELIABILITY_BINS as f64)
    }
}

/// The reliability table of probabilities (labels: true = fraud), in bin order; every bin
/// is present, empty ones with no mean and no rate. Probabilities are expected in [0, 1]
/// (those below 0 count in the first bin, those above 1 in the last).
pub fn reliability_table(is_fraud: &[bool], probabilities: &[f64]) -> Vec<ReliabilityBin> {
    let mut counts = [0usize; RELIABILITY_BINS];
    let mut sums = [0.0f64; RELIABILITY_BINS];
    let mut frauds = [0usize; RELIABILITY_BINS];
    for (&fraud, &p) in is_fraud.iter().zip(probabilities) {
        // searchsorted(edges[1:-1], p, side="left"): the number of inner edges below p.
        let bin = (1..RELIABILITY_BINS).filter(|&i| edge(i) < p).count();
        counts[bin] += 1;
        sums[bin] += p;
        frauds[bin] += usize::from(fraud);
    }
    (0..RELIABILITY_BINS)
        .map(|i| {
            let count = counts[i];
            let mean = |total: f64| (count > 0).then(|| total / count as f64);
            ReliabilityBin {
                lower: edge(i),
                upper: edge(i + 1),
                count,
                mean_predicted: mean(sums[i]),
                observed_rate: mean(frauds[i] as f64),
            }
        })
        .collect()
}

/// Expected calibration error of a reliability table: the count-weighted mean gap between
/// each bin's observed fraud rate and its mean P(fraud). 0 for an empty table.
pub fn expected_calibration_error(bins: &[ReliabilityBin]) -> f64 {
    let n: usize = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        return 0.0;
    }
    bins.iter()
        .filter_map(|b| {
            let gap = (b.observed_rate? - b.mean_predicted?).abs();
            Some(b.count as f64 / n as f64 * gap)
        })
        .sum()
}

/// Whether and how a model's probabilities are recalibrated (`FRAUDRISK_CALIBRATION`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// The logistic regression's own probabilities.
    #[default]
    None,
    /// Platt scaling fitted on the out-of-fold log-odds.
    Platt,
}

impl CalibrationMethod {
    /// The accepted names, for messages.
    pub const NAMES: &'static str = "none, platt";

    /// The setting's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CalibrationMethod::None => "none",
            CalibrationMethod::Platt => "platt",
        }
    }
}

impl std::str::FromStr for CalibrationMethod {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(CalibrationMethod::None),
            "platt" => Ok(CalibrationMethod::Platt),
            _ => Err(format!(
                "must be one of {} (got {text:?})",
                CalibrationMethod::NAMES
            )),
        }
    }
}

/// A fitted recalibration of the model's log-odds, stored in the artifact.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    /// P(fraud) = sigmoid(a · z + b), z the model's log-odds (scikit-learn's `A = −a`,
    /// `B = −b`).
    Platt {
        /// Slope on the log-odds.
        a: f64,
        /// Intercept.
        b: f64,
    },
}

impl Calibration {
    /// The calibrated P(fraud) for the model's log-odds `z`. The Python loader computes
    /// `a * z + b` then the same sigmoid, so both agree to the last bits.
    pub fn probability(&self, log_odds: f64) -> f64 {
        match *self {
            Calibration::Platt { a, b } => sigmoid(a * log_odds + b),
        }
    }

    /// Checks that the parameters are finite.
    pub fn validate(&self) -> Result<(), ModelError> {
        match *self {
            Calibration::Platt { a, b } if a.is_finite() && b.is_finite() => Ok(()),
            Calibration::Platt { a, b } => Err(ModelError::NonFinite(format!(
                "Platt calibration a = {a}, b = {b}"
            ))),
        }
    }

    /// The method's name.
    pub fn method(&self) -> CalibrationMethod {
        match self {
            Calibration::Platt { .. } => CalibrationMethod::Platt,
        }
    }
}

/// Platt's smoothed targets: (N₊ + 1) / (N₊ + 2) for fraud, 1 / (N₋ + 2) for genuine.
fn smoothed_targets(is_fraud: &[bool]) -> Vec<f64> {
    let positives = is_fraud.iter().filter(|f| **f).count() as f64;
    let negatives = is_fraud.len() as f64 - positives;
    let hi = (positives + 1.0) / (positives + 2.0);
    let lo = 1.0 / (negatives + 2.0);
    is_fraud.iter().map(|&f| if f { hi } else { lo }).collect()
}

/// Cross-entropy of the targets under sigmoid(a · f + b), summed; written with
/// `ln(1 + e^{-z}) + (1 − t) · z` so that no term overflows.
fn platt_loss(f: &[f64], t: &[f64], a: f64, b: f64) -> f64 {
    f.iter()
        .zip(t)
        .map(|(&x, &ti)| {
            let z = a * x + b;
            softplus(-z) + (1.0 - ti) * z
        })
        .sum()
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Fits Platt scaling on log-odds `f` (one per record) against the labels (true = fraud).
/// Fails on no records, on one class only, on non-finite log-odds, and when Newton's method
/// does not converge (it does on finite input: the loss is strictly convex unless every `f`
/// is equal, and a tiny ridge covers that case).
pub fn platt_scaling(f: &[f64], is_fraud: &[bool]) -> Result<Calibration, ModelError> {
    if f.len() != is_fraud.len() {
        return Err(ModelError::InvalidConfig(format!(
            "{} labels but {} log-odds",
            is_fraud.len(),
            f.len()
        )));
    }
    if f.is_empty() {
        return Err(ModelError::Empty("fit Platt scaling on"));
    }
    if let Some(bad) = f.iter().find(|x| !x.is_finite()) {
        return Err(ModelError::NonFinite(format!(
            "log-odds {bad} in Platt scaling"
        )));
    }
    let positives = is_fraud.iter().filter(|x| **x).count();
    if positives == 0 || positives == f.len() {
        return Err(ModelError::OneClass {
            context: "Platt scaling",
            count: f.len(),
            only: if positives == 0 { "not_fraud" } else { "fraud" },
        });
    }
    let t = smoothed_targets(is_fraud);
    let negatives = (f.len() - positives) as f64;
    // scikit-learn's start, A = 0 and B = ln((N₋ + 1) / (N₊ + 1)), in our signs.
    let (mut a, mut b) = (0.0, ((positives as f64 + 1.0) / (negatives + 1.0)).ln());
    let mut loss = platt_loss(f, &t, a, b);
    // A gradient at this size is rounding in a sum of n terms of size up to max |f|.
    let f_scale = f.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let rounding = f.len() as f64 * f64::EPSILON * 16.0 * f_scale;
    let mut gradient = f64::INFINITY;
    for _ in 0..MAX_NEWTON_STEPS {
        let (g, h) = gradient_and_hessian(f, &t, a, b);
        gradient = g[0].abs().max(g[1].abs());
        if gradient <= rounding {
            break;
        }
        // Lin, Lin & Weng's tiny ridge keeps the Hessian invertible when every f is equal.
        let (h_aa, h_ab, h_bb) = (h[0] + RIDGE, h[1], h[2] + RIDGE);
        let det = h_aa * h_bb - h_ab * h_ab;
        let step_a = -(h_bb * g[0] - h_ab * g[1]) / det;
        let step_b = -(h_aa * g[1] - h_ab * g[0]) / det;
        if !(step_a.is_finite() && step_b.is_finite()) {
            break;
        }
        let decrease = g[0] * step_a + g[1] * step_b;
        let mut size = 1.0;
        // Near the optimum the loss, a sum of n terms, cannot resolve the improvement: the
        // full Newton step is taken (the convergence is quadratic there); further out a
        // backtracking line search keeps every step downhill.
        if decrease.abs() > 1e-10 * loss.abs().max(1.0) {
            while platt_loss(f, &t, a + size * step_a, b + size * step_b)
                > loss + 1e-4 * size * decrease
            {
                size /= 2.0;
                if size < 1e-10 {
                    break;
                }
            }
        }
        let (da, db) = (size * step_a, size * step_b);
        a += da;
        b += db;
        loss = platt_loss(f, &t, a, b);
        if da.abs() <= 1e-15 * a.abs().max(1.0) && db.abs() <= 1e-15 * b.abs().max(1.0) {
            gradient = gradient_and_hessian(f, &t, a, b)
                .0
                .iter()
                .fold(0.0f64, |m, g| m.max(g.abs()));
            break;
        }
    }
    // Steps that no longer move the parameters also end the search; the answer is accepted
    // when its gradient is below 1e-9 of the largest it could be (n · max |f|), far inside
    // scikit-learn's own stop (an absolute gradient of 1e-6 on scores scaled to |f| <= 30).
    if gradient <= rounding.max(1e-9 * f.len() as f64 * f_scale) {
        Ok(Calibration::Platt { a, b })
    } else {
        Err(ModelError::Calibration(format!(
            "Newton's method stopped with gradient {gradient:e} (a = {a}, b = {b})"
        )))
    }
}

/// Newton's method converges in a handful of steps; this only bounds a pathological input.
const MAX_NEWTON_STEPS: usize = 200;

/// Added to the Hessian's diagonal (Lin, Lin & Weng 2007).
const RIDGE: f64 = 1e-12;

/// The loss's gradient (∂a, ∂b) and Hessian (aa, ab, bb) at (a, b).
fn gradient_and_hessian(f: &[f64], t: &[f64], a: f64, b: f64) -> ([f64; 2], [f64; 3]) {
    let (mut g, mut h) = ([0.0; 2], [0.0; 3]);
    for (&x, &ti) in f.iter().zip(t) {
        let p = sigmoid(a * x + b);
        let d = p - ti;
        let w = p * (1.0 - p);
        g[0] += d * x;
        g[1] += d;
        h[0] += w * x * x;
        h[1] += w * x;
        h[2] += w;
    }
    (g, h)
}

#[cfg(test)]
#[path = "calibration_tests.rs"]
mod tests;
