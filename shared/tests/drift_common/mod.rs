//! Shared helpers of the drift tests (drift_scipy.rs, drift_ks_scipy.rs, drift_counting.rs):
//! reading a fixture file, its numbers, the large samples it stores as SplitMix64 specs, and
//! ([`rows`]) applicant rows with one feature varied.

#![allow(dead_code)] // each test crate uses a different part

use fraudrisk::schema::{Applicant, Domain, FeatureKind, FEATURES};
use serde_json::Value;

pub mod rows;

/// A fixture file of `tests/fixtures/drift/`, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/drift/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A fixture number; NaN and infinities are stored as strings (JSON has none).
pub fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014), as in the generator.
pub fn splitmix(seed: u64, n: usize) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect()
}

pub fn uniforms(seed: u64, n: usize) -> Vec<f64> {
    splitmix(seed, n)
        .into_iter()
        .map(|v| (v >> 11) as f64 * 2f64.powi(-53))
        .collect()
}

/// A sample stored inline (`reference`) or as a SplitMix64 spec (`reference_spec`), re-created
/// with the generator's exact floating-point operations.
pub fn sample(case: &Value, side: &str) -> Vec<f64> {
    if let Some(values) = case[side].as_array() {
        return values.iter().map(num).collect();
    }
    let spec = &case[format!("{side}_spec")];
    let n = spec["n"].as_u64().unwrap() as usize;
    let seed = spec["seed"].as_u64().unwrap();
    match spec["kind"].as_str().unwrap() {
        "irwin_hall" => {
            let u = uniforms(seed, 4 * n);
            let (loc, scale) = (num(&spec["loc"]), num(&spec["scale"]));
            u.chunks_exact(4)
                .map(|u| loc + scale * ((((u[0] + u[1]) + u[2]) + u[3]) - 2.0))
                .collect()
        }
        "codes" => {
            let (lo, k) = (spec["lo"].as_u64().unwrap(), spec["k"].as_u64().unwrap());
            splitmix(seed, n)
                .into_iter()
                .map(|v| (lo + v % k) as f64)
                .collect()
        }
        // The k-th smallest of m uniforms: Beta(k, m + 1 - k).
        "beta_order" => {
            let (k, m) = (
                spec["k"].as_u64().unwrap() as usize,
                spec["m"].as_u64().unwrap() as usize,
            );
            uniforms(seed, m * n)
                .chunks_exact(m)
                .map(|row| {
                    let mut row = row.to_vec();
                    row.sort_by(f64::total_cmp);
                    row[k - 1]
                })
                .collect()
        }
        other => panic!("unknown sample kind {other}"),
    }
}
