//! Where the p-values' tails come from, measured: statrs 0.18 and the project's own functions
//! against scipy at every point of `tests/fixtures/drift/special_functions.json` (written by
//! `generate_drift_fixtures.py`: scipy's survival functions from p = 0.9 down to 1e-300).
//!
//! The functions taken from statrs must agree to the drift tests' relative 1e-9 at every point.
//! The Student t tail stays the project's own because statrs misses 1e-9 at large degrees of
//! freedom; the test asserts that it still does, so when a statrs release gets it right the
//! test fails and says to switch. Run with `--nocapture` to see every error.

use super::special::{chi_square_sf, normal_two_sided, student_t_two_sided};
use serde_json::Value;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::gamma::ln_gamma;

/// The drift tests' agreement with scipy (`tests/drift_scipy.rs`).
const REL_TOL: f64 = 1e-9;

/// Degrees of freedom where statrs's Student t tail misses 1e-9: 2e6 is about the Welch dof of
/// a million rows against a million (the drift fixtures have such a case, dof 1.94e6), 1e7 ten
/// million rows.
const STATRS_T_SHORT_DF: [f64; 2] = [2e6, 1e7];

fn fixture(key: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/drift/special_functions.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let points = file[key].as_array().cloned().unwrap_or_default();
    assert!(!points.is_empty(), "{path}: no {key} points");
    points
}

fn num(point: &Value, field: &str) -> f64 {
    point[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {point}"))
}

fn rel(value: f64, expected: f64) -> f64 {
    if value == expected {
        0.0
    } else {
        ((value - expected) / expected).abs()
    }
}

/// Asserts one statrs-backed value within the tolerance and returns its error.
fn within(what: &str, value: f64, expected: f64) -> f64 {
    let e = rel(value, expected);
    println!("{what}: scipy {expected:.6e}, rel error {e:.2e}");
    assert!(
        e <= REL_TOL,
        "{what}: {value:e} vs scipy {expected:e} (rel {e:e}): statrs no longer meets 1e-9 here"
    );
    e
}

#[test]
fn statrs_tails_in_use_agree_with_scipy() {
    let mut worst = [0.0_f64; 3];
    let mut erfc_worst = 0.0_f64;
    for point in fixture("normal_two_sided") {
        let (z, p) = (num(&point, "z"), num(&point, "p_value"));
        let e = within(
            &format!("normal (statrs ChiSquared(1)::sf of z^2) z = {z:.4}"),
            normal_two_sided(z),
            p,
        );
        worst[0] = worst[0].max(e);
        // Not used: statrs's erfc is within 1e-9 too, but ~1000 times further off than the above.
        erfc_worst = erfc_worst.max(rel(2.0 * Normal::standard().sf(z), p));
    }
    for point in fixture("chi_square_sf") {
        let (dof, x) = (num(&point, "dof"), num(&point, "statistic"));
        let e = within(
            &format!("chi-square (statrs ChiSquared::sf) dof {dof}, x = {x:.4e}"),
            chi_square_sf(dof, x),
            num(&point, "p_value"),
        );
        worst[1] = worst[1].max(e);
    }
    for point in fixture("ln_gamma") {
        let x = num(&point, "x");
        let e = within(
            &format!("statrs ln_gamma({x})"),
            ln_gamma(x),
            num(&point, "value"),
        );
        worst[2] = worst[2].max(e);
    }
    println!(
        "largest rel error from statrs: normal {:.2e} (through Normal::sf, i.e. erfc: {erfc_worst:.2e}), \
         chi-square {:.2e}, ln_gamma {:.2e}",
        worst[0], worst[1], worst[2]
    );
}

#[test]
fn student_t_stays_ours_while_statrs_misses_large_dof() {
    let mut ours_worst = 0.0_f64;
    let mut statrs_worst_at = STATRS_T_SHORT_DF.map(|_| 0.0_f64);
    for point in fixture("student_t_two_sided") {
        let (df, t, p) = (num(&point, "df"), num(&point, "t"), num(&point, "p_value"));
        let statrs_p = StudentsT::new(0.0, 1.0, df)
            .map(|d| 2.0 * d.sf(t))
            .unwrap_or_else(|e| panic!("df {df}: {e}"));
        let (statrs_e, ours_e) = (rel(statrs_p, p), rel(student_t_two_sided(t, df), p));
        println!(
            "student t df {df:e}, t = {t:.4e}: scipy {p:.6e}, rel error statrs {statrs_e:.2e}, ours {ours_e:.2e}"
        );
        assert!(
            ours_e <= REL_TOL,
            "df {df}, t {t}: ours off scipy by {ours_e:e}"
        );
        ours_worst = ours_worst.max(ours_e);
        if let Some(i) = STATRS_T_SHORT_DF.iter().position(|&d| d == df) {
            statrs_worst_at[i] = statrs_worst_at[i].max(statrs_e);
        }
    }
    println!("student t: largest rel error ours {ours_worst:.2e}");
    for (df, statrs_e) in STATRS_T_SHORT_DF.iter().zip(statrs_worst_at) {
        println!("student t: largest rel error statrs at df {df:e}: {statrs_e:.2e}");
        assert!(
            statrs_e > REL_TOL,
            "statrs's Student t tail now meets 1e-9 at df {df:e} (worst {statrs_e:.2e}): \
             use statrs::distribution::StudentsT in special.rs and update the README's table"
        );
    }
}
