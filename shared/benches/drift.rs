//! Drift-check benchmarks: `detect_drift` on the seed's shape (10,000 reference vs 2,000 current
//! rows; aim under 5 ms) and at scale (1,000,000 vs 200,000; aim under 30 ms).
//!
//! Run: `cargo bench -p fraudrisk --bench drift`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fraudrisk::drift::{detect_drift, DriftConfig};
use fraudrisk::schema::{Applicant, Domain, FEATURES, FEATURE_COUNT};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` applicants drawn from the schema domains (deterministic per seed). With `shifted`, the
/// numeric features move up by a few units and the categorical ones favour their first code,
/// so the current data drifts as the seed's shifted file does.
fn applicants(n: usize, seed: u64, shifted: bool) -> Vec<Applicant> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut values = [0.0; FEATURE_COUNT];
            for (value, feature) in values.iter_mut().zip(FEATURES.iter()) {
                *value = match feature.domain {
                    Domain::Codes(codes) => {
                        let k = if shifted && rng.gen_bool(0.1) {
                            0
                        } else {
                            rng.gen_range(0..codes.len())
                        };
                        codes[k].0 as f64
                    }
                    // Counts in a realistic band rather than the whole allowed range.
                    Domain::Range { min, max } => {
                        let v =
                            rng.gen_range(min..=max.min(min + 72)) + if shifted { 2 } else { 0 };
                        v.min(max) as f64
                    }
                };
            }
            Applicant(values)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = DriftConfig::default();

    let reference = applicants(10_000, 1, false);
    let current = applicants(2_000, 2, true);
    let mut group = c.benchmark_group("detect_drift");
    group.bench_function("10k_vs_2k", |b| {
        b.iter(|| detect_drift(black_box(&reference), black_box(&current), &config))
    });
    drop((reference, current));

    let reference = applicants(1_000_000, 3, false);
    let current = applicants(200_000, 4, true);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("1m_vs_200k", |b| {
        b.iter(|| detect_drift(black_box(&reference), black_box(&current), &config))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
