//! `fraudctl demo`: the whole life cycle in a fresh state folder, on generated data.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SHIFTS};
use fraudrisk::monitor::MonitorSettings;
use fraudrisk::outcomes::{Outcome, OutcomeResult};
use fraudrisk::pipeline::{self, MonitorRequest, PipelineSettings, RetrainMode, RetrainOutcome};
use fraudrisk::ports::RecordRole;
use fraudrisk::report::monitor_html;
use fraudrisk::request::{applicants_from_json, seed_example_corrected, SEED_EXAMPLE_JSON};
use fraudrisk::services::Services;

use crate::monitor_output;
use crate::output::{self, Spinner};
use crate::state::open;
use crate::Format;

/// Files and folders the demo owns inside its state folder; nothing else is removed.
const DEMO_STATE_ENTRIES: &[&str] = &[
    "fraudrisk.sqlite3",
    "fraudrisk.sqlite3-wal",
    "fraudrisk.sqlite3-shm",
    "artifacts",
    "tracking",
    MONITOR_HTML,
];

/// The monitor's page, in the demo's state folder.
const MONITOR_HTML: &str = "monitor_report.html";

fn reset_state(state: &Path) -> Result<()> {
    if state.exists() {
        let unknown: Vec<String> = std::fs::read_dir(state)
            .with_context(|| format!("cannot read {}", state.display()))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !DEMO_STATE_ENTRIES.contains(&name.as_str()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "{} holds files the demo did not make ({}); give the demo an empty folder with --state",
                state.display(),
                unknown.join(", ")
            );
        }
        for entry in DEMO_STATE_ENTRIES {
            let path = state.join(entry);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else if path.exists() {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

fn step(format: Format, text: &str) {
    if format == Format::Table {
        outln!("\n== {text}");
    }
}

/// Predictions the demo serves after the first training, and how many of them get outcomes.
const SERVED: usize = 300;
const REPORTED: usize = 180;

struct ReportedOutcomes {
    recorded: usize,
    fraud: usize,
}

/// Scores shifted applicants through the API's code path (`predict_and_log`), then reports
/// the true label of the first [`REPORTED`] as their outcome, as a fraud team would weeks
/// later: each becomes a labelled row waiting for the retrain.
async fn serve_and_report(
    services: &Services,
    champion: &pipeline::Champion,
    config: GeneratorConfig,
) -> Result<ReportedOutcomes> {
    let traffic = generated_rows(
        GeneratedKind::Shifted,
        GeneratorConfig {
            seed: config.seed.wrapping_add(1),
            shifted_rows: SERVED,
            ..config
        },
    );
    let applicants: Vec<_> = traffic.iter().map(|row| row.record.applicant).collect();
    let served = pipeline::predict_and_log(
        champion,
        &applicants,
        services.predictions.as_ref(),
        Some("demo"),
    )
    .await?;
    let observed_at = Utc::now();
    let outcomes: Vec<Outcome> = served
        .iter()
        .zip(&traffic)
        .take(REPORTED)
        .filter_map(|(prediction, row)| {
            Some(Outcome {
                prediction_id: prediction.prediction_id?,
                fraud: row.record.is_fraud(),
                observed_at,
            })
        })
        .collect();
    let decisions = services
        .outcomes
        .record_outcomes(&outcomes, false, Some("demo"))
        .await?;
    Ok(ReportedOutcomes {
        recorded: decisions
            .iter()
            .filter(|d| d.result == OutcomeResult::Recorded)
            .count(),
        fraud: outcomes.iter().filter(|o| o.fraud).count(),
    })
}

pub async fn run(state_root: &Path, seed: u64, format: Format) -> Result<ExitCode> {
    let started = Instant::now();
    let state = state_root.join("demo");
    reset_state(&state)?;
    let services = open(&state).await?;
    let settings = PipelineSettings::default();
    let config = GeneratorConfig {
        seed,
        ..GeneratorConfig::default()
    };
    let mut report = serde_json::Map::new();

    step(
        format,
        &format!(
            "1. Generate {} reference rows (seed {seed}) into {}",
            config.reference_rows,
            state.display()
        ),
    );
    let reference = generated_rows(GeneratedKind::Reference, config);
    let loaded = services
        .records
        .load_records(
            &format!("generated-reference-seed-{seed}"),
            RecordRole::Reference,
            &reference,
        )
        .await?;
    if format == Format::Table {
        outln!("Loaded {} reference rows.", loaded.inserted);
    }

    step(format, "2. Initial training: version 1 becomes champion");
    let spinner = Spinner::start(format, "Training: alpha grid × 5 folds");
    let trained = services.initial_train(&settings).await;
    spinner.finish();
    let trained = trained?;
    if format == Format::Table {
        output::print_training_summary(format, &trained);
    }
    report.insert("initialtrain".into(), serde_json::to_value(&trained)?);

    step(format, "3. Predict the seed's documented example");
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await?
        .ok_or(pipeline::PipelineError::NoChampion)?;
    let seed_body: serde_json::Value = serde_json::from_str(SEED_EXAMPLE_JSON)?;
    match applicants_from_json(&seed_body) {
        Ok(_) => bail!("the seed's example was expected to fail validation"),
        Err(error) => {
            if format == Format::Table {
                outln!("As documented, the seed's example is refused: {error}");
                outln!("(no_of_dependents is a 0/1 code in the seed's data; see the README.)");
                outln!("With no_of_dependents = 1:");
            }
            report.insert("seed_example_error".into(), error.to_string().into());
        }
    }
    let (applicants, _) = applicants_from_json(&seed_example_corrected())
        .context("the corrected example is invalid")?;
    let served = pipeline::predict_and_log(
        &champion,
        &applicants,
        services.predictions.as_ref(),
        Some("demo"),
    )
    .await?;
    if format == Format::Table {
        for s in &served {
            output::print_one_prediction(s);
        }
    }
    report.insert("prediction".into(), serde_json::to_value(&served)?);

    step(
        format,
        &format!(
            "4. Load {} shifted new rows (the seed's data_insertion step)",
            config.shifted_rows
        ),
    );
    if format == Format::Table {
        for shift in SHIFTS {
            outln!("  - {}: {}", shift.feature, shift.description);
        }
    }
    let shifted = generated_rows(GeneratedKind::Shifted, config);
    services
        .records
        .load_records(
            &format!("generated-shifted-seed-{seed}"),
            RecordRole::New,
            &shifted,
        )
        .await?;

    step(
        format,
        &format!(
            "5. Serve {SERVED} shifted applicants, then report the fraud outcomes of {REPORTED} of them"
        ),
    );
    let served_since = Utc::now();
    let outcomes = serve_and_report(&services, &champion, config).await?;
    if format == Format::Table {
        outln!(
            "Served {SERVED} predictions (each logged with its id); outcomes: {} recorded as \
             labelled rows, {} of them fraud.",
            outcomes.recorded,
            outcomes.fraud
        );
        outln!("Rows waiting for the retrain, by source:");
        for (source, count) in services.records.pending_by_source().await? {
            outln!("  {source}: {count}");
        }
    }
    report.insert(
        "outcomes".into(),
        serde_json::json!({"served": SERVED, "recorded": outcomes.recorded, "fraud": outcomes.fraud}),
    );

    step(
        format,
        "6. Retrain: drift tests, challenger, promotion decision",
    );
    let spinner = Spinner::start(format, "Drift tests and training the challenger");
    let retrained = services.retrain(&settings, RetrainMode::Always).await;
    spinner.finish();
    let retrained = retrained?;
    if format == Format::Table {
        output::print_retrain_summary(format, &retrained);
    }
    report.insert("retrain".into(), serde_json::to_value(&retrained)?);

    step(
        format,
        "7. Monitor the traffic served in step 5 against the champion's training data",
    );
    let request = MonitorRequest {
        since: Some(served_since),
        until: None,
    };
    let monitored =
        pipeline::monitor_and_record(&services, request, &MonitorSettings::default()).await?;
    if format == Format::Table {
        monitor_output::print_monitor(format, &monitored);
    }
    report.insert("monitor".into(), serde_json::to_value(&monitored)?);
    let html_path = state.join(MONITOR_HTML);
    crate::commands::write_html(&html_path, &monitor_html(&monitored))?;
    report.insert(
        "monitor_html".into(),
        html_path.display().to_string().into(),
    );
    let elapsed = started.elapsed();
    report.insert("seconds".into(), elapsed.as_secs_f64().into());
    match format {
        Format::Json => outln!("{}", serde_json::Value::Object(report)),
        Format::Table => {
            outln!(
                "\nDone in {:.1} s. Champion: version {}{}. State: {}",
                elapsed.as_secs_f64(),
                retrained.champion_version,
                if retrained.outcome == RetrainOutcome::Promoted {
                    " (the challenger was promoted)"
                } else {
                    ""
                },
                state.display()
            );
            outln!(
                "Monitor report (open it in a browser): {}",
                html_path.display()
            );
            outln!(
                "Next: fraudctl --state {0} status, or serve the API: fraudctl --state {0} serve",
                state.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
