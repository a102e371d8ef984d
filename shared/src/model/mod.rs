//! Model: encoding, logistic regression, metrics, artifact.
//!
//! The model estimates P(fraud) = P(creditability = 0) with an L2-regularised logistic
//! regression (linfa-logistic) over features encoded from [`crate::schema::FEATURES`]:
//! numeric and ordinal features standardised, nominal features one-hot over every schema code,
//! binary features as they are.
//!
//! - [`encoding`]: the encoder and its fitted parameters.
//! - [`train`]: [`fit`] (grid search by grouped, stratified cross-validation, then a refit) and
//!   [`train_with_holdout`].
//! - [`split`]: [`stratified_split`] and the cross-validation folds, both over distinct rows.
//! - [`metrics`]: [`evaluate`], [`roc_auc`], [`Metrics`].
//! - [`cost`]: [`CostMatrix`] and the cost-minimising threshold.
//! - [`calibration`]: the reliability table, expected calibration error and Platt scaling.
//! - [`artifact`]: [`ModelArtifact`], the versioned JSON form, and the MLflow `MLmodel` file.
//! - [`pyfunc`]: the Python loader shipped in the model folder ([`model_folder`]).

pub mod artifact;
pub mod calibration;
pub mod cost;
mod design;
pub mod encoding;
pub mod metrics;
mod newton;
mod newton_passes;
pub mod pyfunc;
mod solver;
pub mod split;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::schema::{reason_text, Applicant, FEATURES, REASONS};

pub use artifact::{Coefficient, ModelArtifact, Provenance, FORMAT_VERSION};
pub use calibration::{
    expected_calibration_error, platt_scaling, reliability_table, Calibration, CalibrationMethod,
    ReliabilityBin,
};
pub use cost::{cost_minimising_threshold, CostMatrix};
pub use encoding::{EncodedFeature, Encoder, FeatureEncoding};
pub use metrics::{evaluate, roc_auc, ConfusionMatrix, Metrics};
pub use pyfunc::{model_folder, ModelFile};
pub use split::{distinct_row_count, stratified_split, stratified_split_owned};
pub use train::{
    fit, fit_owned, train_with_holdout, training_threads, CvResult, FitOutcome, TrainConfig,
    TrainingOutcome, DEFAULT_SELECTION_ROWS, ENV_TRAINING_THREADS, MIN_SELECTION_ROWS,
};

/// The usual threshold, the one costs are compared with and a fit starts from.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// The answer for an applicant whose probability of fraud reaches the threshold (the seed's text).
pub const FRAUD_MESSAGE: &str = "The person might intend to commit fraud.";

/// The answer for every other applicant (the seed's text).
pub const NOT_FRAUD_MESSAGE: &str = "The person is probably not intending to commit fraud.";

/// The answer in the review band (only when one is configured).
pub const REVIEW_MESSAGE: &str =
    "The person's risk of fraud is close to the threshold: review the application by hand.";

/// Everything that can go wrong in training, evaluation or artifact handling.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An operation got no records.
    #[error("no records to {0}")]
    Empty(&'static str),
    /// An operation needs both classes but got one.
    #[error("{context} needs records of both classes, but all {count} are {only}")]
    OneClass {
        /// What was being done.
        context: &'static str,
        /// How many records there were.
        count: usize,
        /// The one class present: "fraud" or "not_fraud".
        only: &'static str,
    },
    /// Too few distinct rows of a class for the requested split.
    #[error("{0}")]
    TooFewDistinctRows(String),
    /// A training setting out of range.
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    /// An input value or score that is NaN or infinite.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// The solver failed.
    #[error("logistic regression failed to fit with alpha {alpha}: {message}")]
    Fit {
        /// The regularisation strength being fitted.
        alpha: f64,
        /// What failed (linfa's error as text, or what was wrong with its result).
        message: String,
        /// linfa's error, when it reported one.
        #[source]
        source: Option<crate::BoxError>,
    },
    /// Platt scaling could not be fitted.
    #[error("Platt scaling failed: {0}")]
    Calibration(String),
    /// An artifact written by another format version.
    #[error(
        "model artifact has format_version {found}, but this build reads only version {supported}; \
         retrain the model or use a matching fraudrisk build"
    )]
    UnsupportedFormat {
        /// The version in the artifact.
        found: u64,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// An artifact that parses but does not describe a usable model.
    #[error("invalid model artifact: {0}")]
    InvalidArtifact(String),
    /// An artifact that is not JSON of the expected shape.
    #[error("model artifact is not readable JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// linfa refused a dataset (the `Fit` trait's own error type).
    #[error("linfa: {0}")]
    Linfa(#[from] linfa::Error),
}

/// What the model says about an applicant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// P(fraud) reached the threshold: "the person might intend to commit fraud".
    Fraud,
    /// P(fraud) stayed below the threshold (and below the review band, when there is one).
    NotFraud,
    /// P(fraud) is in the review band: at least its lower end, below the threshold. Only
    /// models trained with a review band decide this.
    Review,
}

impl Decision {
    /// The seed's answer text for this decision.
    pub fn message(self) -> &'static str {
        match self {
            Decision::Fraud => FRAUD_MESSAGE,
            Decision::NotFraud => NOT_FRAUD_MESSAGE,
            Decision::Review => REVIEW_MESSAGE,
        }
    }

    /// The serialised name: "fraud" or "not_fraud".
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Fraud => "fraud",
            Decision::NotFraud => "not_fraud",
            Decision::Review => "review",
        }
    }
}

/// One feature's share of a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Contribution {
    /// The feature's schema name.
    pub feature: &'static str,
    /// The applicant's raw value.
    pub value: f64,
    /// Log-odds of fraud this feature adds relative to the average training applicant:
    /// the sum over its encoded columns of weight · (encoded value − training mean of the column).
    /// Always on the logistic regression's own log-odds, before any calibration.
    pub contribution: f64,
}

/// The most reason codes a decision carries.
pub const MAX_REASON_CODES: usize = 4;

/// A principal reason toward fraud: a feature whose value raised the estimated risk.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReasonCode {
    /// The feature's stable code, `R01` … `R20`, one per feature (the README lists them).
    #[schema(example = "R01")]
    pub code: &'static str,
    /// The feature and the applicant's value, e.g. "checking account: no running account".
    #[schema(example = "checking account: no running account")]
    pub text: String,
}

/// A scored applicant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// P(creditability = 0).
    pub probability_of_fraud: f64,
    /// The threshold the decision used (the model's, chosen by expected cost).
    pub threshold: f64,
    /// The lower end of the review band, when the model has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_from: Option<f64>,
    /// `Fraud` when the probability is at least the threshold.
    pub decision: Decision,
    /// The seed's answer text for the decision.
    pub message: &'static str,
    /// Up to [`MAX_REASON_CODES`] features that pushed toward fraud (positive
    /// contributions), largest first; empty when none did.
    pub reason_codes: Vec<ReasonCode>,
    /// Per-feature contributions, largest magnitude first. Their sum plus
    /// [`Model::base_log_odds`] is the log-odds of fraud of the uncalibrated model
    /// ([`Model::log_odds`]); a calibration maps that to `probability_of_fraud`.
    pub contributions: Vec<Contribution>,
}

/// A fitted model: the encoder, the logistic-regression weights and the decision threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    encoder: Encoder,
    intercept: f64,
    /// One weight per encoded column, on the log-odds of fraud.
    weights: Vec<f64>,
    /// Training mean of each encoded column: the reference point of contributions.
    column_means: Vec<f64>,
    threshold: f64,
    /// Lower end of the review band `[review_from, threshold)`, if any.
    review_from: Option<f64>,
    /// Recalibration of the log-odds, if any (Platt scaling).
    calibration: Option<Calibration>,
}

impl Model {
    /// Assembles a model from its parts, checking that they fit together.
    pub fn from_parts(
        encoder: Encoder,
        intercept: f64,
        weights: Vec<f64>,
        column_means: Vec<f64>,
        threshold: f64,
    ) -> Result<Self, ModelError> {
        let columns = encoder.n_columns();
        if weights.len() != columns || column_means.len() != columns {
            return Err(ModelError::InvalidArtifact(format!(
                "the encoding has {columns} columns but there are {} weights and {} column means",
                weights.len(),
                column_means.len()
            )));
        }
        if !intercept.is_finite() {
            return Err(ModelError::NonFinite(format!("intercept is {intercept}")));
        }
        for (name, (w, m)) in encoder
            .column_names()
            .iter()
            .zip(weights.iter().zip(column_means.iter()))
        {
            if !w.is_finite() || !m.is_finite() {
                return Err(ModelError::NonFinite(format!(
                    "column {name} has weight {w} and training mean {m}"
                )));
            }
        }
        check_threshold(threshold).map_err(ModelError::InvalidConfig)?;
        Ok(Model {
            encoder,
            intercept,
            weights,
            column_means,
            threshold,
            review_from: None,
            calibration: None,
        })
    }

    /// The log-odds of fraud for an applicant by the logistic regression (before any
    /// calibration). Allocation-free: it reads the weights of the
    /// encoded columns directly instead of building the encoded row.
    pub fn log_odds(&self, applicant: &Applicant) -> f64 {
        let mut z = self.intercept;
        for (i, feature) in self.encoder.features().iter().enumerate() {
            let x = applicant.0[i];
            let start = self.encoder.offset(i);
            z += match &feature.encoding {
                FeatureEncoding::Standardized { mean, std } => {
                    self.weights[start] * (x - mean) / std
                }
                FeatureEncoding::OneHot { codes } => codes
                    .iter()
                    .position(|c| *c as f64 == x)
                    .map_or(0.0, |p| self.weights[start + p]),
                FeatureEncoding::Passthrough => self.weights[start] * x,
            };
        }
        z
    }

    /// P(fraud) for an applicant (hot path: no allocation). Values are expected to be
    /// validated ([`Applicant::validate`]); a nominal code outside the schema encodes as
    /// all-zero columns, like scikit-learn's `handle_unknown="ignore"`.
    /// With a calibration, the calibrated probability.
    pub fn probability_of_fraud(&self, applicant: &Applicant) -> f64 {
        self.probability_from_log_odds(self.log_odds(applicant))
    }

    /// P(fraud) for the logistic regression's log-odds `z`: `sigmoid(z)`, or the
    /// calibration's mapping of `z` when the model has one.
    pub fn probability_from_log_odds(&self, z: f64) -> f64 {
        match &self.calibration {
            Some(calibration) => calibration.probability(z),
            None => sigmoid(z),
        }
    }

    /// The decision for a probability: fraud from the threshold, review from the review
    /// band's lower end (when there is a band), not fraud below.
    pub fn decide(&self, probability_of_fraud: f64) -> Decision {
        if probability_of_fraud >= self.threshold {
            Decision::Fraud
        } else if self
            .review_from
            .is_some_and(|from| probability_of_fraud >= from)
        {
            Decision::Review
        } else {
            Decision::NotFraud
        }
    }

    /// Scores an applicant and explains the score feature by feature.
    pub fn predict(&self, applicant: &Applicant) -> Prediction {
        let probability_of_fraud = self.probability_of_fraud(applicant);
        let decision = self.decide(probability_of_fraud);
        let mut row = vec![0.0; self.encoder.n_columns()];
        self.encoder.encode_into(applicant, &mut row);
        let mut contributions: Vec<Contribution> = FEATURES
            .iter()
            .enumerate()
            .map(|(i, feature)| {
                let columns = self.encoder.columns_of(i);
                let contribution = columns
                    .map(|c| self.weights[c] * (row[c] - self.column_means[c]))
                    .sum();
                Contribution {
                    feature: feature.name,
                    value: applicant.0[i],
                    contribution,
                }
            })
            .collect();
        let reason_codes = reason_codes(&contributions, applicant);
        contributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Prediction {
            probability_of_fraud,
            threshold: self.threshold,
            review_from: self.review_from,
            decision,
            message: decision.message(),
            reason_codes,
            contributions,
        }
    }

    /// The log-odds of fraud of an applicant whose every encoded column sits at its training
    /// mean: the starting point that contributions add to.
    pub fn base_log_odds(&self) -> f64 {
        self.intercept
            + self
                .weights
                .iter()
                .zip(self.column_means.iter())
                .map(|(w, m)| w * m)
                .sum::<f64>()
    }

    /// The probability at or above which the decision is [`Decision::Fraud`].
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// A copy of the model with another decision threshold (strictly between 0 and 1).
    pub fn with_threshold(&self, threshold: f64) -> Result<Model, ModelError> {
        check_threshold(threshold).map_err(ModelError::InvalidConfig)?;
        Ok(Model {
            threshold,
            ..self.clone()
        })
    }

    /// A copy of the model with a review band from `review_from` up to the threshold (`None`:
    /// no band). The band is empty when `review_from` is at or above the threshold.
    pub fn with_review_band(&self, review_from: Option<f64>) -> Result<Model, ModelError> {
        if let Some(from) = review_from {
            check_threshold(from)
                .map_err(|m| ModelError::InvalidConfig(format!("review band: {m}")))?;
        }
        Ok(Model {
            review_from,
            ..self.clone()
        })
    }

    /// The lower end of the review band, if the model has one.
    pub fn review_from(&self) -> Option<f64> {
        self.review_from
    }

    /// A copy of the model whose probabilities go through `calibration` (`None`: the
    /// logistic regression's own). The parameters must be finite.
    pub fn with_calibration(&self, calibration: Option<Calibration>) -> Result<Model, ModelError> {
        if let Some(c) = &calibration {
            c.validate()?;
        }
        Ok(Model {
            calibration,
            ..self.clone()
        })
    }

    /// The model's calibration, if any.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The fitted encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The intercept on the log-odds of fraud.
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// One weight per encoded column (see [`Encoder::column_names`]), on the log-odds of fraud.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The training mean of each encoded column.
    pub fn column_means(&self) -> &[f64] {
        &self.column_means
    }
}

/// The features with positive contributions (in schema order in `contributions`), largest
/// first (ties in schema order), at most [`MAX_REASON_CODES`].
fn reason_codes(contributions: &[Contribution], applicant: &Applicant) -> Vec<ReasonCode> {
    let mut toward_fraud: Vec<(usize, f64)> = contributions
        .iter()
        .enumerate()
        .filter(|(_, c)| c.contribution > 0.0)
        .map(|(i, c)| (i, c.contribution))
        .collect();
    // A stable sort: equal contributions keep schema order.
    toward_fraud.sort_by(|a, b| b.1.total_cmp(&a.1));
    toward_fraud
        .into_iter()
        .take(MAX_REASON_CODES)
        .map(|(i, _)| ReasonCode {
            code: REASONS[i].code,
            text: reason_text(i, applicant.0[i]),
        })
        .collect()
}

/// The threshold must leave both decisions possible.
fn check_threshold(threshold: f64) -> Result<(), String> {
    if threshold.is_finite() && threshold > 0.0 && threshold < 1.0 {
        Ok(())
    } else {
        Err(format!(
            "threshold must be strictly between 0 and 1, got {threshold}"
        ))
    }
}

/// The logistic function, written so that neither branch overflows.
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
