//! Store benchmarks on the real services (see `scripts/services.sh`):
//! - load-data of 12,000 rows (10,000 reference + 2,000 new, the seed's data) into PostgreSQL;
//! - load-data of 1,000,000 rows into PostgreSQL;
//! - retrain end to end on 12,000 rows (drift test, grid fit, comparison) with MLflow logging,
//!   S3 artifacts and the champion pointer.
//!
//! Each measurement runs on a fresh database (and S3 prefix, MLflow experiment), so no run
//! warms the next one's tables. Run:
//!
//! ```text
//! bash scripts/services.sh start
//! cargo bench -p fraudrisk --bench store
//! ```
//!
//! The services' settings come from their env file (`scripts/services.sh start` writes it);
//! without it the bench says so and does nothing.

#[path = "../tests/it_common/mod.rs"]
mod it_common;

use std::time::{Duration, Instant};

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SourceRow};
use fraudrisk::pipeline::{PipelineSettings, RetrainMode};
use fraudrisk::ports::RecordRole;
use fraudrisk::services::Services;
use it_common::TestDatabase;

fn rows(kind: GeneratedKind, count: usize, seed: u64) -> Vec<SourceRow> {
    generated_rows(
        kind,
        GeneratorConfig {
            seed,
            reference_rows: count,
            shifted_rows: count,
        },
    )
}

fn summary(label: &str, samples: &[Duration], rows: Option<usize>) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let best = sorted[0];
    let rate = rows
        .map(|n| format!(", {:.0} rows/s (median)", n as f64 / median.as_secs_f64()))
        .unwrap_or_default();
    println!(
        "{label}: median {:.3} s, best {:.3} s over {} run(s){rate}",
        median.as_secs_f64(),
        best.as_secs_f64(),
        samples.len()
    );
}

async fn fresh_services(label: &str) -> (TestDatabase, Services, tempfile::TempDir) {
    let database = TestDatabase::create(label).await;
    let config =
        it_common::isolated_config(&database, &it_common::unique(&format!("bench/{label}")));
    let state = tempfile::tempdir().expect("tempdir");
    let services = Services::production(&config, state.path())
        .await
        .expect("services");
    (database, services, state)
}

async fn load_12k() -> Duration {
    let (_database, services, _state) = fresh_services("bench_load12k").await;
    let reference = rows(GeneratedKind::Reference, 10_000, 42);
    let shifted = rows(GeneratedKind::Shifted, 2_000, 42);
    let started = Instant::now();
    services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .expect("load reference");
    services
        .records
        .load_records("shifted", RecordRole::New, &shifted)
        .await
        .expect("load shifted");
    started.elapsed()
}

async fn load_1m() -> Duration {
    let (_database, services, _state) = fresh_services("bench_load1m").await;
    let reference = rows(GeneratedKind::Reference, 1_000_000, 7);
    let started = Instant::now();
    let summary = services
        .records
        .load_records("reference-1m", RecordRole::Reference, &reference)
        .await
        .expect("load 1M");
    let elapsed = started.elapsed();
    assert_eq!(summary.inserted, 1_000_000);
    elapsed
}

async fn retrain_12k() -> (Duration, Duration) {
    let (_database, services, _state) = fresh_services("bench_retrain").await;
    let name = it_common::unique("bench-retrain");
    let settings = PipelineSettings {
        experiment: name.clone(),
        model_name: name,
        ..PipelineSettings::default()
    };
    services
        .records
        .load_records(
            "reference",
            RecordRole::Reference,
            &rows(GeneratedKind::Reference, 10_000, 42),
        )
        .await
        .expect("load reference");
    let started = Instant::now();
    services
        .initial_train(&settings)
        .await
        .expect("initialtrain");
    let initial = started.elapsed();
    services
        .records
        .load_records(
            "shifted",
            RecordRole::New,
            &rows(GeneratedKind::Shifted, 2_000, 42),
        )
        .await
        .expect("load shifted");
    let started = Instant::now();
    services
        .retrain(&settings, RetrainMode::Always)
        .await
        .expect("retrain");
    (initial, started.elapsed())
}

fn main() {
    if !it_common::services_env_file().is_file() {
        println!(
            "store bench: skipped: the services are not up (no {}; run bash scripts/services.sh start)",
            it_common::services_env_file().display()
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..5 {
            samples.push(load_12k().await);
        }
        summary(
            "load-data 12,000 rows into PostgreSQL (COPY + insert)",
            &samples,
            Some(12_000),
        );

        let samples = vec![load_1m().await, load_1m().await];
        summary(
            "load-data 1,000,000 rows into PostgreSQL (COPY + insert)",
            &samples,
            Some(1_000_000),
        );

        let mut initial = Vec::new();
        let mut retrained = Vec::new();
        for _ in 0..3 {
            let (i, r) = retrain_12k().await;
            initial.push(i);
            retrained.push(r);
        }
        summary(
            "initialtrain on 10,000 rows with MLflow logging (for reference)",
            &initial,
            None,
        );
        summary(
            "retrain end to end on 12,000 rows with MLflow logging",
            &retrained,
            None,
        );
    });
}
