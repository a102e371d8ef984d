//! Synthetic training data for the unit tests: every schema code can occur and the label
//! depends on a few features through a known logistic model, so a fit has signal to find.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::schema::{Applicant, Domain, FeatureKind, LabeledRecord, FEATURES, FEATURE_COUNT};

/// `distinct` random applicants, each repeated `repeats` times (like the seed's file).
pub fn records(distinct: usize, repeats: usize, seed: u64) -> Vec<LabeledRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut base = Vec::with_capacity(distinct);
    for _ in 0..distinct {
        let mut values = [0.0; FEATURE_COUNT];
        for (value, feature) in values.iter_mut().zip(FEATURES.iter()) {
            *value = match feature.domain {
                Domain::Codes(codes) => codes[rng.gen_range(0..codes.len())].0 as f64,
                Domain::Range { min, max } => {
                    let hi = max.min(min + 60);
                    rng.gen_range(min..=hi) as f64
                }
            };
        }
        // A hidden rule: fraud grows with the first numeric feature and with the first
        // nominal feature's lowest code, plus noise.
        let numeric = FEATURES
            .iter()
            .position(|f| f.kind == FeatureKind::Numeric)
            .unwrap_or(0);
        let nominal = FEATURES
            .iter()
            .position(|f| f.kind == FeatureKind::Nominal)
            .unwrap_or(0);
        let first_code = FEATURES[nominal].codes()[0] as f64;
        let z = -1.0
            + 0.08 * (values[numeric] - 20.0)
            + if values[nominal] == first_code {
                1.5
            } else {
                0.0
            };
        let p_fraud = 1.0 / (1.0 + (-z).exp());
        let creditability = if rng.gen::<f64>() < p_fraud { 0 } else { 1 };
        base.push(LabeledRecord {
            applicant: Applicant(values),
            creditability,
        });
    }
    let mut out = Vec::with_capacity(distinct * repeats);
    for _ in 0..repeats {
        out.extend_from_slice(&base);
    }
    out
}
