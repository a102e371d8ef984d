//! Multiple-testing corrections, computed as `statsmodels.stats.multitest.multipletests` does.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the p-values of the per-feature tests are adjusted for testing many features at once.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Family-wise error control: p * m, capped at 1 (statsmodels `bonferroni`). The seed's
    /// README names this one; it is the default.
    #[default]
    Bonferroni,
    /// Holm's step-down family-wise control: sorted p_(i) * (m - i + 1), made non-decreasing
    /// by a running maximum, capped at 1 (statsmodels `holm`).
    Holm,
    /// Benjamini-Hochberg false discovery rate: sorted p_(i) * m / i, made non-decreasing by a
    /// running minimum from the largest, capped at 1 (statsmodels `fdr_bh`).
    BenjaminiHochberg,
}

impl Correction {
    /// The name used in JSON, on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Bonferroni => "bonferroni",
            Correction::Holm => "holm",
            Correction::BenjaminiHochberg => "benjamini_hochberg",
        }
    }
}

impl fmt::Display for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A correction name that is not one of the accepted ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown correction {0:?}: use bonferroni, holm or benjamini_hochberg (bh)")]
pub struct UnknownCorrection(pub String);

impl FromStr for Correction {
    type Err = UnknownCorrection;

    /// Accepts `bonferroni`, `holm`, `benjamini_hochberg`, `bh` and statsmodels' `fdr_bh`,
    /// ignoring ASCII case and treating `-` as `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "bonferroni" => Ok(Correction::Bonferroni),
            "holm" => Ok(Correction::Holm),
            "benjamini_hochberg" | "bh" | "fdr_bh" => Ok(Correction::BenjaminiHochberg),
            _ => Err(UnknownCorrection(s.to_string())),
        }
    }
}

/// Adjusted p-values in the input's order, capped at 1 and monotone in the raw p-values, as
/// statsmodels `multipletests(p, method=...)[1]` returns them. A NaN input counts as 1 and
/// inputs are clamped to [0, 1], so the output is always a valid probability.
pub fn adjust_p_values(p_values: &[f64], correction: Correction) -> Vec<f64> {
    let m = p_values.len();
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    if correction == Correction::Bonferroni {
        return clean.iter().map(|&p| (p * m as f64).min(1.0)).collect();
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| clean[i].total_cmp(&clean[j]));
    let mut sorted_adjusted: Vec<f64> = Vec::with_capacity(m);
    match correction {
        Correction::Holm => {
            let mut running_max = 0.0_f64;
            for (rank, &i) in order.iter().enumerate() {
                running_max = running_max.max(clean[i] * (m - rank) as f64);
                sorted_adjusted.push(running_max);
            }
        }
        Correction::BenjaminiHochberg => {
            // statsmodels divides by the empirical cdf (rank / m) rather than multiplying by
            // m / rank; the same here, to the last bit.
            sorted_adjusted = order
                .iter()
                .enumerate()
                .map(|(rank, &i)| clean[i] / ((rank + 1) as f64 / m as f64))
                .collect();
            for k in (0..m.saturating_sub(1)).rev() {
                sorted_adjusted[k] = sorted_adjusted[k].min(sorted_adjusted[k + 1]);
            }
        }
        Correction::Bonferroni => {}
    }
    let mut adjusted = vec![1.0; m];
    for (value, &i) in sorted_adjusted.into_iter().zip(&order) {
        adjusted[i] = value.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names round-trip through Display, FromStr and serde; aliases are accepted.
    #[test]
    fn names_round_trip() {
        for c in [
            Correction::Bonferroni,
            Correction::Holm,
            Correction::BenjaminiHochberg,
        ] {
            assert_eq!(c.to_string().parse::<Correction>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Correction>(&json).unwrap(), c);
        }
        assert_eq!(
            "BH".parse::<Correction>().unwrap(),
            Correction::BenjaminiHochberg
        );
        assert_eq!(
            "benjamini-hochberg".parse::<Correction>().unwrap(),
            Correction::BenjaminiHochberg
        );
        assert!("sidak".parse::<Correction>().is_err());
    }

    /// Hand-computed on p = (0.01, 0.04, 0.03, 0.005), m = 4.
    /// Bonferroni: 4p capped = (0.04, 0.16, 0.12, 0.02).
    /// Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04,
    /// running max 0.02, 0.03, 0.06, 0.06.
    /// BH: sorted times 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04; running min from the top
    /// leaves them as they are.
    #[test]
    fn corrections_by_hand() {
        let p = [0.01, 0.04, 0.03, 0.005];
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15);
        assert!(close(
            &adjust_p_values(&p, Correction::Bonferroni),
            &[0.04, 0.16, 0.12, 0.02]
        ));
        assert!(close(
            &adjust_p_values(&p, Correction::Holm),
            &[0.03, 0.06, 0.06, 0.02]
        ));
        assert!(close(
            &adjust_p_values(&p, Correction::BenjaminiHochberg),
            &[0.02, 0.04, 0.04, 0.02]
        ));
    }

    /// Empty input, values capped at 1, and NaN treated as 1.
    #[test]
    fn edge_inputs() {
        assert!(adjust_p_values(&[], Correction::Holm).is_empty());
        assert_eq!(
            adjust_p_values(&[0.6, 0.9], Correction::Bonferroni),
            vec![1.0, 1.0]
        );
        assert_eq!(
            adjust_p_values(&[f64::NAN, 0.01], Correction::BenjaminiHochberg),
            vec![1.0, 0.02]
        );
    }
}
