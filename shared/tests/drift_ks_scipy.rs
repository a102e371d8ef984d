//! The two-sample Kolmogorov-Smirnov test against scipy 1.16: every expected number comes from
//! `tests/fixtures/drift/ks_2samp.json`, written by `generate_drift_fixtures.py` next to it
//! (regenerate with `$(bash scripts/python-env.sh)/bin/python
//! shared/tests/fixtures/drift/generate_drift_fixtures.py`).
//!
//! Agreement rule, as in drift_scipy.rs: p-values within a relative 1e-9 wherever scipy's
//! p >= 1e-100; below that (scipy's values there run into underflow) ours must be below 1e-90.
//! The statistic must be scipy's exactly (D = h / lcm(n1, n2) on the exact path, scipy's ECDF
//! difference on the asymptotic one), and so must the method, `statistic_location` and
//! `statistic_sign`. Run with `--nocapture` to see the largest relative error per group.

mod drift_common;

use drift_common::{fixture, num, sample};
use fraudrisk::drift::{kolmogorov_two_sided_sf, ks_2samp, ks_2samp_sorted, KsMethod, KsOutcome};
use serde_json::Value;
use std::collections::BTreeMap;

const REL_TOL: f64 = 1e-9;
const TAIL: f64 = 1e-100;

fn rel(ours: f64, expected: f64) -> f64 {
    if ours == expected {
        0.0
    } else {
        ((ours - expected) / expected).abs()
    }
}

/// Largest relative p-value error per group, for the summary lines.
#[derive(Default)]
struct Group {
    checked: usize,
    p_value: f64,
    /// Below 1e-100 only the bound is asserted; the agreement is still shown where scipy's
    /// value is a normal double.
    tail: usize,
    tail_p_value: f64,
}

#[derive(Default)]
struct Errors(BTreeMap<String, Group>);

impl Errors {
    /// A p-value: relative tolerance where scipy's p >= 1e-100, else ours < 1e-90.
    fn p_value(&mut self, group: &str, case: &str, ours: f64, expected: f64) {
        assert!(
            (0.0..=1.0).contains(&ours),
            "{case}: p {ours} is not a probability"
        );
        let g = self.0.entry(group.to_string()).or_default();
        g.checked += 1;
        if expected >= TAIL {
            let e = rel(ours, expected);
            assert!(
                e <= REL_TOL,
                "{case}: p {ours:e} vs scipy {expected:e} (rel {e:e})"
            );
            g.p_value = g.p_value.max(e);
        } else {
            assert!(
                ours < 1e-90,
                "{case}: p {ours:e} but scipy has {expected:e}"
            );
            g.tail += 1;
            if expected >= f64::MIN_POSITIVE {
                g.tail_p_value = g.tail_p_value.max(rel(ours, expected));
            }
        }
    }

    fn report(&self, test: &str) {
        for (group, g) in &self.0 {
            println!(
                "{test} / {group}: {} points, max relative error p {:.2e} \
                 ({} with p below 1e-100, not asserted: {:.2e})",
                g.checked, g.p_value, g.tail, g.tail_p_value
            );
        }
    }
}

/// Which group a case's errors are reported in.
fn group(case: &Value, out: &KsOutcome) -> &'static str {
    let largest = case["n_reference"]
        .as_u64()
        .unwrap()
        .max(case["n_current"].as_u64().unwrap());
    match (out.method, largest) {
        (KsMethod::Exact, 0..=50) => "exact, n <= 50",
        (KsMethod::Exact, _) => "exact, n <= 10,000",
        (KsMethod::Asymptotic, 0..=10_000) => "asymptotic after the exact path failed",
        (KsMethod::Asymptotic, _) => "asymptotic, n > 10,000",
    }
}

/// `scipy.stats.ks_2samp(reference, current)`, two-sided, method 'auto': statistic, p-value,
/// method, `statistic_location` and `statistic_sign`; the sorted-input variant must agree.
#[test]
fn ks_2samp_matches_scipy() {
    let file = fixture("ks_2samp.json");
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut errors = Errors::default();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (reference, current) = (sample(case, "reference"), sample(case, "current"));
        assert_eq!(
            reference.len() as u64,
            case["n_reference"].as_u64().unwrap()
        );
        assert_eq!(current.len() as u64, case["n_current"].as_u64().unwrap());
        let out = ks_2samp(&reference, &current).unwrap_or_else(|| panic!("{name}: no outcome"));
        let method = match case["method"].as_str().unwrap() {
            "exact" => KsMethod::Exact,
            "asymptotic" => KsMethod::Asymptotic,
            other => panic!("{name}: unknown method {other}"),
        };
        assert_eq!(out.method, method, "{name}: method");
        let d = num(&case["statistic"]);
        assert_eq!(
            out.statistic.to_bits(),
            d.to_bits(),
            "{name}: D {:e} vs scipy {d:e}",
            out.statistic
        );
        assert_eq!(
            out.location,
            num(&case["location"]),
            "{name}: statistic_location"
        );
        assert_eq!(
            i64::from(out.sign),
            case["sign"].as_i64().unwrap(),
            "{name}: statistic_sign"
        );
        errors.p_value(group(case, &out), name, out.p_value, num(&case["p_value"]));

        let sorted = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v
        };
        let from_sorted = ks_2samp_sorted(&sorted(reference), &sorted(current));
        assert_eq!(from_sorted, Some(out), "{name}: sorted input");
    }
    errors.report("ks_2samp");
}

/// `scipy.stats.kstwo.sf(d, n)` point by point, grouped by the branch of scipy's `kolmogn`
/// that computes it.
#[test]
fn kolmogorov_two_sided_sf_matches_scipy_kstwo() {
    let file = fixture("ks_2samp.json");
    let points = file["kstwo_sf"].as_array().unwrap();
    let mut errors = Errors::default();
    for point in points {
        let (n, d) = (point["n"].as_u64().unwrap(), num(&point["d"]));
        let branch = point["branch"].as_str().unwrap();
        let ours = kolmogorov_two_sided_sf(n, d);
        errors.p_value(
            branch,
            &format!("kstwo.sf({d:e}, {n}) [{branch}]"),
            ours,
            num(&point["sf"]),
        );
    }
    for branch in [
        "below_support",
        "ruben_gambino_small_d",
        "ruben_gambino_large_d",
        "smirnov_d_from_half",
        "durbin_matrix",
        "pomeranz",
        "smirnov_miller",
        "pelz_good",
        "zero_tail",
    ] {
        assert!(errors.0.contains_key(branch), "no point for {branch}");
    }
    errors.report("kstwo.sf");
}

/// Input scipy refuses or never sees: defined answers, no panic.
#[test]
fn ks_2samp_edge_input() {
    assert!(ks_2samp(&[], &[1.0]).is_none());
    assert!(ks_2samp(&[1.0], &[]).is_none());
    assert!(ks_2samp(&[f64::NAN, f64::NAN], &[1.0]).is_none());
    // NaN is left out (scipy's nan_policy='omit').
    assert_eq!(
        ks_2samp(&[3.0, f64::NAN, 1.0], &[2.0, 5.0]),
        ks_2samp(&[1.0, 3.0], &[2.0, 5.0])
    );
    // The sorted variant refuses what it cannot trust.
    assert!(ks_2samp_sorted(&[1.0, 0.0], &[2.0]).is_none());
    assert!(ks_2samp_sorted(&[0.0, f64::NAN], &[2.0]).is_none());
    assert!(ks_2samp_sorted(&[], &[2.0]).is_none());
    // Single values and all ties.
    let out = ks_2samp(&[4.0], &[4.0]).unwrap();
    assert_eq!(
        (out.statistic, out.p_value, out.method),
        (0.0, 1.0, KsMethod::Exact)
    );
    let out = ks_2samp(&[f64::INFINITY; 3], &[f64::NEG_INFINITY; 2]).unwrap();
    assert_eq!((out.statistic, out.sign), (1.0, -1));
    assert!((0.0..=1.0).contains(&out.p_value));
}
