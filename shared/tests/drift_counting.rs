//! `detect_drift` works from counts: one pass over the rows (split over threads), codes and
//! whole numbers counted in arrays, Mann-Whitney ranks, deciles and moments from those counts.
//! These tests put the scipy fixtures' samples through it and check its per-feature results
//! against the sorting functions (`mann_whitney_u_test`, `welch_t_test`,
//! `population_stability_index`) and against scipy, with drift_scipy.rs's tolerance.

use fraudrisk::drift::{
    detect_drift, mann_whitney_u_test, population_stability_index, welch_t_test, DriftConfig,
    FeatureDrift,
};
use fraudrisk::schema::{Applicant, Domain, FeatureKind, FEATURES};
mod drift_common;

use drift_common::rows::{base, first_of, rows_with};
use drift_common::{fixture, num, sample, splitmix};

const REL_TOL: f64 = 1e-9;
/// Fixture cases with more rows than this are left to drift_scipy.rs (slow unoptimised).
const MAX_ROWS: usize = 250_000;

fn rel(ours: f64, expected: f64) -> f64 {
    if ours == expected {
        0.0
    } else {
        ((ours - expected) / expected).abs()
    }
}

/// drift_scipy.rs's rule: relative 1e-9 where scipy's p >= 1e-100, else ours below 1e-90.
fn assert_p_matches_scipy(case: &str, ours: f64, scipy: f64) {
    if scipy >= 1e-100 {
        assert!(
            rel(ours, scipy) <= REL_TOL,
            "{case}: p {ours:e} vs {scipy:e}"
        );
    } else {
        assert!(ours < 1e-90, "{case}: p {ours:e} vs {scipy:e}");
    }
}

/// The fixture's cases small enough to run here, with both samples.
fn fixture_cases(file: &str) -> Vec<(String, Vec<f64>, Vec<f64>, serde_json::Value)> {
    fixture(file)["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            (
                case["name"].as_str().unwrap().to_string(),
                sample(case, "reference"),
                sample(case, "current"),
                case.clone(),
            )
        })
        .filter(|(_, r, c, _)| r.len() + c.len() <= MAX_ROWS)
        .collect()
}

/// The report's entry for feature `j` when only that feature varies.
fn one_feature(j: usize, reference: &[f64], current: &[f64]) -> FeatureDrift {
    let report = detect_drift(
        &rows_with(j, reference),
        &rows_with(j, current),
        &DriftConfig::default(),
    );
    report.features[j].clone()
}

/// Ordinal feature: every Mann-Whitney fixture through `detect_drift` gives the sorting
/// function's U and p to the bit (codes are counted in the array, other values kept aside and
/// sorted), and so scipy's.
#[test]
fn mann_whitney_from_counts_equals_sorting_and_scipy() {
    let j = first_of(FeatureKind::Ordinal);
    let cases = fixture_cases("mann_whitney.json");
    assert!(cases.iter().any(|(name, ..)| name.starts_with("ties_")));
    for (name, r, c, case) in cases {
        let got = one_feature(j, &r, &c);
        let sorted = mann_whitney_u_test(&r, &c);
        assert_eq!(got.statistic, sorted.statistic, "{name}");
        assert_eq!(got.p_value, sorted.p_value, "{name}");
        let u = num(&case["statistic"]);
        assert!(
            rel(got.statistic, u) <= REL_TOL,
            "{name}: U {}",
            got.statistic
        );
        assert_p_matches_scipy(&name, got.p_value, num(&case["p_value"]));
    }
}

/// Numeric feature: every Welch fixture through `detect_drift` (moments from counts) agrees
/// with scipy, and with `welch_t_test` on the rows: to the bit for whole numbers (exact
/// integer sums on both paths), to rounding for fractions. Its PSI equals
/// `population_stability_index` (deciles by counting vs by selection) to the bit.
#[test]
fn welch_and_psi_from_counts_equal_rows_and_scipy() {
    let j = first_of(FeatureKind::Numeric);
    let mut whole_cases = 0;
    for (name, r, c, case) in fixture_cases("welch.json") {
        let got = one_feature(j, &r, &c);
        let rows = welch_t_test(&r, &c);
        let whole = r.iter().chain(&c).all(|v| v.fract() == 0.0);
        if whole {
            whole_cases += 1;
            assert_eq!(got.statistic, rows.statistic, "{name}");
            assert_eq!(got.p_value, rows.p_value, "{name}");
        } else {
            assert!(rel(got.statistic, rows.statistic) <= 1e-12, "{name}");
            assert!(rel(got.p_value, rows.p_value) <= 1e-10, "{name}");
        }
        let t = num(&case["statistic"]);
        assert!(
            rel(got.statistic, t) <= REL_TOL,
            "{name}: t {} vs {t}",
            got.statistic
        );
        assert_p_matches_scipy(&name, got.p_value, num(&case["p_value"]));
        let psi = population_stability_index(&r, &c, &FEATURES[j]);
        assert_eq!(got.psi, psi, "{name}");
    }
    assert!(
        whole_cases > 0,
        "no whole-number Welch case in the fixtures"
    );
}

/// Enough rows for several counting threads (one per 65,536 rows, up to the cores): every
/// feature equals the per-feature functions on its column, as on one thread.
#[test]
fn large_inputs_over_threads_equal_the_sorting_functions() {
    let make = |n: usize, seed: u64, shift: u64| -> Vec<Applicant> {
        let noise = splitmix(seed, n * FEATURES.len());
        noise
            .chunks_exact(FEATURES.len())
            .map(|draws| {
                let mut a = base();
                for ((v, f), &u) in a.0.iter_mut().zip(FEATURES.iter()).zip(draws) {
                    *v = match f.domain {
                        Domain::Range { min, max } => {
                            let width = (max - min + 1).min(5_000) as u64;
                            (min as u64 + (u % width + shift).min(width - 1)) as f64
                        }
                        Domain::Codes(codes) => {
                            codes[((u % codes.len() as u64 + shift) as usize).min(codes.len() - 1)]
                                .0 as f64
                        }
                    };
                }
                a
            })
            .collect()
    };
    let reference = make(150_000, 7, 0);
    let current = make(60_000, 8, 1);
    let report = detect_drift(&reference, &current, &DriftConfig::default());
    for (j, f) in FEATURES.iter().enumerate() {
        let r: Vec<f64> = reference.iter().map(|a| a.0[j]).collect();
        let c: Vec<f64> = current.iter().map(|a| a.0[j]).collect();
        let got = &report.features[j];
        match f.kind {
            FeatureKind::Numeric => {
                let rows = welch_t_test(&r, &c);
                assert_eq!(
                    (got.statistic, got.p_value),
                    (rows.statistic, rows.p_value),
                    "{}",
                    f.name
                );
            }
            FeatureKind::Ordinal => {
                let rows = mann_whitney_u_test(&r, &c);
                assert_eq!(
                    (got.statistic, got.p_value),
                    (rows.statistic, rows.p_value),
                    "{}",
                    f.name
                );
            }
            _ => {}
        }
        assert_eq!(got.psi, population_stability_index(&r, &c, f), "{}", f.name);
        assert_eq!((got.reference_n, got.current_n), (150_000, 60_000));
    }
}
