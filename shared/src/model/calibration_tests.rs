//! Tests of `calibration` against scikit-learn (shared/tests/fixtures/calibration.json, written
//! by scripts/sklearn_calibration.py) and by hand.

use super::*;
use serde_json::Value;

pub(crate) fn fixture() -> Value {
    let text = include_str!("../../tests/fixtures/calibration.json");
    serde_json::from_str(text).expect("calibration.json is JSON")
}

pub(crate) fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

pub(crate) fn labels(set: &Value) -> Vec<bool> {
    set["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() == 1)
        .collect()
}

#[test]
fn edges_are_numpy_linspace() {
    let expected = floats(&fixture()["bin_edges"]);
    let table = reliability_table(&[], &[]);
    assert_eq!(table.len(), 10);
    for (i, bin) in table.iter().enumerate() {
        assert_eq!(bin.lower.to_bits(), expected[i].to_bits(), "lower {i}");
        assert_eq!(bin.upper.to_bits(), expected[i + 1].to_bits(), "upper {i}");
        assert_eq!(
            (bin.count, bin.mean_predicted, bin.observed_rate),
            (0, None, None)
        );
    }
    assert_eq!(expected_calibration_error(&table), 0.0);
}

#[test]
fn reliability_and_ece_match_sklearn() {
    for set in fixture()["sets"].as_array().unwrap() {
        let name = set["name"].as_str().unwrap();
        let table = reliability_table(&labels(set), &floats(&set["probabilities"]));
        let counts: Vec<u64> = table.iter().map(|b| b.count as u64).collect();
        let expected: Vec<u64> = set["bin_counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        assert_eq!(counts, expected, "{name}: bin counts");
        // calibration_curve lists the non-empty bins only.
        let filled: Vec<&ReliabilityBin> = table.iter().filter(|b| b.count > 0).collect();
        let prob_true = floats(&set["curve"]["prob_true"]);
        let prob_pred = floats(&set["curve"]["prob_pred"]);
        assert_eq!(filled.len(), prob_true.len(), "{name}");
        for ((bin, t), p) in filled.iter().zip(&prob_true).zip(&prob_pred) {
            assert!(
                (bin.observed_rate.unwrap() - t).abs() < 1e-12,
                "{name}: {bin:?} vs {t}"
            );
            assert!(
                (bin.mean_predicted.unwrap() - p).abs() < 1e-12,
                "{name}: {bin:?} vs {p}"
            );
        }
        for bin in table.iter().filter(|b| b.count == 0) {
            assert_eq!((bin.mean_predicted, bin.observed_rate), (None, None));
        }
        let ece = expected_calibration_error(&table);
        let want = set["ece"].as_f64().unwrap();
        assert!((ece - want).abs() < 1e-12, "{name}: ECE {ece} vs {want}");
    }
}

#[test]
fn an_inner_edge_belongs_to_the_bin_below() {
    // As calibration_curve's searchsorted: 0.1 in [0, 0.1], 0.2 in (0.1, 0.2], 1.0 in the last.
    let table = reliability_table(&[true, false, true, false], &[0.0, 0.1, 0.2, 1.0]);
    let counts: Vec<usize> = table.iter().map(|b| b.count).collect();
    assert_eq!(counts, [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    // By hand: bin 0 mean 0.05, rate 0.5 (gap 0.45, weight 2/4); bin 1 0.2 vs 1 (0.8, 1/4);
    // last 1.0 vs 0 (1.0, 1/4): 0.225 + 0.2 + 0.25.
    let ece = expected_calibration_error(&table);
    assert!((ece - 0.675).abs() < 1e-15, "{ece}");
}

#[test]
fn platt_matches_sklearn() {
    for set in fixture()["sets"].as_array().unwrap() {
        if set["platt"].is_null() {
            continue;
        }
        let name = set["name"].as_str().unwrap();
        let f = floats(&set["log_odds"]);
        let Calibration::Platt { a, b } = platt_scaling(&f, &labels(set)).unwrap();
        let platt = &set["platt"];
        // The same optimum, found by scipy to a gradient at rounding level.
        let (ta, tb) = (platt["a"].as_f64().unwrap(), platt["b"].as_f64().unwrap());
        assert!((a - ta).abs() < 1e-9, "{name}: a {a} vs {ta}");
        assert!((b - tb).abs() < 1e-9, "{name}: b {b} vs {tb}");
        // scikit-learn's own figures, opposite signs; its L-BFGS-B stops at a gradient of
        // 1e-6 (ftol 64 eps), so they are within about 1e-8 of the optimum, not closer.
        let (sa, sb) = (
            platt["sklearn_a"].as_f64().unwrap(),
            platt["sklearn_b"].as_f64().unwrap(),
        );
        assert!((a + sa).abs() < 1e-6, "{name}: a {a} vs -{sa}");
        assert!((b + sb).abs() < 1e-6, "{name}: b {b} vs -{sb}");
    }
}

#[test]
fn platt_maps_log_odds_through_the_fitted_sigmoid() {
    let c = Calibration::Platt { a: 0.5, b: -1.0 };
    assert_eq!(c.probability(2.0), sigmoid(0.0));
    assert_eq!(c.probability(4.0), sigmoid(1.0));
    assert_eq!(c.method(), CalibrationMethod::Platt);
    // Identity parameters leave the model's own probability.
    let identity = Calibration::Platt { a: 1.0, b: 0.0 };
    assert_eq!(identity.probability(0.3), sigmoid(0.3));
    assert!(Calibration::Platt {
        a: f64::NAN,
        b: 0.0
    }
    .validate()
    .is_err());
    // Serialised with its method as a tag.
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"method": "platt", "a": 0.5, "b": -1.0})
    );
    assert_eq!(serde_json::from_value::<Calibration>(json).unwrap(), c);
}

#[test]
fn platt_recovers_a_known_curve_on_many_rows() {
    // Labels drawn from sigmoid(0.6 f - 0.4), deterministic: the fit should land close.
    let mut state = 7u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let f: Vec<f64> = (0..20_000).map(|_| uniform() * 8.0 - 4.0).collect();
    let y: Vec<bool> = f
        .iter()
        .map(|&x| uniform() < sigmoid(0.6 * x - 0.4))
        .collect();
    let Calibration::Platt { a, b } = platt_scaling(&f, &y).unwrap();
    assert!((a - 0.6).abs() < 0.05 && (b + 0.4).abs() < 0.05, "{a} {b}");
}

#[test]
fn platt_refuses_what_it_cannot_fit_and_survives_equal_scores() {
    assert!(matches!(platt_scaling(&[], &[]), Err(ModelError::Empty(_))));
    assert!(matches!(
        platt_scaling(&[0.1, 0.2], &[true, true]),
        Err(ModelError::OneClass { .. })
    ));
    assert!(matches!(
        platt_scaling(&[0.1, f64::INFINITY], &[true, false]),
        Err(ModelError::NonFinite(_))
    ));
    assert!(platt_scaling(&[0.1], &[true, false]).is_err());
    // Every score equal: the slope is undetermined; the fit still ends with the smoothed
    // base rate, (1 + 1) / (1 + 2) and 1 / (2 + 2) averaged: 1 fraud of 3.
    let Calibration::Platt { a, b } =
        platt_scaling(&[0.0, 0.0, 0.0], &[true, false, false]).unwrap();
    let p = sigmoid(b);
    let target = (2.0 / 3.0 + 2.0 * 0.25) / 3.0;
    assert!(a.is_finite() && (p - target).abs() < 1e-9, "{a} {b} {p}");
}

#[test]
fn the_method_parses_and_names_itself() {
    assert_eq!("platt".parse(), Ok(CalibrationMethod::Platt));
    assert_eq!(" None ".parse(), Ok(CalibrationMethod::None));
    let error = "isotonic".parse::<CalibrationMethod>().unwrap_err();
    assert!(error.contains("none, platt"), "{error}");
    assert_eq!(CalibrationMethod::default().as_str(), "none");
    assert_eq!(
        serde_json::to_value(CalibrationMethod::Platt).unwrap(),
        "platt"
    );
}
