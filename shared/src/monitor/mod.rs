//! The monitor: what the service actually served in a window, against what its champion was
//! trained on, and how the served decisions did once outcomes came back.
//!
//! - [`scores`]: prediction drift, the two-sample Kolmogorov-Smirnov test on P(fraud)
//!   (`scipy.stats.ks_2samp`), PSI over the reference deciles, and the two-proportion z test on
//!   the fraud-decision rate.
//! - [`performance`]: realized performance (label coverage, ROC AUC, precision, recall, F1,
//!   Brier) overall, per model version, per ISO week, and per segment (age band,
//!   `sex_marital_status` code).
//!
//! - [`emf_documents`]: the figures as CloudWatch metrics in Embedded Metric Format.
//!
//! [`monitor_report`] is pure: the pipeline ([`crate::pipeline::monitor`]) reads the window
//! and the reference from the stores and hands them over.

mod aggregates;
mod emf;
mod performance;
mod reference_scores;
mod scores;
mod window_scan;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dataset::{CellAt, DataQuality, QualityTally};
use crate::drift::{detect_drift, DriftConfig, DriftReport};
use crate::ports::MonitoredPrediction;
use crate::schema::{feature_index, Applicant, Feature, FEATURES, FEATURE_COUNT};

pub use aggregates::{monitor_report_from_aggregates, FeatureValueCounts, WindowAggregates};
pub use emf::{emf_documents, METRIC_NAMESPACE};
pub use performance::{
    age_band, reliability, segments, GroupedOutcome, Performance, PerformanceFigures,
    ReliabilityBin, ScoredOutcome, SegmentPerformance, VersionPerformance, WeekPerformance,
    RELIABILITY_BINS,
};
pub use reference_scores::{
    reference_scores_key, ReferenceScores, ReferenceScoresError, ScoreReferenceSource,
    REFERENCE_SCORES_FILE,
};
pub use scores::{prediction_drift, PredictionDrift, ScoreHistogram, SCORE_HISTOGRAM_BINS};
pub use window_scan::{OutOfOrder, ScannedWindow, ScoreReference, ServedScore, WindowScan};

/// What the monitor looked at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct MonitorWindow {
    /// Predictions made at or after this time (default: the champion's promotion).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<DateTime<Utc>>,
    /// Predictions made before this time (default: unbounded).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<DateTime<Utc>>,
    /// The champion whose training data is the reference.
    pub champion_version: u32,
    /// When it was promoted.
    #[schema(value_type = String, format = DateTime)]
    pub champion_promoted_at: DateTime<Utc>,
    /// Predictions examined.
    pub served: usize,
    /// Always false: the monitor reads the whole window through the store's aggregates.
    /// (Reports written when it read at most 200,000 rows say true when the window was cut.)
    pub truncated: bool,
    /// Rows of the champion's training data (the reference of the input tests).
    pub reference_rows: usize,
    /// Where the reference score distribution comes from (reports written before it was
    /// stored with the model say `training_rows`).
    #[serde(default = "training_rows")]
    pub score_reference: ScoreReferenceSource,
    /// How many reference scores there are (0 in reports written before it was recorded).
    #[serde(default)]
    pub score_reference_rows: usize,
}

fn training_rows() -> ScoreReferenceSource {
    ScoreReferenceSource::TrainingRows
}

/// Something a person should look at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct Alert {
    /// `no_traffic`, `input_drift`, `prediction_drift`, `data_quality` or `realized_auc`.
    pub kind: String,
    /// What was found, in a sentence.
    pub detail: String,
}

/// When the monitor raises alerts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct MonitorSettings {
    /// The drift tests' settings (input drift; alpha also for prediction drift).
    pub drift: DriftConfig,
    /// Alert when the realized ROC AUC falls below this...
    pub min_roc_auc: f64,
    /// ...over at least this many predictions with outcomes.
    pub min_labelled: usize,
}

impl Default for MonitorSettings {
    /// The drift defaults, ROC AUC 0.7 over at least 100 outcomes.
    fn default() -> Self {
        MonitorSettings {
            drift: DriftConfig::default(),
            min_roc_auc: 0.7,
            min_labelled: 100,
        }
    }
}

/// The monitor's report: `fraudctl monitor --format json` prints it as it is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct MonitorReport {
    pub window: MonitorWindow,
    /// The served inputs against the champion's training data: the drift report's shape.
    pub input_drift: DriftReport,
    pub prediction_drift: PredictionDrift,
    /// Missing and out-of-domain values in the logged inputs.
    pub data_quality: DataQuality,
    pub performance: Performance,
    pub segments: Vec<SegmentPerformance>,
    pub alerts: Vec<Alert>,
}

/// What the report is computed from.
pub struct MonitorInput<'a> {
    /// The champion's training rows.
    pub reference: &'a [Applicant],
    /// The champion's P(fraud) on them.
    pub reference_scores: &'a [f64],
    /// The champion's threshold.
    pub threshold: f64,
    /// The window's predictions, with outcomes.
    pub served: &'a [MonitoredPrediction],
}

/// Builds the report (CPU only; run it off the async threads).
pub fn monitor_report(
    input: MonitorInput<'_>,
    window: MonitorWindow,
    settings: &MonitorSettings,
) -> MonitorReport {
    let (applicants, data_quality) = served_applicants(input.served);
    let input_drift = detect_drift(input.reference, &applicants, &settings.drift);
    let scores: Vec<f64> = input
        .served
        .iter()
        .map(|p| p.entry.probability_of_fraud)
        .collect();
    let decisions: Vec<bool> = input.served.iter().map(|p| p.entry.fraud).collect();
    let prediction_drift = prediction_drift(
        input.reference_scores,
        input.threshold,
        &scores,
        &decisions,
        settings.drift.alpha,
    );
    let age = feature_index("age_years").unwrap_or(FEATURE_COUNT);
    let sex_marital = feature_index("sex_marital_status").unwrap_or(FEATURE_COUNT);
    let value = |a: &Applicant, j: usize| a.0.get(j).copied().unwrap_or(f64::NAN);
    let grouped: Vec<GroupedOutcome> = input
        .served
        .iter()
        .zip(&applicants)
        .map(|(p, a)| GroupedOutcome {
            scored: ScoredOutcome {
                probability_of_fraud: p.entry.probability_of_fraud,
                decided_fraud: p.entry.fraud,
                outcome: p.outcome,
            },
            model_version: p.entry.model_version,
            created_at: p.entry.created_at,
            age_years: value(a, age),
            sex_marital_status: value(a, sex_marital),
        })
        .collect();
    let performance = performance::performance(&grouped);
    let segments = performance::segments(&grouped);
    let alerts = alerts(
        &window,
        &input_drift,
        &prediction_drift,
        &data_quality,
        &performance,
        settings,
    );
    MonitorReport {
        window,
        input_drift,
        prediction_drift,
        data_quality,
        performance,
        segments,
        alerts,
    }
}

/// The input-drift verdict over served traffic that `retrain --mode if-drift` weighs beside
/// the waiting rows' own drift test.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct ServedInputDrift {
    /// Predictions served since the champion's promotion that were tested.
    pub served: usize,
    /// At least one feature of the served inputs drifted from the champion's training data.
    pub drift: bool,
    /// The drifted features, in schema order.
    pub drifted_features: Vec<String>,
}

impl ServedInputDrift {
    /// The verdict of an input-drift report over `served` predictions.
    pub fn of(report: &DriftReport, served: usize) -> Self {
        ServedInputDrift {
            served,
            drift: report.drift,
            drifted_features: report
                .features
                .iter()
                .filter(|f| f.significant)
                .map(|f| f.feature.clone())
                .collect(),
        }
    }
}

/// The logged inputs as rows; a value that is missing or outside its domain (only a
/// hand-edited log holds one: inputs are checked before they are scored) becomes NaN, which the
/// drift tests leave out, and is counted.
pub fn served_applicants(served: &[MonitoredPrediction]) -> (Vec<Applicant>, DataQuality) {
    let mut tally = QualityTally::new();
    let applicants = served
        .iter()
        .map(|p| logged_applicant(&mut tally, p.entry.prediction_id, &p.entry.features))
        .collect();
    (applicants, tally.finish())
}

/// One logged input object as a row, its bad cells counted in `tally`.
pub(crate) fn logged_applicant(
    tally: &mut QualityTally,
    prediction_id: uuid::Uuid,
    features: &serde_json::Value,
) -> Applicant {
    let at = CellAt::Prediction(prediction_id);
    let object = features.as_object();
    let mut values = [f64::NAN; FEATURE_COUNT];
    for (j, (slot, feature)) in values.iter_mut().zip(FEATURES.iter()).enumerate() {
        match logged_value(feature, object.and_then(|o| o.get(feature.name))) {
            Ok(value) => *slot = value,
            Err((text, rule)) => tally.bad_cell(j, at, &text, &rule),
        }
    }
    tally.end_row();
    Applicant(values)
}

/// A logged value of `feature` as the tests read it, or the cell's text and the rule it breaks.
pub(crate) fn logged_value(
    feature: &Feature,
    cell: Option<&serde_json::Value>,
) -> Result<f64, (String, String)> {
    match cell.and_then(serde_json::Value::as_f64) {
        Some(number) => feature
            .check(number)
            .map(|code| code as f64)
            .map_err(|error| (number.to_string(), error.rule)),
        None => {
            let text = cell.map(ToString::to_string).unwrap_or_default();
            Err((text, format!("must be {}", feature.domain.describe())))
        }
    }
}

/// A logged number of feature `j` (schema order) as the segments read it: NaN when it is
/// missing or outside the feature's domain.
pub fn checked_number(j: usize, number: Option<f64>) -> f64 {
    let feature = FEATURES.get(j);
    match (feature, number) {
        (Some(feature), Some(number)) => feature.check(number).map_or(f64::NAN, |c| c as f64),
        _ => f64::NAN,
    }
}

fn alerts(
    window: &MonitorWindow,
    input_drift: &DriftReport,
    prediction_drift: &PredictionDrift,
    data_quality: &DataQuality,
    performance: &Performance,
    settings: &MonitorSettings,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let mut raise = |kind: &str, detail: String| {
        alerts.push(Alert {
            kind: kind.to_string(),
            detail,
        })
    };
    if window.served == 0 {
        raise(
            "no_traffic",
            format!(
                "no prediction was served in the window (champion version {})",
                window.champion_version
            ),
        );
    }
    if input_drift.drift {
        let drifted: Vec<&str> = input_drift
            .features
            .iter()
            .filter(|f| f.significant)
            .map(|f| f.feature.as_str())
            .collect();
        raise(
            "input_drift",
            format!(
                "{} of 20 features drifted: {}",
                drifted.len(),
                drifted.join(", ")
            ),
        );
    }
    if prediction_drift.drift {
        raise(
            "prediction_drift",
            format!(
                "P(fraud) KS D = {:.4} (p = {:.3e}); fraud-decision rate {:.1} % served against \
                 {:.1} % on the training data (p = {:.3e})",
                prediction_drift.ks_statistic,
                prediction_drift.ks_p_value,
                100.0 * prediction_drift.current_fraud_rate,
                100.0 * prediction_drift.reference_fraud_rate,
                prediction_drift.decision_rate_p_value
            ),
        );
    }
    if !data_quality.is_clean() {
        raise(
            "data_quality",
            format!(
                "{} of {} logged inputs hold missing or out-of-domain values",
                data_quality.rows_with_issues, data_quality.rows
            ),
        );
    }
    let overall = &performance.overall;
    if let Some(auc) = overall.roc_auc {
        if overall.labelled >= settings.min_labelled && auc < settings.min_roc_auc {
            raise(
                "realized_auc",
                format!(
                    "realized ROC AUC {auc:.4} on {} predictions with outcomes, under {}",
                    overall.labelled, settings.min_roc_auc
                ),
            );
        }
    }
    alerts
}
