//! Concurrent writers to the PostgreSQL prediction log, as many Lambda containers would be.
//!
//! ```text
//! cargo run --release -p fraudrisk --example bench_log_writers -- \
//!     [--writers 64] [--seconds 20] [--batch 1] [--database-url URL]
//! ```
//!
//! Spawns `--writers` tasks, each with its own [`PostgresStore`] (pool size 1: one connection,
//! as a Lambda container serving one request at a time). Each calls
//! [`PredictionLog::log_predictions`] in a loop for `--seconds` with `--batch` entries per call:
//! 1 is a Lambda request (the predict function logs within the invocation), 16 is what
//! `fraudctl serve`'s background writer batches. Entries are the corrected seed applicant with
//! `credit_amount` varied, fresh UUID v7 ids, the current time.
//!
//! Prints a summary on standard error and one JSON object on standard output: predictions/s in
//! total, calls, per-call latency p50/p99/max in ms, errors. The database is migrated first; its
//! URL is `--database-url` or `FRAUDRISK_DATABASE_URL`. `scripts/bench-volume.sh` runs this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use fraudrisk::adapters::postgres::{PostgresSettings, PostgresStore};
use fraudrisk::ports::{PredictionLog, PredictionLogEntry, RecordStore};
use fraudrisk::request::seed_example_corrected;
use tokio::sync::Barrier;
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(about = "Concurrent writers to the PostgreSQL prediction log")]
struct Args {
    /// Concurrent writers, each with its own store and one connection.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// How long every writer writes.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Predictions per `log_predictions` call.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// The database (libpq URL).
    #[arg(long, env = "FRAUDRISK_DATABASE_URL")]
    database_url: String,
}

/// What one writer measured.
struct WriterResult {
    latencies_us: Vec<u64>,
    errors: u64,
}

fn entries(batch: usize, base: &serde_json::Value, counter: &mut u64) -> Vec<PredictionLogEntry> {
    (0..batch)
        .map(|_| {
            *counter += 1;
            let mut features = base.clone();
            features["credit_amount"] = serde_json::Value::from(250 + (*counter * 7919) % 18_000);
            PredictionLogEntry {
                prediction_id: Uuid::now_v7(),
                created_at: Utc::now(),
                model_version: 3,
                threshold: 0.5,
                probability_of_fraud: 0.12,
                fraud: false,
                features,
                username: Some("bench".to_string()),
                reason_codes: Vec::new(),
            }
        })
        .collect()
}

async fn writer(
    store: PostgresStore,
    args: Arc<Args>,
    start: Arc<Barrier>,
    writer_index: u64,
) -> WriterResult {
    let base = seed_example_corrected();
    let mut counter = writer_index * 1_000_000_000;
    let mut result = WriterResult {
        latencies_us: Vec::new(),
        errors: 0,
    };
    start.wait().await;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < deadline {
        let batch = entries(args.batch, &base, &mut counter);
        let began = Instant::now();
        match store.log_predictions(&batch).await {
            Ok(()) => result.latencies_us.push(began.elapsed().as_micros() as u64),
            Err(error) => {
                result.errors += 1;
                if result.errors == 1 {
                    eprintln!("writer {writer_index}: {error}");
                }
            }
        }
    }
    result
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Arc::new(Args::parse());
    if args.writers == 0 || args.batch == 0 {
        return Err("--writers and --batch must be at least 1".into());
    }
    let mut settings = PostgresSettings::from_url(&args.database_url)?;
    settings.pool_size = 1;

    // Connect every writer before the clock starts (a warm container has its connection).
    let first = PostgresStore::connect(&settings).await?;
    first.migrate().await?;
    let mut stores = vec![first];
    for _ in 1..args.writers {
        stores.push(PostgresStore::connect(&settings).await?);
    }

    let start = Arc::new(Barrier::new(args.writers + 1));
    let tasks: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(i, store)| tokio::spawn(writer(store, args.clone(), start.clone(), i as u64)))
        .collect();
    start.wait().await;
    let began = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let result = task.await?;
        latencies.extend(result.latencies_us);
        errors += result.errors;
    }
    let elapsed = began.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let calls = latencies.len();
    let predictions = calls * args.batch;
    let per_second = predictions as f64 / elapsed;
    let summary = serde_json::json!({
        "writers": args.writers,
        "batch": args.batch,
        "seconds": elapsed,
        "calls": calls,
        "predictions": predictions,
        "predictions_per_second": per_second,
        "calls_per_second": calls as f64 / elapsed,
        "p50_ms": percentile_ms(&latencies, 50.0),
        "p99_ms": percentile_ms(&latencies, 99.0),
        "max_ms": latencies.last().map(|us| *us as f64 / 1000.0),
        "errors": errors,
    });
    eprintln!(
        "bench_log_writers: {} writers, batch {}: {:.0} predictions/s ({} calls in {:.1} s), \
         per call p50 {:.2} ms, p99 {:.2} ms, {} errors",
        args.writers,
        args.batch,
        per_second,
        calls,
        elapsed,
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 99.0),
        errors
    );
    println!("{summary}");
    Ok(())
}
