//! Model benchmarks: scoring one applicant (the predict hot path) and the full grid fit on
//! 10,000 rows (what /initialtrain does).
//!
//! Run: `cargo bench -p fraudrisk --bench model`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fraudrisk::model::{fit, TrainConfig};
use fraudrisk::schema::{Applicant, Domain, LabeledRecord, FEATURES, FEATURE_COUNT};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 1,000 distinct applicants drawn from the schema domains, each repeated 10 times (the shape
/// of the seed's reference file), labelled by a fixed logistic rule on three features.
fn records() -> Vec<LabeledRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut distinct = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut values = [0.0; FEATURE_COUNT];
        for (value, feature) in values.iter_mut().zip(FEATURES.iter()) {
            *value = match feature.domain {
                Domain::Codes(codes) => codes[rng.gen_range(0..codes.len())].0 as f64,
                // Keep counts in a realistic band rather than the whole allowed range.
                Domain::Range { min, max } => rng.gen_range(min..=max.min(min + 72)) as f64,
            };
        }
        let z = -1.2 + 0.04 * values[1] - 0.3 * values[0] + 0.2 * values[7];
        let fraud = rng.gen::<f64>() < 1.0 / (1.0 + (-z).exp());
        distinct.push(LabeledRecord {
            applicant: Applicant(values),
            creditability: if fraud { 0 } else { 1 },
        });
    }
    (0..10).flat_map(|_| distinct.iter().copied()).collect()
}

fn bench(c: &mut Criterion) {
    let data = records();
    let config = TrainConfig::default();
    let model = fit(&data, &config).unwrap().model;
    let applicant = data[17].applicant;

    c.bench_function("probability_of_fraud (one row)", |b| {
        b.iter(|| model.probability_of_fraud(black_box(&applicant)))
    });
    c.bench_function("predict with contributions (one row)", |b| {
        b.iter(|| model.predict(black_box(&applicant)))
    });

    let mut group = c.benchmark_group("fit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("grid of 5 alphas x 5 folds + refit, 10,000 rows", |b| {
        b.iter(|| fit(black_box(&data), &config).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
