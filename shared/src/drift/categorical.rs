//! The categorical features' tests (binary, nominal, ordinal), from per-value counts of both
//! sides gathered in one pass over the rows.

use super::detect::{tested_if_enough, Partial};
use super::distribution::code_distribution;
use super::hypothesis::{
    chi_square_test, mann_whitney_from_groups, non_finite_note, two_proportion_z_test,
};
use super::moments::compensated_sum;
use super::psi::psi_from_counts;
use crate::schema::{Feature, FeatureKind};

/// A binary, nominal or ordinal feature's test, PSI and chart from both sides' counts per
/// distinct finite value (ascending) and their non-finite values left out.
pub(super) fn categorical_feature(
    feature: &Feature,
    groups: &[(f64, [u64; 2])],
    non_finite: [u64; 2],
) -> Partial {
    let codes = feature.codes();
    let is_code = |v: f64| codes.iter().any(|&c| c as f64 == v);
    let mut notes: Vec<String> = non_finite_note(non_finite[0] as usize, non_finite[1] as usize)
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
    for (value, c) in groups {
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
        distribution: Some(code_distribution(&codes, groups)),
    }
}
