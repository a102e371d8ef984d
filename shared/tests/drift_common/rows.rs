//! Rows of valid applicants with one feature varied, for the drift tests that go through
//! `detect_drift`: shared by `shared/tests/drift_counting.rs` (through `drift_common`) and the
//! unit tests of `shared/src/drift/detect.rs`, which includes this file by path because a
//! library's unit tests cannot see an integration test's modules. The parent module brings
//! the schema's items into scope (the crate's own in one, `fraudrisk::schema` in the other).

use super::{Applicant, Domain, FeatureKind, FEATURES};

/// A valid applicant: every feature at its smallest allowed value.
pub fn base() -> Applicant {
    let mut values = [0.0; FEATURES.len()];
    for (v, f) in values.iter_mut().zip(FEATURES.iter()) {
        *v = match f.domain {
            Domain::Range { min, .. } => min as f64,
            Domain::Codes(codes) => codes[0].0 as f64,
        };
    }
    Applicant(values)
}

/// Rows whose feature `j` takes `values` in turn, all else at [`base`].
pub fn rows_with(j: usize, values: &[f64]) -> Vec<Applicant> {
    values
        .iter()
        .map(|&v| {
            let mut a = base();
            a.0[j] = v;
            a
        })
        .collect()
}

/// The schema position of the first feature of `kind`.
pub fn first_of(kind: FeatureKind) -> usize {
    FEATURES
        .iter()
        .position(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} feature in the schema"))
}
