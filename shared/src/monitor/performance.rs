//! Realized performance: how the decisions actually served did, once outcomes came back;
//! overall, per model version, per ISO week and per segment.

use std::collections::BTreeMap;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::model::roc_auc;

/// One served prediction as performance needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoredOutcome {
    pub probability_of_fraud: f64,
    /// The decision served (at the threshold the model applied then).
    pub decided_fraud: bool,
    /// The outcome reported, if any (true = fraud).
    pub outcome: Option<bool>,
}

/// Performance figures over a set of served predictions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct PerformanceFigures {
    /// Predictions served.
    pub served: usize,
    /// Of those, with an outcome.
    pub labelled: usize,
    /// `labelled / served` (0 when nothing was served).
    pub label_coverage: f64,
    /// Labelled predictions whose outcome was fraud.
    pub frauds: usize,
    /// ROC AUC of P(fraud) against the outcomes; null until both outcomes occur.
    pub roc_auc: Option<f64>,
    /// Of the labelled predictions decided fraud, the share that were fraud; null when none was.
    pub precision: Option<f64>,
    /// Of the labelled frauds, the share decided fraud; null when there was no fraud.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall; null when either is.
    pub f1: Option<f64>,
    /// Mean squared difference between P(fraud) and the outcome; null with no outcome.
    pub brier: Option<f64>,
}

impl PerformanceFigures {
    /// The figures of `rows`.
    pub fn of(rows: &[ScoredOutcome]) -> Self {
        let mut tallies = Tallies::default();
        for r in rows {
            tallies.add(r.probability_of_fraud, r.decided_fraud, r.outcome);
        }
        let (labels, scores): (Vec<bool>, Vec<f64>) = rows
            .iter()
            .filter_map(|r| r.outcome.map(|fraud| (fraud, r.probability_of_fraud)))
            .unzip();
        let both_classes = tallies.frauds > 0 && tallies.frauds < tallies.labelled;
        let roc_auc = both_classes
            .then(|| roc_auc(&labels, &scores).ok())
            .flatten();
        tallies.figures(roc_auc)
    }
}

/// The counts and sums behind [`PerformanceFigures`], added one served prediction at a time.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Tallies {
    pub(super) served: usize,
    pub(super) labelled: usize,
    pub(super) frauds: usize,
    true_positive: usize,
    called: usize,
    squared_errors: f64,
}

impl Tallies {
    pub(super) fn add(
        &mut self,
        probability_of_fraud: f64,
        decided_fraud: bool,
        outcome: Option<bool>,
    ) {
        self.served += 1;
        let Some(fraud) = outcome else {
            return;
        };
        self.labelled += 1;
        self.frauds += usize::from(fraud);
        self.true_positive += usize::from(decided_fraud && fraud);
        self.called += usize::from(decided_fraud);
        self.squared_errors += (probability_of_fraud - if fraud { 1.0 } else { 0.0 }).powi(2);
    }

    /// The figures, with the ROC AUC computed elsewhere (it needs the scores' order).
    pub(super) fn figures(&self, roc_auc: Option<f64>) -> PerformanceFigures {
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        let precision = ratio(self.true_positive, self.called);
        let recall = ratio(self.true_positive, self.frauds);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        PerformanceFigures {
            served: self.served,
            labelled: self.labelled,
            label_coverage: ratio(self.labelled, self.served).unwrap_or(0.0),
            frauds: self.frauds,
            roc_auc,
            precision,
            recall,
            f1,
            brier: (self.labelled > 0).then(|| self.squared_errors / self.labelled as f64),
        }
    }
}

/// Realized performance overall, per model version and per ISO week.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct Performance {
    /// Over the whole window.
    #[serde(flatten)]
    pub overall: PerformanceFigures,
    /// Per model version that served in the window, ascending.
    pub by_version: Vec<VersionPerformance>,
    /// Per ISO week of the prediction (e.g. `2026-W49`), ascending.
    pub by_week: Vec<WeekPerformance>,
    /// Calibration over the whole window: the predictions with outcomes in 10 bins of P(fraud).
    #[serde(default)]
    pub reliability: Vec<ReliabilityBin>,
}

/// Bins of the reliability diagram.
pub const RELIABILITY_BINS: usize = 10;

/// One bin of the reliability diagram: predictions with outcomes whose P(fraud) is in
/// [lower, upper) (the last bin closed).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    /// Predictions with outcomes in the bin.
    pub count: usize,
    /// Their mean P(fraud); null for an empty bin.
    pub mean_predicted: Option<f64>,
    /// The share of them whose outcome was fraud; null for an empty bin.
    pub observed_fraud_share: Option<f64>,
}

/// The reliability diagram of the labelled rows among `rows` (non-finite scores left out).
pub fn reliability(rows: &[ScoredOutcome]) -> Vec<ReliabilityBin> {
    let mut sums = ReliabilitySums::default();
    for row in rows {
        if let Some(fraud) = row.outcome {
            sums.add(row.probability_of_fraud, fraud);
        }
    }
    sums.bins()
}

/// Per reliability bin: predictions with outcomes, the sum of their P(fraud), their frauds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReliabilitySums([(usize, f64, usize); RELIABILITY_BINS]);

impl ReliabilitySums {
    /// Adds a prediction with an outcome (a non-finite score is left out).
    pub fn add(&mut self, p: f64, fraud: bool) {
        if !p.is_finite() {
            return;
        }
        // The cast saturates: scores below 0 land in the first bin.
        let bin = ((p * RELIABILITY_BINS as f64).floor() as usize).min(RELIABILITY_BINS - 1);
        let slot = &mut self.0[bin];
        slot.0 += 1;
        slot.1 += p;
        slot.2 += usize::from(fraud);
    }

    /// The diagram.
    pub fn bins(&self) -> Vec<ReliabilityBin> {
        self.0
            .iter()
            .enumerate()
            .map(|(k, &(count, sum, frauds))| ReliabilityBin {
                lower: k as f64 / RELIABILITY_BINS as f64,
                upper: (k + 1) as f64 / RELIABILITY_BINS as f64,
                count,
                mean_predicted: (count > 0).then(|| sum / count as f64),
                observed_fraud_share: (count > 0).then(|| frauds as f64 / count as f64),
            })
            .collect()
    }
}

/// One model version's figures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct VersionPerformance {
    pub model_version: u32,
    #[serde(flatten)]
    pub figures: PerformanceFigures,
}

/// One ISO week's figures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct WeekPerformance {
    pub week: String,
    #[serde(flatten)]
    pub figures: PerformanceFigures,
}

/// One segment's figures, with the segment's row count in `served`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct SegmentPerformance {
    /// `age_band` or `sex_marital_status`.
    pub segment: String,
    /// `under 25`, `25-39`, `40-59`, `60 and over`, or the code.
    pub value: String,
    #[serde(flatten)]
    pub figures: PerformanceFigures,
}

/// One served prediction with what performance is grouped by.
#[derive(Clone, Copy, Debug)]
pub struct GroupedOutcome {
    pub scored: ScoredOutcome,
    pub model_version: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `age_years`; NaN when unusable.
    pub age_years: f64,
    /// `sex_marital_status` code; NaN when unusable.
    pub sex_marital_status: f64,
}

/// The age band of an age in years.
pub fn age_band(age: f64) -> Option<&'static str> {
    match age {
        a if !a.is_finite() => None,
        a if a < 25.0 => Some("under 25"),
        a if a < 40.0 => Some("25-39"),
        a if a < 60.0 => Some("40-59"),
        _ => Some("60 and over"),
    }
}

/// Figures per key, keys ascending.
fn grouped<K: Ord>(
    rows: &[GroupedOutcome],
    key: impl Fn(&GroupedOutcome) -> Option<K>,
) -> Vec<(K, PerformanceFigures)> {
    let mut groups: BTreeMap<K, Vec<ScoredOutcome>> = BTreeMap::new();
    for row in rows {
        if let Some(k) = key(row) {
            groups.entry(k).or_default().push(row.scored);
        }
    }
    groups
        .into_iter()
        .map(|(k, rows)| (k, PerformanceFigures::of(&rows)))
        .collect()
}

/// Realized performance of `rows`, overall, per version and per ISO week.
pub fn performance(rows: &[GroupedOutcome]) -> Performance {
    let all: Vec<ScoredOutcome> = rows.iter().map(|r| r.scored).collect();
    Performance {
        overall: PerformanceFigures::of(&all),
        by_version: grouped(rows, |r| Some(r.model_version))
            .into_iter()
            .map(|(model_version, figures)| VersionPerformance {
                model_version,
                figures,
            })
            .collect(),
        by_week: grouped(rows, |r| {
            let week = r.created_at.iso_week();
            Some(format!("{}-W{:02}", week.year(), week.week()))
        })
        .into_iter()
        .map(|(week, figures)| WeekPerformance { week, figures })
        .collect(),
        reliability: reliability(&all),
    }
}

/// The position of an age band among the bands: they sort by their lower bound, not by name.
pub(super) fn age_band_order(band: &str) -> u8 {
    match band {
        "under 25" => 0,
        "25-39" => 1,
        "40-59" => 2,
        _ => 3,
    }
}

/// Performance per age band (in band order) and per `sex_marital_status` code.
pub fn segments(rows: &[GroupedOutcome]) -> Vec<SegmentPerformance> {
    let bands = grouped(rows, |r| {
        age_band(r.age_years).map(|band| (age_band_order(band), band))
    })
    .into_iter()
    .map(|((_, band), figures)| (band, figures))
    .collect::<Vec<_>>();
    let codes = grouped(rows, |r| {
        r.sex_marital_status
            .is_finite()
            .then_some(r.sex_marital_status as i64)
    });
    segment_list(bands, codes)
}

/// The segments' entries: the age bands in band order, then the codes ascending.
pub(super) fn segment_list(
    bands: Vec<(&'static str, PerformanceFigures)>,
    codes: Vec<(i64, PerformanceFigures)>,
) -> Vec<SegmentPerformance> {
    let bands = bands.into_iter().map(|(band, figures)| SegmentPerformance {
        segment: "age_band".to_string(),
        value: band.to_string(),
        figures,
    });
    let codes = codes.into_iter().map(|(code, figures)| SegmentPerformance {
        segment: "sex_marital_status".to_string(),
        value: code.to_string(),
        figures,
    });
    bands.chain(codes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: f64, outcome: Option<bool>) -> ScoredOutcome {
        ScoredOutcome {
            probability_of_fraud: p,
            decided_fraud: p >= 0.5,
            outcome,
        }
    }

    #[test]
    fn figures_count_only_labelled_rows() {
        let rows = [
            row(0.9, Some(true)),
            row(0.8, Some(false)),
            row(0.3, Some(true)),
            row(0.1, Some(false)),
            row(0.7, None),
        ];
        let f = PerformanceFigures::of(&rows);
        assert_eq!((f.served, f.labelled, f.frauds), (5, 4, 2));
        assert_eq!(f.label_coverage, 0.8);
        assert_eq!(f.precision, Some(0.5));
        assert_eq!(f.recall, Some(0.5));
        assert_eq!(f.f1, Some(0.5));
        // Pairs (fraud, not): (0.9,0.8) (0.9,0.1) (0.3,0.1) right, (0.3,0.8) wrong.
        assert_eq!(f.roc_auc, Some(0.75));
        let brier = (0.01 + 0.64 + 0.49 + 0.01) / 4.0;
        assert!((f.brier.unwrap() - brier).abs() < 1e-15);
    }

    #[test]
    fn no_outcome_or_one_class_leaves_figures_null() {
        let none = PerformanceFigures::of(&[row(0.9, None)]);
        assert_eq!(
            (none.roc_auc, none.brier, none.precision),
            (None, None, None)
        );
        let one_class = PerformanceFigures::of(&[row(0.9, Some(true)), row(0.2, Some(true))]);
        assert_eq!(one_class.roc_auc, None);
        assert_eq!(one_class.recall, Some(0.5));
        assert_eq!(PerformanceFigures::of(&[]).label_coverage, 0.0);
    }

    #[test]
    fn reliability_bins_average_labelled_rows_only() {
        let rows = [
            row(0.05, Some(false)),
            row(0.15, Some(true)),
            row(0.95, Some(true)),
            row(1.0, Some(false)),
            row(0.5, None),
        ];
        let bins = reliability(&rows);
        assert_eq!(bins.len(), RELIABILITY_BINS);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 4);
        assert_eq!(bins[0].observed_fraud_share, Some(0.0));
        assert_eq!(bins[1].mean_predicted, Some(0.15));
        assert_eq!(bins[5].count, 0);
        assert_eq!(bins[5].mean_predicted, None);
        assert_eq!(bins[9].count, 2);
        assert_eq!(bins[9].observed_fraud_share, Some(0.5));
        assert!((bins[9].mean_predicted.unwrap() - 0.975).abs() < 1e-15);
    }

    #[test]
    fn age_bands_have_their_documented_edges() {
        assert_eq!(age_band(24.0), Some("under 25"));
        assert_eq!(age_band(25.0), Some("25-39"));
        assert_eq!(age_band(59.0), Some("40-59"));
        assert_eq!(age_band(60.0), Some("60 and over"));
        assert_eq!(age_band(f64::NAN), None);
    }
}
