//! Evaluation: ROC AUC, threshold metrics of the fraud class, probability scores, calibration
//! (expected calibration error and the reliability table, see [`super::calibration`]), and a
//! text report in the layout of scikit-learn's `classification_report`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::calibration::{expected_calibration_error, reliability_table, ReliabilityBin};
use super::cost::CostMatrix;
use super::{Model, ModelError, DEFAULT_THRESHOLD};
use crate::schema::LabeledRecord;

/// Counts at the model's threshold; positive = fraud (creditability 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfusionMatrix {
    /// Fraud predicted as fraud.
    pub true_positive: usize,
    /// Not fraud predicted as fraud.
    pub false_positive: usize,
    /// Not fraud predicted as not fraud.
    pub true_negative: usize,
    /// Fraud predicted as not fraud.
    pub false_negative: usize,
}

impl ConfusionMatrix {
    /// Number of records counted.
    pub fn total(&self) -> usize {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }
}

/// How well a model does on a set of labelled records.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct Metrics {
    /// Area under the ROC curve of P(fraud) against the fraud label (ties count half).
    pub roc_auc: f64,
    /// Share of records whose decision matches the label.
    pub accuracy: f64,
    /// Of the records called fraud, the share that are fraud (0 when none is called fraud).
    pub precision: f64,
    /// Of the fraud records, the share called fraud.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Mean squared difference between P(fraud) and the 0/1 fraud label.
    pub brier: f64,
    /// Mean negative log-likelihood of the labels, probabilities clipped to [ε, 1 − ε].
    pub log_loss: f64,
    /// The decision threshold the counts use.
    pub threshold: f64,
    /// Number of records evaluated.
    pub support: usize,
    /// Counts at the threshold.
    pub confusion: ConfusionMatrix,
    /// Mean cost per applicant of the decisions at the threshold, under the cost matrix the
    /// evaluation used (absent in metrics written before costs were reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_cost: Option<f64>,
    /// The same at the threshold 0.5, for comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_cost_at_0_5: Option<f64>,
    /// Expected calibration error over the 10 bins of `reliability`: Σ count / n ·
    /// |observed rate − mean P(fraud)| (0 in metrics written before it was reported).
    #[serde(default)]
    pub expected_calibration_error: f64,
    /// The reliability table: 10 equal-width bins of P(fraud) on [0, 1], each with its count,
    /// mean P(fraud) and observed fraud rate (empty in metrics written before it was
    /// reported).
    #[serde(default)]
    pub reliability: Vec<ReliabilityBin>,
}

/// Scores a model on labelled records, with the expected cost under `costs` at the model's
/// threshold and at 0.5. Fails on no records, on one class only (ROC AUC is undefined), and
/// never returns NaN.
pub fn evaluate(
    model: &Model,
    records: &[LabeledRecord],
    costs: &CostMatrix,
) -> Result<Metrics, ModelError> {
    let is_fraud: Vec<bool> = records.iter().map(LabeledRecord::is_fraud).collect();
    let scores: Vec<f64> = records
        .iter()
        .map(|r| model.probability_of_fraud(&r.applicant))
        .collect();
    let mut metrics = metrics_from_scores(&is_fraud, &scores, model.threshold())?;
    costs.validate()?;
    metrics.expected_cost = Some(costs.expected_cost(&is_fraud, &scores, model.threshold()));
    metrics.expected_cost_at_0_5 = Some(costs.expected_cost(&is_fraud, &scores, DEFAULT_THRESHOLD));
    Ok(metrics)
}

/// Metrics from labels (true = fraud) and probabilities of fraud.
pub fn metrics_from_scores(
    is_fraud: &[bool],
    probabilities: &[f64],
    threshold: f64,
) -> Result<Metrics, ModelError> {
    let roc_auc = roc_auc(is_fraud, probabilities)?;
    let mut confusion = ConfusionMatrix::default();
    let mut brier = 0.0;
    let mut log_loss = 0.0;
    // scikit-learn (>= 1.5) clips at the float type's machine epsilon.
    let eps = f64::EPSILON;
    for (&fraud, &p) in is_fraud.iter().zip(probabilities) {
        let called = p >= threshold;
        match (fraud, called) {
            (true, true) => confusion.true_positive += 1,
            (false, true) => confusion.false_positive += 1,
            (false, false) => confusion.true_negative += 1,
            (true, false) => confusion.false_negative += 1,
        }
        let y = if fraud { 1.0 } else { 0.0 };
        brier += (p - y).powi(2);
        let clipped = p.clamp(eps, 1.0 - eps);
        log_loss -= if fraud {
            clipped.ln()
        } else {
            (1.0 - clipped).ln()
        };
    }
    let n = is_fraud.len();
    let reliability = reliability_table(is_fraud, probabilities);
    let c = &confusion;
    let precision = ratio(c.true_positive, c.true_positive + c.false_positive);
    let recall = ratio(c.true_positive, c.true_positive + c.false_negative);
    Ok(Metrics {
        roc_auc,
        accuracy: ratio(c.true_positive + c.true_negative, n),
        precision,
        recall,
        f1: harmonic(precision, recall),
        brier: brier / n as f64,
        log_loss: log_loss / n as f64,
        threshold,
        support: n,
        confusion,
        expected_cost: None,
        expected_cost_at_0_5: None,
        expected_calibration_error: expected_calibration_error(&reliability),
        reliability,
    })
}

/// ROC AUC of `scores` for the positive labels (true), computed as the Mann-Whitney statistic
/// with average ranks for ties. This equals the trapezoidal area scikit-learn's
/// `roc_auc_score` reports, ties included.
pub fn roc_auc(is_positive: &[bool], scores: &[f64]) -> Result<f64, ModelError> {
    if is_positive.len() != scores.len() {
        return Err(ModelError::InvalidConfig(format!(
            "{} labels but {} scores",
            is_positive.len(),
            scores.len()
        )));
    }
    if scores.is_empty() {
        return Err(ModelError::Empty("compute ROC AUC for"));
    }
    if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
        return Err(ModelError::NonFinite(format!("score {bad} in ROC AUC")));
    }
    let positives = is_positive.iter().filter(|p| **p).count();
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(ModelError::OneClass {
            context: "ROC AUC",
            count: scores.len(),
            only: if positives == 0 { "not_fraud" } else { "fraud" },
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the 1-based average ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end]
            .iter()
            .filter(|&&i| is_positive[i])
            .count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let p = positives as f64;
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn harmonic(a: f64, b: f64) -> f64 {
    if a + b == 0.0 {
        0.0
    } else {
        2.0 * a * b / (a + b)
    }
}

impl Metrics {
    /// The per-class table of scikit-learn's `classification_report` (two decimals), for the
    /// classes in creditability order: `fraud` (0) and `not_fraud` (1).
    pub fn classification_report(&self) -> String {
        let c = &self.confusion;
        let fraud_support = c.true_positive + c.false_negative;
        let not_fraud_support = c.true_negative + c.false_positive;
        let fraud_precision = ratio(c.true_positive, c.true_positive + c.false_positive);
        let fraud_recall = ratio(c.true_positive, fraud_support);
        let not_precision = ratio(c.true_negative, c.true_negative + c.false_negative);
        let not_recall = ratio(c.true_negative, not_fraud_support);
        let rows = [
            (
                "fraud",
                fraud_precision,
                fraud_recall,
                harmonic(fraud_precision, fraud_recall),
                fraud_support,
            ),
            (
                "not_fraud",
                not_precision,
                not_recall,
                harmonic(not_precision, not_recall),
                not_fraud_support,
            ),
        ];
        let total = c.total();
        let accuracy = ratio(c.true_positive + c.true_negative, total);
        let mean = |pick: fn(&(&str, f64, f64, f64, usize)) -> f64| {
            rows.iter().map(pick).sum::<f64>() / rows.len() as f64
        };
        let weighted = |pick: fn(&(&str, f64, f64, f64, usize)) -> f64| {
            if total == 0 {
                0.0
            } else {
                rows.iter().map(|r| pick(r) * r.4 as f64).sum::<f64>() / total as f64
            }
        };
        // Same layout as scikit-learn: names right-aligned to the widest of the row labels
        // ("weighted avg"), then 9-wide columns separated by one space.
        let width = "weighted avg".len();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>width$}  {:>9} {:>9} {:>9} {:>9}\n",
            "", "precision", "recall", "f1-score", "support"
        );
        let row = |out: &mut String, name: &str, p: f64, r: f64, f: f64, s: usize| {
            let _ = writeln!(out, "{name:>width$}  {p:>9.2} {r:>9.2} {f:>9.2} {s:>9}");
        };
        for (name, p, r, f, s) in rows {
            row(&mut out, name, p, r, f, s);
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:>width$}  {:>9} {:>9} {:>9.2} {:>9}",
            "accuracy", "", "", accuracy, total
        );
        row(
            &mut out,
            "macro avg",
            mean(|r| r.1),
            mean(|r| r.2),
            mean(|r| r.3),
            total,
        );
        row(
            &mut out,
            "weighted avg",
            weighted(|r| r.1),
            weighted(|r| r.2),
            weighted(|r| r.3),
            total,
        );
        out
    }

    /// The calibration part of the report: the expected calibration error and the reliability
    /// table, one line per bin (an empty bin shows `-`). Empty for metrics stored before
    /// calibration was reported.
    pub fn calibration_report(&self) -> String {
        if self.reliability.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "expected calibration error ({} bins): {:.4}\n",
            self.reliability.len(),
            self.expected_calibration_error
        );
        let _ = writeln!(
            out,
            "{:>12}  {:>7} {:>14} {:>11}",
            "P(fraud)", "count", "mean P(fraud)", "fraud rate"
        );
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        for (i, bin) in self.reliability.iter().enumerate() {
            let open = if i == 0 { '[' } else { '(' };
            let range = format!("{open}{:.1}, {:.1}]", bin.lower, bin.upper);
            let _ = writeln!(
                out,
                "{range:>12}  {:>7} {:>14} {:>11}",
                bin.count,
                cell(bin.mean_predicted),
                cell(bin.observed_rate)
            );
        }
        out
    }

    /// The whole text report: [`Metrics::classification_report`] (scikit-learn's layout),
    /// then [`Metrics::calibration_report`].
    pub fn report(&self) -> String {
        let calibration = self.calibration_report();
        if calibration.is_empty() {
            self.classification_report()
        } else {
            format!("{}\n{calibration}", self.classification_report())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_hand_cases() {
        // Perfect and reversed rankings.
        assert_eq!(
            roc_auc(&[false, false, true, true], &[0.1, 0.2, 0.8, 0.9]).unwrap(),
            1.0
        );
        assert_eq!(
            roc_auc(&[true, true, false, false], &[0.1, 0.2, 0.8, 0.9]).unwrap(),
            0.0
        );
        // scikit-learn's own docstring example: roc_auc_score([0,0,1,1], [.1,.4,.35,.8]) = 0.75.
        assert!(
            (roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap() - 0.75).abs()
                < 1e-15
        );
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // All scores equal: every positive-negative pair is a tie, AUC 0.5.
        assert_eq!(
            roc_auc(&[true, false, true, false, false], &[0.3; 5]).unwrap(),
            0.5
        );
        // Pairs (pos, neg): pos 0.5 vs neg {0.5 tie, 0.2 win}, pos 0.9 vs both win:
        // (0.5 + 1 + 1 + 1) / 4 = 0.875.
        assert_eq!(
            roc_auc(&[true, false, true, false], &[0.5, 0.5, 0.9, 0.2]).unwrap(),
            0.875
        );
    }

    #[test]
    fn auc_rejects_bad_input() {
        assert!(matches!(roc_auc(&[], &[]), Err(ModelError::Empty(_))));
        assert!(matches!(
            roc_auc(&[true, true], &[0.1, 0.2]),
            Err(ModelError::OneClass { .. })
        ));
        assert!(matches!(
            roc_auc(&[true, false], &[0.1, f64::NAN]),
            Err(ModelError::NonFinite(_))
        ));
        assert!(roc_auc(&[true], &[0.1, 0.2]).is_err());
    }

    #[test]
    fn threshold_metrics_by_hand() {
        // fraud labels and P(fraud); threshold 0.5.
        let labels = [true, true, true, false, false, false, false];
        let probs = [0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.5];
        let m = metrics_from_scores(&labels, &probs, 0.5).unwrap();
        // Called fraud (p >= 0.5): 0.9 T, 0.6 T, 0.7 F, 0.5 F -> TP 2, FP 2; FN 1 (0.2); TN 2.
        assert_eq!(
            m.confusion,
            ConfusionMatrix {
                true_positive: 2,
                false_positive: 2,
                true_negative: 2,
                false_negative: 1
            }
        );
        assert_eq!(m.support, 7);
        assert!((m.accuracy - 4.0 / 7.0).abs() < 1e-15);
        assert!((m.precision - 0.5).abs() < 1e-15);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-15);
        assert!((m.f1 - 4.0 / 7.0).abs() < 1e-15);
        let brier = (0.01 + 0.16 + 0.64 + 0.49 + 0.01 + 0.09 + 0.25) / 7.0;
        assert!((m.brier - brier).abs() < 1e-15);
        let ll = -(0.9f64.ln()
            + 0.6f64.ln()
            + 0.2f64.ln()
            + 0.3f64.ln()
            + 0.9f64.ln()
            + 0.7f64.ln()
            + 0.5f64.ln())
            / 7.0;
        assert!((m.log_loss - ll).abs() < 1e-12);
    }

    #[test]
    fn no_fraud_called_gives_zero_precision_not_nan() {
        let m = metrics_from_scores(&[true, false, false], &[0.1, 0.2, 0.3], 0.5).unwrap();
        assert_eq!(m.precision, 0.0);
        assert_eq!(m.recall, 0.0);
        assert_eq!(m.f1, 0.0);
        // Certain and wrong: log loss is large but finite thanks to clipping.
        let m = metrics_from_scores(&[true, false], &[0.0, 1.0], 0.5).unwrap();
        assert!(m.log_loss.is_finite() && m.log_loss > 30.0);
        assert!(m.classification_report().lines().count() >= 7);
    }

    #[test]
    fn calibration_figures_match_sklearn() {
        // shared/tests/fixtures/calibration.json, from scripts/sklearn_calibration.py.
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/calibration.json")).unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        for set in fixture["sets"].as_array().unwrap() {
            let labels: Vec<bool> = set["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64() == Some(1))
                .collect();
            let m = metrics_from_scores(&labels, &floats(&set["probabilities"]), 0.5).unwrap();
            let want = set["ece"].as_f64().unwrap();
            assert!(
                (m.expected_calibration_error - want).abs() < 1e-12,
                "{}: {} vs {want}",
                set["name"],
                m.expected_calibration_error
            );
            assert_eq!(m.reliability.len(), 10);
            let filled: Vec<&ReliabilityBin> =
                m.reliability.iter().filter(|b| b.count > 0).collect();
            let prob_true = floats(&set["curve"]["prob_true"]);
            let prob_pred = floats(&set["curve"]["prob_pred"]);
            assert_eq!(filled.len(), prob_true.len());
            for ((bin, t), p) in filled.iter().zip(prob_true).zip(prob_pred) {
                assert!((bin.observed_rate.unwrap() - t).abs() < 1e-12);
                assert!((bin.mean_predicted.unwrap() - p).abs() < 1e-12);
            }
            let n: usize = m.reliability.iter().map(|b| b.count).sum();
            assert_eq!(n, m.support);
        }
    }

    #[test]
    fn the_report_adds_ece_and_the_reliability_table() {
        let m =
            metrics_from_scores(&[true, false, true, false], &[0.0, 0.1, 0.2, 1.0], 0.5).unwrap();
        let report = m.report();
        assert!(report.starts_with(&m.classification_report()));
        assert!(
            report.contains("expected calibration error (10 bins): 0.6750"),
            "{report}"
        );
        let first = report.lines().find(|l| l.contains("[0.0, 0.1]")).unwrap();
        assert_eq!(
            first.split_whitespace().collect::<Vec<_>>(),
            ["[0.0,", "0.1]", "2", "0.0500", "0.5000"]
        );
        let empty = report.lines().find(|l| l.contains("(0.2, 0.3]")).unwrap();
        assert!(empty.ends_with(" -"), "{empty}");
        // Metrics stored before calibration was reported: the classification report alone.
        let old = Metrics {
            reliability: Vec::new(),
            ..m
        };
        assert_eq!(old.report(), old.classification_report());
    }

    #[test]
    fn report_rows_follow_the_confusion_counts() {
        let m = metrics_from_scores(
            &[true, true, true, false, false, false, false],
            &[0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.5],
            0.5,
        )
        .unwrap();
        let report = m.classification_report();
        let fraud = report.lines().find(|l| l.trim_start().starts_with("fraud"));
        let fields: Vec<&str> = fraud.unwrap().split_whitespace().collect();
        assert_eq!(fields, ["fraud", "0.50", "0.67", "0.57", "3"]);
        let not: Vec<&str> = report
            .lines()
            .find(|l| l.trim_start().starts_with("not_fraud"))
            .unwrap()
            .split_whitespace()
            .collect();
        // TN 2 of called-not 3, TN 2 of 4 not-fraud.
        assert_eq!(not, ["not_fraud", "0.67", "0.50", "0.57", "4"]);
        assert!(report.contains("accuracy"));
    }
}
