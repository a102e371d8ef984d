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
//! - [`artifact`]: [`ModelArtifact`], the versioned JSON form, and the MLflow `MLmodel` file.
//! - [`pyfunc`]: the Python loader shipped in the model folder ([`model_folder`]).

pub mod artifact;
pub mod cost;
pub mod encoding;
pub mod metrics;
pub mod pyfunc;
mod solver;
pub mod split;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::schema::{reason_text, Applicant, FEATURES, REASONS};

pub use artifact::{Coefficient, ModelArtifact, Provenance, FORMAT_VERSION};
pub use cost::{cost_minimising_threshold, CostMatrix};
pub use encoding::{EncodedFeature, Encoder, FeatureEncoding};
pub use metrics::{evaluate, roc_auc, ConfusionMatrix, Metrics};
pub use pyfunc::{model_folder, ModelFile};
pub use split::{distinct_row_count, stratified_split};
pub use train::{fit, train_with_holdout, CvResult, FitOutcome, TrainConfig, TrainingOutcome};

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
    /// [`Model::base_log_odds`] is the log-odds of fraud.
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
        })
    }

    /// The log-odds of fraud for an applicant. Allocation-free: it reads the weights of the
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
    pub fn probability_of_fraud(&self, applicant: &Applicant) -> f64 {
        sigmoid(self.log_odds(applicant))
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
mod tests {
    use super::*;
    use crate::schema::LabeledRecord;

    fn small_config() -> TrainConfig {
        TrainConfig {
            alphas: vec![0.1, 1.0, 10.0, 100.0],
            ..TrainConfig::default()
        }
    }

    fn fitted() -> (Model, Vec<LabeledRecord>) {
        let records = testdata::records(300, 3, 7);
        let outcome = fit(&records, &small_config()).unwrap();
        (outcome.model, records)
    }

    #[test]
    fn contributions_and_base_add_up_to_the_log_odds() {
        let (model, records) = fitted();
        for record in records.iter().take(50) {
            let prediction = model.predict(&record.applicant);
            let sum: f64 = prediction
                .contributions
                .iter()
                .map(|c| c.contribution)
                .sum();
            let z = model.base_log_odds() + sum;
            let p = 1.0 / (1.0 + (-z).exp());
            assert!((p - prediction.probability_of_fraud).abs() < 1e-12);
            assert_eq!(prediction.contributions.len(), FEATURES.len());
        }
    }

    #[test]
    fn contributions_are_sorted_by_magnitude_and_carry_raw_values() {
        let (model, records) = fitted();
        let applicant = records[0].applicant;
        let prediction = model.predict(&applicant);
        for pair in prediction.contributions.windows(2) {
            assert!(pair[0].contribution.abs() >= pair[1].contribution.abs());
        }
        for c in &prediction.contributions {
            let i = crate::schema::feature_index(c.feature).unwrap();
            assert_eq!(c.value, applicant.0[i]);
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_encoded_dot_product() {
        let (model, records) = fitted();
        for record in records.iter().take(50) {
            let mut row = vec![0.0; model.encoder().n_columns()];
            model.encoder().encode_into(&record.applicant, &mut row);
            let z: f64 = model.intercept()
                + row
                    .iter()
                    .zip(model.weights())
                    .map(|(x, w)| x * w)
                    .sum::<f64>();
            assert!((z - model.log_odds(&record.applicant)).abs() < 1e-10);
        }
    }

    #[test]
    fn the_model_learns_the_direction_of_fraud() {
        // In the synthetic data fraud grows with the first numeric feature: its weight on the
        // log-odds of FRAUD must be positive (a sign flip in the label mapping would show here).
        let (model, _) = fitted();
        let numeric = FEATURES
            .iter()
            .position(|f| f.kind == crate::schema::FeatureKind::Numeric)
            .unwrap();
        let column = model.encoder().offset(numeric);
        assert!(model.weights()[column] > 0.3, "{}", model.weights()[column]);
    }

    #[test]
    fn decision_follows_the_threshold_and_serialises_like_the_seed() {
        let (model, records) = fitted();
        let applicant = records[0].applicant;
        let p = model.probability_of_fraud(&applicant);
        let strict = model.with_threshold((p + 1.0) / 2.0).unwrap();
        assert_eq!(strict.predict(&applicant).decision, Decision::NotFraud);
        let lenient = model.with_threshold(p / 2.0).unwrap();
        let prediction = lenient.predict(&applicant);
        assert_eq!(prediction.decision, Decision::Fraud);
        assert_eq!(prediction.message, FRAUD_MESSAGE);
        let json = serde_json::to_value(&prediction).unwrap();
        assert_eq!(json["decision"], "fraud");
        assert_eq!(
            serde_json::to_value(Decision::NotFraud).unwrap(),
            "not_fraud"
        );
        assert!(model.with_threshold(1.0).is_err());
        assert!(model.with_threshold(f64::NAN).is_err());
        // A review band below the threshold: review inside it, the same decisions outside.
        let banded = model
            .with_threshold((p + 1.0) / 2.0)
            .unwrap()
            .with_review_band(Some(p / 2.0))
            .unwrap();
        let prediction = banded.predict(&applicant);
        assert_eq!(prediction.decision, Decision::Review);
        assert_eq!(prediction.message, REVIEW_MESSAGE);
        assert_eq!(
            serde_json::to_value(prediction).unwrap()["decision"],
            "review"
        );
        assert_eq!(banded.decide((p + 1.0) / 2.0), Decision::Fraud);
        assert_eq!(banded.decide(p / 4.0), Decision::NotFraud);
        assert!(model.with_review_band(Some(0.0)).is_err());
    }

    #[test]
    fn unknown_nominal_code_scores_without_panicking() {
        let (model, records) = fitted();
        let mut applicant = records[0].applicant;
        let nominal = FEATURES
            .iter()
            .position(|f| f.kind == crate::schema::FeatureKind::Nominal)
            .unwrap();
        applicant.0[nominal] = 99.0;
        let p = model.probability_of_fraud(&applicant);
        assert!(p.is_finite() && p > 0.0 && p < 1.0);
    }

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
    }
}
