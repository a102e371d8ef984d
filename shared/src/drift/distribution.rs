//! The counts behind a feature's reference-vs-current chart, kept from what the tests already
//! counted (per-code counts, reference-decile bins): no second pass over the rows.

use serde::{Deserialize, Serialize};

use super::psi::DecileBins;

/// Most values outside a feature's codes that get a bin of their own; the rest share one.
pub const MAX_OTHER_VALUE_BINS: usize = 20;

/// Both sides' counts per bin of one feature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct FeatureDistribution {
    /// `codes` (binary, nominal, ordinal: one bin per code of the codebook, then one per other
    /// value seen, up to 20, then one for the rest) or `deciles` (numeric: the bins cut at the
    /// reference's deciles, closed on the right, as PSI uses them; bins of zero width, from
    /// tied deciles, are left out since they cannot hold a value).
    pub binning: String,
    pub bins: Vec<DistributionBin>,
}

/// One bin: what it covers and how many values of each side fell in it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct DistributionBin {
    /// A `codes` bin's value (a code, or a value outside the codes); absent for the bin of
    /// the remaining other values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// A `deciles` bin's lower edge (excluded); absent for the first bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// A `deciles` bin's upper edge (included); absent for the last bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Reference values in the bin.
    pub reference: u64,
    /// Current values in the bin.
    pub current: u64,
}

impl FeatureDistribution {
    /// Total counts of the two sides.
    pub fn totals(&self) -> [u64; 2] {
        self.bins.iter().fold([0, 0], |[r, c], b| {
            [r.saturating_add(b.reference), c.saturating_add(b.current)]
        })
    }
}

/// One bin per code (in codebook order), then the other values seen, ascending.
pub(super) fn code_distribution(codes: &[i64], groups: &[(f64, [u64; 2])]) -> FeatureDistribution {
    let mut bins: Vec<DistributionBin> = codes
        .iter()
        .map(|&code| bin(Some(code as f64), None, None, [0, 0]))
        .collect();
    let mut others = 0;
    let mut rest = [0u64; 2];
    for (value, counts) in groups {
        if let Some(i) = codes.iter().position(|&code| code as f64 == *value) {
            bins[i].reference += counts[0];
            bins[i].current += counts[1];
        } else if others < MAX_OTHER_VALUE_BINS {
            bins.push(bin(Some(*value), None, None, *counts));
            others += 1;
        } else {
            rest = [rest[0] + counts[0], rest[1] + counts[1]];
        }
    }
    if rest != [0, 0] {
        bins.push(bin(None, None, None, rest));
    }
    FeatureDistribution {
        binning: "codes".to_string(),
        bins,
    }
}

/// The reference-decile bins, zero-width ones left out.
pub(super) fn decile_distribution(deciles: &DecileBins) -> FeatureDistribution {
    let bins = (0..10)
        .map(|k| {
            let lower = (k > 0).then(|| deciles.edges[k - 1]);
            let upper = (k < 9).then(|| deciles.edges[k]);
            bin(
                None,
                lower,
                upper,
                [deciles.reference[k], deciles.current[k]],
            )
        })
        .filter(|b| !matches!((b.lower, b.upper), (Some(l), Some(u)) if l >= u))
        .collect();
    FeatureDistribution {
        binning: "deciles".to_string(),
        bins,
    }
}

fn bin(
    value: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    counts: [u64; 2],
) -> DistributionBin {
    DistributionBin {
        value,
        lower,
        upper,
        reference: counts[0],
        current: counts[1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes come first in codebook order (empty ones included), other values after, and past
    /// the cap the rest share one bin.
    #[test]
    fn code_bins_list_every_code_then_other_values() {
        let mut groups = vec![(1.0, [5, 0]), (2.0, [0, 3]), (9.0, [1, 1])];
        let d = code_distribution(&[0, 1, 2], &groups);
        assert_eq!(d.binning, "codes");
        let values: Vec<Option<f64>> = d.bins.iter().map(|b| b.value).collect();
        assert_eq!(values, [Some(0.0), Some(1.0), Some(2.0), Some(9.0)]);
        assert_eq!((d.bins[0].reference, d.bins[0].current), (0, 0));
        assert_eq!(d.totals(), [6, 4]);

        groups = (0..MAX_OTHER_VALUE_BINS + 3)
            .map(|i| (100.0 + i as f64, [1, 2]))
            .collect();
        let d = code_distribution(&[0, 1], &groups);
        assert_eq!(d.bins.len(), 2 + MAX_OTHER_VALUE_BINS + 1);
        let rest = d.bins.last().unwrap();
        assert_eq!((rest.value, rest.reference, rest.current), (None, 3, 6));
        assert_eq!(d.totals(), [23, 46]);
    }

    /// Decile bins carry their edges; tied deciles leave no zero-width bin.
    #[test]
    fn decile_bins_drop_zero_width_ones() {
        let deciles = DecileBins {
            edges: [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            reference: [1, 1, 0, 1, 1, 1, 1, 1, 1, 1],
            current: [2, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        };
        let d = decile_distribution(&deciles);
        assert_eq!(d.binning, "deciles");
        assert_eq!(d.bins.len(), 9);
        assert_eq!((d.bins[0].lower, d.bins[0].upper), (None, Some(1.0)));
        assert_eq!((d.bins[2].lower, d.bins[2].upper), (Some(2.0), Some(3.0)));
        assert_eq!((d.bins[8].lower, d.bins[8].upper), (Some(8.0), None));
        assert_eq!(d.totals(), [9, 7]);
    }
}
