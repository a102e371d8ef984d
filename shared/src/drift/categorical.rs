//! The categorical features' tests (binary, nominal, ordinal), from per-value counts of both
//! sides gathered in one pass over the rows.

use std::collections::BTreeMap;

use super::detect::{tested_if_enough, Partial};
use super::distribution::code_distribution;
use super::hypothesis::{
    chi_square_test, compensated_sum, mann_whitney_from_groups, non_finite_note,
    two_proportion_z_test,
};
use super::psi::psi_from_counts;
use crate::schema::{Feature, FeatureKind};

pub(super) fn categorical_feature(feature: &Feature, counts: &CategoryCounts) -> Partial {
    let groups = counts.groups();
    let codes = feature.codes();
    let is_code = |v: f64| codes.iter().any(|&c| c as f64 == v);
    let mut notes: Vec<String> =
        non_finite_note(counts.non_finite[0] as usize, counts.non_finite[1] as usize)
            .into_iter()
            .collect();
    let outside: [u64; 2] = [0, 1].map(|side| {
        groups
            .iter()
            .filter(|(v, _)| !is_code(*v))
            .map(|(_, c)| c[side])
            .sum()
    });
    let all_n: [u64; 2] = [0, 1].map(|side| groups.iter().map(|(_, c)| c[side]).sum());
    let means: [f64; 2] = [0, 1].map(|side| {
        if all_n[side] == 0 {
            0.0
        } else {
            compensated_sum(groups.iter().map(|(v, c)| v * c[side] as f64)) / all_n[side] as f64
        }
    });

    let (outcome, n) = match feature.kind {
        FeatureKind::Binary => {
            let top = codes.iter().copied().max().unwrap_or(1) as f64;
            let successes = [0, 1].map(|side| {
                groups
                    .iter()
                    .filter(|(v, _)| *v == top)
                    .map(|(_, c)| c[side])
                    .sum::<u64>()
            });
            let n = [all_n[0] - outside[0], all_n[1] - outside[1]];
            if outside[0] + outside[1] > 0 {
                notes.push(format!(
                    "{} reference and {} current values outside the codes left out of the test",
                    outside[0], outside[1]
                ));
            }
            let n_usize = [n[0] as usize, n[1] as usize];
            let outcome = tested_if_enough(n_usize, || {
                two_proportion_z_test(successes[0], n[0], successes[1], n[1])
            });
            (outcome, n_usize)
        }
        _ => {
            if outside[0] + outside[1] > 0 {
                notes.push(format!(
                    "{} reference and {} current values outside the codes tested as categories of their own",
                    outside[0], outside[1]
                ));
            }
            let n = [all_n[0] as usize, all_n[1] as usize];
            let outcome = tested_if_enough(n, || {
                if feature.kind == FeatureKind::Ordinal {
                    mann_whitney_from_groups(groups.iter().map(|(_, c)| (c[0], c[1])))
                } else {
                    let table: Vec<[u64; 2]> = groups.iter().map(|(_, c)| *c).collect();
                    chi_square_test(&table)
                }
            });
            (outcome, n)
        }
    };

    // PSI bins: one per code, then one for everything else.
    let mut ref_bins = vec![0u64; codes.len() + 1];
    let mut cur_bins = vec![0u64; codes.len() + 1];
    for (value, c) in &groups {
        let bin = codes
            .iter()
            .position(|&code| code as f64 == *value)
            .unwrap_or(codes.len());
        ref_bins[bin] += c[0];
        cur_bins[bin] += c[1];
    }
    Partial {
        outcome,
        psi: psi_from_counts(&ref_bins, &cur_bins),
        n,
        means,
        notes,
        distribution: Some(code_distribution(&codes, &groups)),
    }
}

/// Largest code range counted in a plain array; values elsewhere go to an ordered map.
const MAX_DENSE: i64 = 4096;

/// Counts per distinct value of one categorical feature, for both sides ([reference, current]).
pub(super) struct CategoryCounts {
    /// Value of `dense[0]`.
    low: i64,
    /// Counts of the integer values low, low + 1, ... (the feature's code range).
    dense: Vec<[u64; 2]>,
    /// Counts of any other finite value, keyed by an order-preserving image of its bits.
    other: BTreeMap<u64, [u64; 2]>,
    non_finite: [u64; 2],
}

impl CategoryCounts {
    pub(super) fn new(feature: &Feature) -> Self {
        let codes = feature.codes();
        let (low, high) = match (codes.iter().min(), codes.iter().max()) {
            (Some(&low), Some(&high)) if high - low < MAX_DENSE => (low, high),
            _ => (0, -1),
        };
        CategoryCounts {
            low,
            dense: vec![[0, 0]; (high - low + 1).max(0) as usize],
            other: BTreeMap::new(),
            non_finite: [0, 0],
        }
    }

    #[inline]
    pub(super) fn add(&mut self, side: usize, value: f64) {
        self.add_count(side, value, 1);
    }

    /// Counts `count` values equal to `value` on `side` at once.
    #[inline]
    pub(super) fn add_count(&mut self, side: usize, value: f64, count: u64) {
        let offset = value - self.low as f64;
        // The cast saturates (negative and NaN give 0), so the round trip is true exactly for a
        // whole offset in range; cheaper than `fract()`, which is a libm call on baseline x86-64.
        let index = offset as usize;
        if index as f64 == offset && index < self.dense.len() {
            self.dense[index][side] += count;
        } else if value.is_finite() {
            self.other.entry(order_key(value + 0.0)).or_default()[side] += count;
        } else {
            self.non_finite[side] += count;
        }
    }

    /// Every value seen, ascending, with its counts.
    fn groups(&self) -> Vec<(f64, [u64; 2])> {
        let mut groups: Vec<(f64, [u64; 2])> = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, c)| c[0] + c[1] > 0)
            .map(|(i, c)| ((self.low + i as i64) as f64, *c))
            .chain(self.other.iter().map(|(k, c)| (from_order_key(*k), *c)))
            .collect();
        groups.sort_by(|a, b| a.0.total_cmp(&b.0));
        groups
    }
}

/// Maps f64 bits to u64 so that the integer order is the numeric order (for finite values).
fn order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order key sorts like the numbers it encodes and round-trips.
    #[test]
    fn order_key_is_monotone() {
        let values = [-1e300, -2.5, -0.0, 0.5, 3.0, 1e300];
        for w in values.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]) || (w[0] == 0.0 && w[1] == 0.0));
        }
        for v in values {
            assert_eq!(from_order_key(order_key(v)), v);
        }
    }
}
