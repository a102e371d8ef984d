//! Population stability index: an effect size for drift that, unlike a p-value, does not grow
//! with the sample size.
//!
//! PSI = sum over bins of (c - r) ln(c / r), with r and c the shares of the reference and current
//! values in each bin. Bins: the feature's codes for nominal, ordinal and binary features (plus
//! one bin for any values outside the codes, when there are such values); for numeric features
//! the ten bins cut at the reference's deciles (numpy's default linear quantiles), each bin
//! closed on the right: (-inf, q1], (q1, q2], ..., (q9, inf). Shares below [`PSI_SHARE_FLOOR`]
//! (empty bins included) count as the floor, so the index is always finite. A side without any
//! finite value gives 0. Common reading: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 large.

use crate::schema::{Feature, FeatureKind};

/// Smallest share a bin counts with, so an empty bin gives a large but finite term.
pub const PSI_SHARE_FLOOR: f64 = 1e-4;

/// The population stability index of `current` against `reference` for one feature (see the
/// module docs for the bins). Non-finite values are left out.
pub fn population_stability_index(reference: &[f64], current: &[f64], feature: &Feature) -> f64 {
    match feature.kind {
        FeatureKind::Numeric => {
            let mut r: Vec<f64> = reference
                .iter()
                .filter(|v| v.is_finite())
                .map(|v| v + 0.0)
                .collect();
            let c: Vec<f64> = current.iter().copied().filter(|v| v.is_finite()).collect();
            psi_deciles(&mut r, &c)
        }
        _ => {
            let codes = feature.codes();
            let count = |values: &[f64]| {
                let mut counts = vec![0u64; codes.len() + 1];
                for v in values.iter().filter(|v| v.is_finite()) {
                    let bin = codes
                        .iter()
                        .position(|&code| code as f64 == *v)
                        .unwrap_or(codes.len());
                    counts[bin] += 1;
                }
                counts
            };
            psi_from_counts(&count(reference), &count(current))
        }
    }
}

/// PSI from per-bin counts of the two sides (same bins, same order).
pub(crate) fn psi_from_counts(reference: &[u64], current: &[u64]) -> f64 {
    let r_total: u64 = reference.iter().sum();
    let c_total: u64 = current.iter().sum();
    if r_total == 0 || c_total == 0 {
        return 0.0;
    }
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let r = (r as f64 / r_total as f64).max(PSI_SHARE_FLOOR);
            let c = (c as f64 / c_total as f64).max(PSI_SHARE_FLOOR);
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// PSI over reference deciles. `reference` holds finite values and is reordered in place
/// (selection, not a full sort: O(n) per decile).
pub(crate) fn psi_deciles(reference: &mut [f64], current: &[f64]) -> f64 {
    match decile_bins(reference, current) {
        Some(bins) => psi_from_counts(&bins.reference, &bins.current),
        None => 0.0,
    }
}

/// The ten reference-decile bins with both sides' counts: bin k is (edges[k-1], edges[k]],
/// open at the ends.
pub(crate) struct DecileBins {
    pub(crate) edges: [f64; 9],
    pub(crate) reference: [u64; 10],
    pub(crate) current: [u64; 10],
}

/// Counts both sides over the reference's deciles; `None` when a side is empty. `reference`
/// holds finite values and is reordered in place.
pub(crate) fn decile_bins(reference: &mut [f64], current: &[f64]) -> Option<DecileBins> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let edges = decile_edges(reference);
    let bin_counts = |values: &[f64]| {
        let mut counts = [0u64; 10];
        for &v in values {
            counts[decile_bin(&edges, v)] += 1;
        }
        counts
    };
    Some(DecileBins {
        edges,
        reference: bin_counts(reference),
        current: bin_counts(current),
    })
}

/// [`decile_bins`] from both sides' counts per distinct finite value, ascending (what
/// `detect_drift` counted): the same edges and counts, found by walking the cumulative counts
/// instead of selecting among the values. `None` when a side is empty.
pub(crate) fn decile_bins_of_groups(groups: &[(f64, [u64; 2])]) -> Option<DecileBins> {
    let totals = groups
        .iter()
        .fold([0u64, 0], |t, (_, c)| [t[0] + c[0], t[1] + c[1]]);
    if totals[0] == 0 || totals[1] == 0 {
        return None;
    }
    // The reference's distinct values and the number of its values up to each.
    let mut values = Vec::new();
    let mut ends = Vec::new();
    let mut seen = 0u64;
    for &(v, c) in groups.iter().filter(|g| g.1[0] > 0) {
        seen += c[0];
        values.push(v);
        ends.push(seen);
    }
    // Order statistic i (0-based) is the first value whose running count exceeds i.
    let order_statistic = |i: u64| values[ends.partition_point(|&end| end <= i)];
    let edges = quantile_edges(totals[0] as usize, |i| order_statistic(i as u64));
    let mut bins = DecileBins {
        edges,
        reference: [0; 10],
        current: [0; 10],
    };
    for &(v, c) in groups {
        let bin = decile_bin(&edges, v);
        bins.reference[bin] += c[0];
        bins.current[bin] += c[1];
    }
    Some(bins)
}

/// The decile bin of `v`: the number of edges strictly below it, numpy's
/// `searchsorted(edges, v, side="left")`. Nine branch-free comparisons beat a binary search,
/// whose branches mispredict.
#[inline]
pub(crate) fn decile_bin(edges: &[f64; 9], v: f64) -> usize {
    edges.iter().map(|&e| usize::from(e < v)).sum()
}

/// The 10 %, 20 %, ..., 90 % quantiles as numpy's default (`method="linear"`) computes them:
/// h = (n - 1) q, then interpolation between the order statistics floor(h) and floor(h) + 1
/// with numpy's `_lerp`. `values` must be non-empty; it is reordered in place.
pub(crate) fn decile_edges(values: &mut [f64]) -> [f64; 9] {
    let n = values.len();
    let mut wanted: Vec<usize> = decile_positions(n)
        .iter()
        .flat_map(|&h| {
            let below = h.floor() as usize;
            [below.min(n - 1), (below + 1).min(n - 1)]
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    select_order_statistics(values, &wanted);
    quantile_edges(n, |i| values[i])
}

/// numpy's positions h = (n - 1) q for q = 0.1, ..., 0.9.
fn decile_positions(n: usize) -> [f64; 9] {
    std::array::from_fn(|k| (n as f64 - 1.0) * ((k + 1) as f64 / 10.0))
}

/// The nine deciles of n > 0 values from their order statistics (`order_statistic(i)`, 0-based):
/// numpy's linear interpolation with its `_lerp`.
fn quantile_edges(n: usize, order_statistic: impl Fn(usize) -> f64) -> [f64; 9] {
    decile_positions(n).map(|h| {
        let below = h.floor() as usize;
        if below + 1 >= n {
            return order_statistic(n - 1);
        }
        let (a, b) = (order_statistic(below), order_statistic(below + 1));
        let t = h - below as f64;
        let d = b - a;
        if t >= 0.5 {
            b - d * (1.0 - t)
        } else {
            a + d * t
        }
    })
}

/// Puts the order statistics at the sorted, distinct `indices` in place, as a full sort would,
/// by recursive selection: O(n log k) for k indices.
fn select_order_statistics(values: &mut [f64], indices: &[usize]) {
    if indices.is_empty() || values.len() < 2 {
        return;
    }
    let mid = indices.len() / 2;
    let k = indices[mid];
    values.select_nth_unstable_by(k, f64::total_cmp);
    let (left, right) = values.split_at_mut(k);
    select_order_statistics(left, &indices[..mid]);
    let shifted: Vec<usize> = indices[mid + 1..].iter().map(|i| i - k - 1).collect();
    select_order_statistics(&mut right[1..], &shifted);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FEATURES;

    fn feature(kind: FeatureKind) -> &'static Feature {
        FEATURES.iter().find(|f| f.kind == kind).unwrap()
    }

    /// Hand-computed PSI on a binary feature: reference shares (0.5, 0.5), current (0.2, 0.8):
    /// (0.2 - 0.5) ln(0.2/0.5) + (0.8 - 0.5) ln(0.8/0.5) = 0.3 ln 2.5 + 0.3 ln 1.6 = 0.3 ln 4.
    #[test]
    fn psi_binary_by_hand() {
        let r = [0.0, 1.0, 0.0, 1.0];
        let c = [0.0, 1.0, 1.0, 1.0, 1.0];
        let psi = population_stability_index(&r, &c, feature(FeatureKind::Binary));
        assert!((psi - 0.3 * 4f64.ln()).abs() < 1e-15, "{psi}");
    }

    /// An empty bin takes the floor: reference (1, 0), current (0.5, 0.5) over codes 0, 1:
    /// (0.5 - 1) ln 0.5 + (0.5 - 1e-4) ln(0.5 / 1e-4).
    #[test]
    fn psi_empty_bin_uses_the_floor() {
        let psi =
            population_stability_index(&[0.0, 0.0], &[0.0, 1.0], feature(FeatureKind::Binary));
        let expected = -0.5 * 0.5f64.ln() + (0.5 - 1e-4) * (0.5f64 / 1e-4).ln();
        assert!((psi - expected).abs() < 1e-13, "{psi} vs {expected}");
    }

    /// Identical distributions give 0; a side without values gives 0.
    #[test]
    fn psi_zero_cases() {
        let numeric = feature(FeatureKind::Numeric);
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(population_stability_index(&v, &v, numeric), 0.0);
        assert_eq!(population_stability_index(&v, &[], numeric), 0.0);
        assert_eq!(population_stability_index(&[f64::NAN], &v, numeric), 0.0);
    }

    /// Deciles of 0..=10 (n = 11): h = 10 q, so the edges are exactly 1, 2, ..., 9; the
    /// reference then fills bins (-inf,1] = {0,1}, (1,2] = {2}, ..., (9,inf) = {10}.
    /// A current sample all at 0 has shares (1, 0, ..., 0): PSI = (1 - 2/11) ln(11/2) +
    /// 9 (1e-4 - 1/11) ln(1e-4 * 11).
    #[test]
    fn psi_numeric_by_hand() {
        let mut r: Vec<f64> = (0..=10).rev().map(f64::from).collect();
        assert_eq!(
            decile_edges(&mut r),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
        );
        let r: Vec<f64> = (0..=10).map(f64::from).collect();
        let psi = population_stability_index(&r, &[0.0; 5], feature(FeatureKind::Numeric));
        let expected = (1.0 - 2.0 / 11.0) * (11.0f64 / 2.0).ln()
            + 9.0 * (1e-4 - 1.0 / 11.0) * (1.1e-3f64).ln();
        assert!((psi - expected).abs() < 1e-13, "{psi} vs {expected}");
    }

    /// Selection puts the requested order statistics where a sort would.
    #[test]
    fn selection_matches_sorting() {
        let mut values: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let wanted = [0, 99, 100, 500, 501, 998, 999];
        select_order_statistics(&mut values, &wanted);
        for i in wanted {
            assert_eq!(values[i], i as f64);
        }
    }
}
