//! Shared helpers of the tests that load fraudrisk models with MLflow's Python client
//! (scripts/pyfunc_check.py in the project's venv).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::model::Model;
use fraudrisk::schema::{Applicant, Domain, FEATURES};

use crate::it_common;

/// Generated applicants, then one applicant per code (or range end) of every feature, so every
/// one-hot column and the extremes of every range are scored.
pub fn applicants() -> Vec<Applicant> {
    let rows = generated_rows(
        GeneratedKind::Shifted,
        GeneratorConfig {
            seed: 11,
            reference_rows: 0,
            shifted_rows: 300,
        },
    );
    let mut out: Vec<Applicant> = rows.iter().map(|r| r.record.applicant).collect();
    let base = out[0];
    for (i, feature) in FEATURES.iter().enumerate() {
        let values: Vec<i64> = match feature.domain {
            Domain::Range { min, max } => vec![min, max],
            Domain::Codes(codes) => codes.iter().map(|(c, _)| *c).collect(),
        };
        for value in values {
            let mut applicant = base;
            applicant.0[i] = value as f64;
            out.push(applicant);
        }
    }
    out
}

pub fn write_applicants(path: &Path, applicants: &[Applicant]) {
    let rows: Vec<serde_json::Value> = applicants.iter().map(Applicant::to_json).collect();
    std::fs::write(path, serde_json::to_vec(&rows).unwrap()).unwrap();
}

/// Runs scripts/pyfunc_check.py; its JSON on success, a panic with its stderr otherwise.
pub fn pyfunc_check(args: &[&str]) -> serde_json::Value {
    let output = Command::new(it_common::python())
        .arg(it_common::workspace_root().join("scripts/pyfunc_check.py"))
        .args(args)
        .output()
        .expect("run pyfunc_check.py");
    assert!(
        output.status.success(),
        "pyfunc_check.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("pyfunc_check.py prints JSON")
}

/// Every probability from Python against the Rust model's, to 1e-12 (absolute).
pub fn assert_same_probabilities(
    python: &serde_json::Value,
    model: &Model,
    applicants: &[Applicant],
) {
    let python: Vec<f64> = python
        .as_array()
        .expect("a list of probabilities")
        .iter()
        .map(|p| p.as_f64().expect("a number"))
        .collect();
    assert_eq!(python.len(), applicants.len());
    let mut worst = 0.0f64;
    for (i, (p, applicant)) in python.iter().zip(applicants).enumerate() {
        let rust = model.probability_of_fraud(applicant);
        let difference = (p - rust).abs();
        assert!(
            difference <= 1e-12,
            "applicant {i}: Python {p}, Rust {rust} (difference {difference:e})"
        );
        worst = worst.max(difference);
    }
    eprintln!(
        "{} probabilities agree; largest difference {worst:e}",
        python.len()
    );
}
