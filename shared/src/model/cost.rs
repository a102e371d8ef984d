//! The cost of decisions: a cost matrix, the expected cost per applicant at a threshold, and
//! the threshold that minimises it on a set of probabilities.
//!
//! A decision is fraud when P(fraud) >= threshold. A missed fraud (false negative) costs
//! `false_negative`, a false alarm (false positive) `false_positive`; correct decisions cost
//! nothing. The German credit data's own matrix is 5:1 (scikit-learn's
//! `TunedThresholdClassifierCV` example uses it), hence the defaults.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// What a wrong decision costs, in any unit (only the ratio moves the threshold).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostMatrix {
    /// Cost of calling a fraud "not fraud" (a missed fraud). Finite and > 0.
    pub false_negative: f64,
    /// Cost of calling a genuine applicant "fraud" (a false alarm). Finite and > 0.
    pub false_positive: f64,
}

impl Default for CostMatrix {
    fn default() -> Self {
        CostMatrix {
            false_negative: 5.0,
            false_positive: 1.0,
        }
    }
}

impl CostMatrix {
    /// Checks both costs, naming the first one out of range.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, value) in [
            ("false_negative", self.false_negative),
            ("false_positive", self.false_positive),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ModelError::InvalidConfig(format!(
                    "the cost of a {} must be finite and > 0, got {value}",
                    name.replace('_', " ")
                )));
            }
        }
        Ok(())
    }

    /// Mean cost per applicant of the decisions `p >= threshold` (labels: true = fraud).
    /// 0 for no applicants.
    pub fn expected_cost(&self, is_fraud: &[bool], probabilities: &[f64], threshold: f64) -> f64 {
        let mut total = 0.0;
        for (&fraud, &p) in is_fraud.iter().zip(probabilities) {
            let called = p >= threshold;
            if fraud && !called {
                total += self.false_negative;
            } else if !fraud && called {
                total += self.false_positive;
            }
        }
        if is_fraud.is_empty() {
            0.0
        } else {
            total / is_fraud.len() as f64
        }
    }
}

/// The threshold with the lowest expected cost on these probabilities (labels: true = fraud).
///
/// The cost is a step function of the threshold: it changes only where the threshold passes
/// one of the distinct probabilities, so every threshold strictly between two neighbouring
/// distinct probabilities decides alike. The candidates are therefore the MIDPOINTS between
/// neighbouring distinct probabilities, plus one below the lowest (half of it) and one above
/// the highest (halfway to 1): a midpoint leaves the most room on both sides for new
/// applicants scored near the boundary. Among candidates of equal cost (within 1e-12) the
/// one closest to 0.5 wins, so that without a reason to move the threshold it stays at the
/// usual place. Candidates outside (0, 1) are skipped.
pub fn cost_minimising_threshold(
    is_fraud: &[bool],
    probabilities: &[f64],
    costs: &CostMatrix,
) -> Result<f64, ModelError> {
    costs.validate()?;
    if is_fraud.len() != probabilities.len() {
        return Err(ModelError::InvalidConfig(format!(
            "{} labels but {} probabilities",
            is_fraud.len(),
            probabilities.len()
        )));
    }
    if probabilities.is_empty() {
        return Err(ModelError::Empty("choose a threshold for"));
    }
    if let Some(bad) = probabilities.iter().find(|p| !p.is_finite()) {
        return Err(ModelError::NonFinite(format!(
            "probability {bad} when choosing a threshold"
        )));
    }
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));

    // Sweep from "everything is fraud" upwards: passing a group of equal probabilities turns
    // its frauds into misses and its genuine applicants into correct approvals.
    let negatives = is_fraud.iter().filter(|f| !**f).count();
    let mut missed = 0usize;
    let mut false_alarms = negatives;
    let cost = |missed: usize, false_alarms: usize| {
        costs.false_negative * missed as f64 + costs.false_positive * false_alarms as f64
    };
    let lowest = probabilities[order[0]];
    let mut best: Option<(f64, f64)> = None; // (total cost, threshold)
    let mut consider = |threshold: f64, total: f64| {
        if !(threshold > 0.0 && threshold < 1.0) {
            return;
        }
        best = match best {
            None => Some((total, threshold)),
            Some((best_total, best_threshold)) => {
                let scale = best_total.abs().max(total.abs()).max(1.0);
                if total < best_total - 1e-12 * scale
                    || (total <= best_total + 1e-12 * scale
                        && (threshold - 0.5).abs() < (best_threshold - 0.5).abs())
                {
                    Some((total, threshold))
                } else {
                    Some((best_total, best_threshold))
                }
            }
        };
    };
    consider(lowest / 2.0, cost(missed, false_alarms));
    let mut start = 0;
    while start < order.len() {
        let value = probabilities[order[start]];
        let mut end = start;
        while end < order.len() && probabilities[order[end]] == value {
            if is_fraud[order[end]] {
                missed += 1;
            } else {
                false_alarms -= 1;
            }
            end += 1;
        }
        let next = order.get(end).map_or(1.0, |&i| probabilities[i]);
        consider((value + next) / 2.0, cost(missed, false_alarms));
        start = end;
    }
    best.map(|(_, threshold)| threshold).ok_or_else(|| {
        ModelError::InvalidConfig(
            "every probability is 0 or 1, so no threshold strictly between 0 and 1 separates \
             them"
                .to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_german_credit_matrix() {
        let c = CostMatrix::default();
        assert_eq!((c.false_negative, c.false_positive), (5.0, 1.0));
        c.validate().unwrap();
    }

    #[test]
    fn invalid_costs_are_named() {
        for (bad, word) in [
            (
                CostMatrix {
                    false_negative: 0.0,
                    false_positive: 1.0,
                },
                "false negative",
            ),
            (
                CostMatrix {
                    false_negative: 1.0,
                    false_positive: f64::NAN,
                },
                "false positive",
            ),
        ] {
            let message = bad.validate().unwrap_err().to_string();
            assert!(message.contains(word), "{message}");
        }
    }

    #[test]
    fn expected_cost_by_hand() {
        let c = CostMatrix::default();
        // fraud at 0.3 missed at 0.5 (5), genuine at 0.6 flagged (1), two right: 6 / 4.
        let labels = [true, false, true, false];
        let p = [0.3, 0.6, 0.9, 0.1];
        assert_eq!(c.expected_cost(&labels, &p, 0.5), 1.5);
        // At 0.2 the miss is caught: only the false alarm remains.
        assert_eq!(c.expected_cost(&labels, &p, 0.2), 0.25);
        assert_eq!(c.expected_cost(&[], &[], 0.5), 0.0);
    }

    #[test]
    fn the_threshold_is_a_midpoint_and_minimises_the_cost_on_a_grid() {
        let labels = [true, false, true, false, false, true, false, false];
        let p = [0.3, 0.6, 0.9, 0.1, 0.25, 0.2, 0.4, 0.05];
        let c = CostMatrix::default();
        let t = cost_minimising_threshold(&labels, &p, &c).unwrap();
        let at_t = c.expected_cost(&labels, &p, t);
        for step in 1..1000 {
            let grid = step as f64 / 1000.0;
            assert!(c.expected_cost(&labels, &p, grid) >= at_t - 1e-12, "{grid}");
        }
        // The cheapest boundary lies between 0.1 and 0.2: the midpoint is chosen.
        assert!((t - 0.15).abs() < 1e-12, "{t}");
    }

    #[test]
    fn ties_go_to_the_threshold_closest_to_one_half() {
        // Perfectly separated: every threshold between 0.2 and 0.8 costs 0; 0.5 is a midpoint.
        let labels = [false, true];
        let p = [0.2, 0.8];
        let t = cost_minimising_threshold(&labels, &p, &CostMatrix::default()).unwrap();
        assert_eq!(t, 0.5);
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        let c = CostMatrix::default();
        assert!(cost_minimising_threshold(&[], &[], &c).is_err());
        assert!(cost_minimising_threshold(&[true], &[f64::NAN], &c).is_err());
        assert!(cost_minimising_threshold(&[true], &[0.1, 0.2], &c).is_err());
    }
}
