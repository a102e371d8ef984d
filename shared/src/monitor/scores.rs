//! Prediction drift: do the served P(fraud) and the fraud-decision rate still look like the
//! champion's on the data it was trained on?

use serde::{Deserialize, Serialize};

use crate::drift::{
    decile_bins, ks_2samp, psi_from_counts, two_proportion_z_test, KsMethod, KsOutcome,
};

/// The served scores against the reference scores.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct PredictionDrift {
    /// Reference scores: the champion's P(fraud) on the rows it was trained on.
    pub reference_n: usize,
    /// Served scores in the window.
    pub current_n: usize,
    /// Two-sample Kolmogorov-Smirnov statistic D on P(fraud) (`scipy.stats.ks_2samp`).
    pub ks_statistic: f64,
    /// Its two-sided p-value.
    pub ks_p_value: f64,
    /// `exact` (both samples up to 10,000) or `asymptotic`, as scipy's `method="auto"` picks.
    pub ks_method: String,
    /// Population stability index of P(fraud) over the reference deciles.
    pub psi: f64,
    /// Share of reference rows at or above the champion's threshold.
    pub reference_fraud_rate: f64,
    /// Share of served predictions decided fraud.
    pub current_fraud_rate: f64,
    /// Pooled two-proportion z of the two fraud-decision rates (reference minus current).
    pub decision_rate_z: f64,
    /// Its two-sided p-value.
    pub decision_rate_p_value: f64,
    /// The KS p-value or the decision-rate p-value is below alpha / 2 (Bonferroni over the two).
    pub drift: bool,
    /// Why a figure is a convention (too few scores on a side).
    pub note: Option<String>,
    /// Both sides' P(fraud) counted in 20 equal bins on [0, 1], for the chart.
    #[serde(default)]
    pub histogram: ScoreHistogram,
}

/// Bins of P(fraud) for the score chart.
pub const SCORE_HISTOGRAM_BINS: usize = 20;

/// P(fraud) counted in [`SCORE_HISTOGRAM_BINS`] bins of equal width on [0, 1]: bin k is
/// [k/20, (k+1)/20), the last one closed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, utoipa::ToSchema)]
pub struct ScoreHistogram {
    /// Reference scores per bin.
    pub reference: Vec<u64>,
    /// Served scores per bin.
    pub current: Vec<u64>,
}

/// The chart bin of a score: None for a non-finite one; values outside [0, 1] (only a
/// hand-edited log holds one) go to the nearest end bin.
pub(super) fn score_bin(p: f64) -> Option<usize> {
    // The cast saturates, so negative scores land in bin 0.
    p.is_finite()
        .then(|| ((p * SCORE_HISTOGRAM_BINS as f64).floor() as usize).min(SCORE_HISTOGRAM_BINS - 1))
}

/// Finite scores per bin.
fn score_counts(scores: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; SCORE_HISTOGRAM_BINS];
    for bin in scores.iter().filter_map(|&p| score_bin(p)) {
        counts[bin] += 1;
    }
    counts
}

/// One side of the score comparison, as counts.
pub(super) struct ScoreSide {
    /// Finite scores.
    pub(super) n: usize,
    /// Predictions (all of them: a non-finite score still carries a decision).
    pub(super) decisions: u64,
    /// Of those, decided fraud.
    pub(super) fraud: u64,
    /// Counts in the reference deciles.
    pub(super) decile_counts: [u64; 10],
    pub(super) histogram: Vec<u64>,
}

/// Compares served scores and decisions with the reference scores at `threshold`.
/// Non-finite scores are left out (a hand-edited log); fewer than 2 on a side is no test.
pub fn prediction_drift(
    reference_scores: &[f64],
    threshold: f64,
    served_scores: &[f64],
    served_fraud: &[bool],
    alpha: f64,
) -> PredictionDrift {
    let mut reference: Vec<f64> = reference_scores
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .collect();
    let current: Vec<f64> = served_scores
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .collect();
    let enough = reference.len() >= 2 && current.len() >= 2;
    let ks = if enough {
        ks_2samp(&reference, &current)
    } else {
        None
    };
    let reference_fraud = reference.iter().filter(|&&p| p >= threshold).count() as u64;
    let bins = decile_bins(&mut reference, &current);
    let reference_side = ScoreSide {
        n: reference.len(),
        decisions: reference.len() as u64,
        fraud: reference_fraud,
        decile_counts: bins.as_ref().map_or([0; 10], |b| b.reference),
        histogram: score_counts(&reference),
    };
    let current_side = ScoreSide {
        n: current.len(),
        decisions: served_fraud.len() as u64,
        fraud: served_fraud.iter().filter(|&&fraud| fraud).count() as u64,
        decile_counts: bins.as_ref().map_or([0; 10], |b| b.current),
        histogram: score_counts(&current),
    };
    compare_scores(&reference_side, &current_side, ks, alpha)
}

/// The prediction-drift figures from both sides' counts and the KS test of their scores.
pub(super) fn compare_scores(
    reference: &ScoreSide,
    current: &ScoreSide,
    ks: Option<KsOutcome>,
    alpha: f64,
) -> PredictionDrift {
    let share = |count: u64, n: u64| {
        if n == 0 {
            0.0
        } else {
            count as f64 / n as f64
        }
    };
    let enough = reference.n >= 2 && current.n >= 2;
    let rates = two_proportion_z_test(
        reference.fraud,
        reference.decisions,
        current.fraud,
        current.decisions,
    );
    let note = (!enough).then(|| {
        format!(
            "{} reference and {} served scores: at least 2 on each side are needed for a test",
            reference.n, current.n
        )
    });
    let (ks_statistic, ks_p_value, ks_method) = match ks.filter(|_| enough) {
        Some(outcome) => (
            outcome.statistic,
            outcome.p_value,
            match outcome.method {
                KsMethod::Exact => "exact",
                KsMethod::Asymptotic => "asymptotic",
            },
        ),
        None => (0.0, 1.0, "none"),
    };
    let decision_rate_p_value = if enough { rates.p_value } else { 1.0 };
    let psi = if enough {
        psi_from_counts(&reference.decile_counts, &current.decile_counts)
    } else {
        0.0
    };
    PredictionDrift {
        reference_n: reference.n,
        current_n: current.n,
        ks_statistic,
        ks_p_value,
        ks_method: ks_method.to_string(),
        psi,
        reference_fraud_rate: share(reference.fraud, reference.decisions),
        current_fraud_rate: share(current.fraud, current.decisions),
        decision_rate_z: if enough { rates.statistic } else { 0.0 },
        decision_rate_p_value,
        drift: ks_p_value < alpha / 2.0 || decision_rate_p_value < alpha / 2.0,
        note,
        histogram: ScoreHistogram {
            reference: reference.histogram.clone(),
            current: current.histogram.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_scores_do_not_drift_and_shifted_scores_do() {
        let reference: Vec<f64> = (0..2_000).map(|i| (i as f64 + 0.5) / 2_000.0).collect();
        let same: Vec<f64> = (0..500).map(|i| (i as f64 + 0.5) / 500.0).collect();
        let fraud: Vec<bool> = same.iter().map(|&p| p >= 0.5).collect();
        let calm = prediction_drift(&reference, 0.5, &same, &fraud, 0.05);
        assert!(!calm.drift, "{calm:?}");
        assert!(calm.ks_statistic < 0.01);
        assert_eq!(calm.ks_method, "exact");
        assert!((calm.reference_fraud_rate - 0.5).abs() < 1e-12);

        let shifted: Vec<f64> = same.iter().map(|p| (p * 0.5 + 0.5).min(1.0)).collect();
        let fraud: Vec<bool> = shifted.iter().map(|&p| p >= 0.5).collect();
        let storm = prediction_drift(&reference, 0.5, &shifted, &fraud, 0.05);
        assert!(storm.drift);
        assert!((storm.ks_statistic - 0.5).abs() < 0.01, "{storm:?}");
        assert_eq!(storm.current_fraud_rate, 1.0);
        assert!(storm.psi > 1.0);
        assert_eq!(storm.histogram.current[..10], [0; 10]);
        assert_eq!(storm.histogram.current.iter().sum::<u64>(), 500);
        assert_eq!(calm.histogram.reference, vec![100; SCORE_HISTOGRAM_BINS]);
    }

    #[test]
    fn score_bins_are_closed_on_the_left_and_the_last_on_both_sides() {
        let counts = score_counts(&[0.0, 0.049, 0.05, 0.999, 1.0, -0.5, 7.0, f64::NAN]);
        assert_eq!(counts[0], 3);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[19], 3);
        assert_eq!(counts.iter().sum::<u64>(), 7);
    }

    #[test]
    fn too_few_scores_is_no_test_with_a_note() {
        let outcome = prediction_drift(&[0.1, 0.2, 0.3], 0.5, &[0.9], &[true], 0.05);
        assert!(!outcome.drift);
        assert_eq!(outcome.ks_method, "none");
        assert_eq!(outcome.ks_p_value, 1.0);
        assert!(outcome.note.is_some());
    }
}
