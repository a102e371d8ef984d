//! The commands, each a few calls into the common crate.

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use fraudrisk::dataset::{
    distinct_overlap, generated_rows, read_applicants_csv, read_applicants_tolerant,
    read_labeled_csv, GeneratedKind, GeneratorConfig, SourceRow,
};
use fraudrisk::drift::{detect_drift, Correction, DriftConfig};
use fraudrisk::model::{
    evaluate, fit_owned, train_with_holdout, CalibrationMethod, CostMatrix, ModelArtifact,
    Provenance, TrainConfig,
};
use fraudrisk::monitor::MonitorSettings;
use fraudrisk::pipeline::{self, MonitorRequest, PipelineSettings, RetrainMode};
use fraudrisk::ports::RecordRole;
use fraudrisk::report::{drift_html, monitor_html};
use fraudrisk::request::{applicants_from_json, RequestError, SEED_EXAMPLE_JSON};
use fraudrisk::schema::{Applicant, FieldValue, LabeledRecord};

use crate::monitor_output;
use crate::output::{self, Spinner};
use crate::state::open;
use crate::{Cli, Command, Format, Generate, Mode, UserCommand};

/// Exit code for input the command refused (bad file, bad fields).
const EXIT_INVALID_INPUT: u8 = 2;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let format = cli.format;
    match cli.command {
        Command::Migrate => {
            let services = open(&cli.state).await?;
            let applied = services.records.migrate().await?;
            output::emit(
                format,
                &serde_json::json!({"applied": applied, "state": cli.state}),
                || {
                    outln!(
                        "Database at {} is up to date ({} migrations applied by this process).",
                        cli.state.display(),
                        applied.len()
                    )
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::LoadData(args) => {
            let services = open(&cli.state).await?;
            let mut batches: Vec<(String, RecordRole, Vec<SourceRow>)> = Vec::new();
            for (path, role) in [
                (&args.reference, RecordRole::Reference),
                (&args.new, RecordRole::New),
            ] {
                if let Some(path) = path {
                    let csv = read_labeled_csv(path)?;
                    if !csv.ignored_columns.is_empty() {
                        eprintln!(
                            "note: {} ignores columns {}",
                            path.display(),
                            csv.ignored_columns.join(", ")
                        );
                    }
                    batches.push((source_name(path), role, csv.rows));
                }
            }
            let generate = args.generate.or(if batches.is_empty() {
                Some(Generate::Both)
            } else {
                None
            });
            let config = GeneratorConfig {
                seed: args.seed,
                reference_rows: args.reference_rows,
                shifted_rows: args.shifted_rows,
            };
            if matches!(generate, Some(Generate::Both | Generate::Reference)) {
                batches.push((
                    format!("generated-reference-seed-{}", args.seed),
                    RecordRole::Reference,
                    generated_rows(GeneratedKind::Reference, config),
                ));
            }
            if matches!(generate, Some(Generate::Both | Generate::Shifted)) {
                batches.push((
                    format!("generated-shifted-seed-{}", args.seed),
                    RecordRole::New,
                    generated_rows(GeneratedKind::Shifted, config),
                ));
            }
            let mut results = Vec::new();
            for (source, role, rows) in &batches {
                let summary = services.records.load_records(source, *role, rows).await?;
                results.push((source.clone(), *role, summary));
            }
            output::print_load_summaries(format, &results);
            Ok(ExitCode::SUCCESS)
        }
        Command::Initialtrain(args) => {
            let services = open(&cli.state).await?;
            let spinner = Spinner::start(format, "Training on the reference rows (grid × 5 folds)");
            let summary = services
                .initial_train_with_force(&pipeline_settings(args.costs)?, args.force)
                .await;
            spinner.finish();
            match summary {
                Ok(summary) => {
                    output::print_training_summary(format, &summary);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => match error.hint() {
                    Some(hint) => {
                        eprintln!("error: {error}\nhint: {hint}");
                        Ok(ExitCode::FAILURE)
                    }
                    None => Err(error.into()),
                },
            }
        }
        Command::Retrain(args) => {
            let services = open(&cli.state).await?;
            let mode = match args.mode {
                Mode::Always => RetrainMode::Always,
                Mode::IfDrift => RetrainMode::IfDrift,
            };
            let mut settings = pipeline_settings(args.costs)?;
            if let Some(rows) = args.window_rows {
                settings.training_window.rows = Some(usize::try_from(rows)?);
            }
            if let Some(months) = args.window_months {
                settings.training_window.months = Some(months);
            }
            let spinner = Spinner::start(format, "Drift tests and retraining");
            let summary = services.retrain(&settings, mode).await;
            spinner.finish();
            output::print_retrain_summary(format, &summary?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Drift(args) => {
            let correction: Correction = args.correction.parse().map_err(|_| {
                anyhow!(
                    "--correction must be bonferroni, holm or benjamini-hochberg (got {:?})",
                    args.correction
                )
            })?;
            if !(args.alpha > 0.0 && args.alpha < 1.0) {
                bail!("--alpha must be between 0 and 1 (got {})", args.alpha);
            }
            // Each phase's time at debug level (`RUST_LOG=fraudctl=debug`), to see what a
            // large check spends its time on (parsing, by far, on the benchmark's files).
            let mut phase = Phase::start();
            let reference = read_applicants_csv(&args.reference)?;
            phase.done("read the reference file", reference.len());
            // The current file is examined, not trained on: a drifted feed's new codes are
            // reported, not a reason to refuse the check (unless --strict).
            let (current, quality) = if args.strict {
                (read_applicants_csv(&args.current)?, None)
            } else {
                let (current, quality) = read_applicants_tolerant(&args.current)?;
                (current, Some(quality))
            };
            phase.done("read the current file", current.len());
            let config = DriftConfig {
                alpha: args.alpha,
                correction,
                min_psi: args.min_psi,
            };
            let mut report = detect_drift(&reference, &current, &config);
            report.data_quality = quality;
            phase.done("drift tests", reference.len() + current.len());
            output::print_drift(format, &report);
            write_html_option(args.html.as_deref(), || {
                let context = format!(
                    "Current file {} against reference file {}.",
                    args.current.display(),
                    args.reference.display()
                );
                drift_html(&report, "Drift report", &context)
            })?;
            phase.done("output", report.features.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor(args) => {
            if let (Some(since), Some(until)) = (args.since, args.until) {
                if since >= until {
                    bail!("--since ({since}) must be before --until ({until})");
                }
            }
            let services = open(&cli.state).await?;
            let settings = MonitorSettings {
                drift: DriftConfig {
                    alpha: args.alpha,
                    ..DriftConfig::default()
                },
                min_roc_auc: args.min_roc_auc,
                min_labelled: args.min_labelled,
            };
            let request = MonitorRequest {
                since: args.since,
                until: args.until,
            };
            let spinner = Spinner::start(format, "Monitoring the served predictions");
            let report = pipeline::monitor_and_record(&services, request, &settings).await;
            spinner.finish();
            let report = report?;
            monitor_output::print_monitor(format, &report);
            write_html_option(args.html.as_deref(), || monitor_html(&report))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => train(args, format).await,
        Command::Predict(args) => predict(&cli.state, args, format).await,
        Command::Status => {
            let services = open(&cli.state).await?;
            let counts = services.records.record_counts().await?;
            let champion = pipeline::read_champion_pointer(services.artifacts.as_ref()).await?;
            let users = services.users.list_users().await?;
            let lock = services.records.training_lock_owner().await?;
            let waiting = services.records.pending_by_source().await?;
            output::print_status(
                format,
                &services,
                &counts,
                &waiting,
                champion.as_ref(),
                users.len(),
                lock.as_ref(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Unlock => {
            let services = open(&cli.state).await?;
            let removed = services.records.force_unlock_training().await?;
            output::emit(
                format,
                &serde_json::json!({ "removed": removed }),
                || match &removed {
                    Some(owner) => outln!("Removed the training lock of {}.", owner.describe()),
                    None => outln!("Nobody held the training lock; nothing was removed."),
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Outcomes(crate::OutcomesCommand::Load { file, overwrite }) => {
            crate::outcomes::load(&cli.state, &file, overwrite, format).await
        }
        Command::User(command) => user(&cli.state, command, format).await,
        Command::Model(crate::ModelCommand::Card { version, html }) => {
            crate::model_card::print(&cli.state, version, html.as_deref(), format).await
        }
    }
}

/// Writes a report page.
pub(crate) fn write_html(path: &Path, html: &str) -> Result<()> {
    std::fs::write(path, html)
        .with_context(|| format!("cannot write the HTML report to {}", path.display()))
}

/// `--html FILE`: writes the page and says where on standard error, so standard output stays
/// the table or the JSON it always was.
fn write_html_option(path: Option<&Path>, html: impl FnOnce() -> String) -> Result<()> {
    if let Some(path) = path {
        write_html(path, &html())?;
        eprintln!("HTML report written to {}", path.display());
    }
    Ok(())
}

/// The cost matrix, the review band's lower end and the calibration method: the environment
/// (or credentials.env), then the command's options.
fn decision_settings(
    args: crate::CostArgs,
) -> Result<(CostMatrix, Option<f64>, CalibrationMethod)> {
    let settings = fraudrisk::config::Settings::from_process()?;
    let mut costs = fraudrisk::config::cost_matrix(&settings)?;
    if let Some(cost) = args.cost_false_negative {
        costs.false_negative = cost;
    }
    if let Some(cost) = args.cost_false_positive {
        costs.false_positive = cost;
    }
    let review_below = match args.review_below {
        Some(p) => Some(p),
        None => fraudrisk::config::review_below(&settings)?,
    };
    let calibration = match args.calibration {
        Some(method) => method.into(),
        None => fraudrisk::config::calibration(&settings)?,
    };
    Ok((costs, review_below, calibration))
}

/// The life-cycle defaults with the decision settings of [`decision_settings`], and the
/// promotion gate's and the training window's from the environment.
fn pipeline_settings(args: crate::CostArgs) -> Result<PipelineSettings> {
    let mut settings = PipelineSettings::default();
    (
        settings.training.costs,
        settings.training.review_below,
        settings.training.calibration,
    ) = decision_settings(args)?;
    let environment = fraudrisk::config::Settings::from_process()?;
    settings.training.selection_rows = fraudrisk::config::selection_rows(&environment)?;
    settings.promotion = fraudrisk::config::promotion_gate(&environment)?;
    settings.training_window = fraudrisk::config::training_window(&environment)?;
    Ok(settings)
}

fn source_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

async fn train(args: crate::TrainArgs, format: Format) -> Result<ExitCode> {
    let data: Vec<LabeledRecord> = read_labeled_csv(&args.data)?
        .rows
        .into_iter()
        .map(|r| r.record)
        .collect();
    let (costs, review_below, calibration) = decision_settings(args.costs)?;
    let config = TrainConfig {
        seed: args.seed,
        costs,
        review_below,
        calibration,
        selection_rows: fraudrisk::config::selection_rows(
            &fraudrisk::config::Settings::from_process()?,
        )?,
        ..TrainConfig::default()
    };
    let spinner = Spinner::start(format, "Training (grid × 5 folds)");
    let (model, alpha, cv, metrics, training_rows, eval_rows, overlap) = match &args.eval {
        Some(eval_path) => {
            let eval: Vec<LabeledRecord> = read_labeled_csv(eval_path)?
                .rows
                .into_iter()
                .map(|r| r.record)
                .collect();
            let overlap = distinct_overlap(&data, &eval);
            let train_data = data.clone();
            let fitted =
                tokio::task::spawn_blocking(move || fit_owned(train_data, &config)).await??;
            let metrics = evaluate(&fitted.model, &eval, &costs)?;
            (
                fitted.model,
                fitted.chosen_alpha,
                fitted.cv,
                metrics,
                data.len(),
                eval.len(),
                overlap,
            )
        }
        None => {
            let all = data.clone();
            let outcome =
                tokio::task::spawn_blocking(move || train_with_holdout(all, &config)).await??;
            (
                outcome.model,
                outcome.chosen_alpha,
                outcome.cv,
                outcome.metrics,
                outcome.train_rows,
                outcome.holdout_rows,
                0,
            )
        }
    };
    spinner.finish();
    if overlap > 0 {
        eprintln!(
            "warning: {overlap} distinct applicants of the evaluation file also occur in the \
             training file; the metrics overstate how well the model generalises"
        );
    }
    let provenance = Provenance::now(
        training_rows,
        fraudrisk::model::distinct_row_count(&data),
        fraudrisk::dataset::fingerprint(&data),
        args.seed,
    );
    let threshold = model.threshold();
    let artifact = ModelArtifact::new(
        &model,
        costs,
        alpha,
        cv.clone(),
        Some(metrics.clone()),
        provenance,
    );
    if let Some(out) = &args.out {
        std::fs::write(out, artifact.to_json_bytes()?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    output::print_train(
        format,
        &metrics,
        (threshold, &costs, model.calibration()),
        alpha,
        &cv,
        training_rows,
        eval_rows,
        overlap,
        args.out.as_deref(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads the applicants a `predict` call names: a JSON body, name=value fields or the seed's example.
pub fn predict_input(
    args: &crate::PredictArgs,
) -> Result<std::result::Result<Vec<Applicant>, RequestError>> {
    if args.seed_example {
        let body: serde_json::Value = serde_json::from_str(SEED_EXAMPLE_JSON)?;
        return Ok(applicants_from_json(&body).map(|(a, _)| a));
    }
    if let Some(path) = &args.input {
        let mut text = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin().read_to_string(&mut text)?;
        } else {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        let body: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        return Ok(applicants_from_json(&body).map(|(a, _)| a));
    }
    if args.fields.is_empty() {
        bail!("give --input FILE, --field NAME=VALUE (all 20) or --seed-example");
    }
    let mut pairs = Vec::new();
    for field in &args.fields {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| anyhow!("--field takes NAME=VALUE (got {field:?})"))?;
        pairs.push((name, value));
    }
    Ok(
        Applicant::from_fields(pairs.iter().map(|(n, v)| (*n, FieldValue::Text(v))))
            .map(|a| vec![a])
            .map_err(RequestError::Invalid),
    )
}

async fn predict(state: &Path, args: crate::PredictArgs, format: Format) -> Result<ExitCode> {
    let applicants = match predict_input(&args)? {
        Ok(applicants) => applicants,
        Err(error) => {
            output::print_request_error(format, &error);
            return Ok(ExitCode::from(EXIT_INVALID_INPUT));
        }
    };
    let served = if let Some(path) = &args.model {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let artifact = ModelArtifact::from_json_bytes(&bytes)?;
        let model = artifact.model()?;
        let version = artifact.provenance.version.unwrap_or(0);
        applicants
            .iter()
            .map(|a| pipeline::ServedPrediction {
                // Not logged, so no id: an id names a logged prediction.
                prediction_id: None,
                prediction: model.predict(a),
                model_version: version,
            })
            .collect()
    } else {
        let services = open(state).await?;
        let champion = pipeline::load_champion(services.artifacts.as_ref())
            .await?
            .ok_or(pipeline::PipelineError::NoChampion)?;
        pipeline::predict_and_log(&champion, &applicants, services.predictions.as_ref(), None)
            .await?
    };
    output::print_predictions(format, &served);
    Ok(ExitCode::SUCCESS)
}

async fn user(state: &Path, command: UserCommand, format: Format) -> Result<ExitCode> {
    if let UserCommand::Add {
        username,
        password_stdin: false,
    } = &command
    {
        // The prompt reads the terminal; without one it could only fail with ENXIO.
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: no terminal to ask for the password of {username}; pipe it in instead: \
                 printf '%s\\n' \"$PASSWORD\" | fraudctl user add {username} --password-stdin"
            );
            return Ok(ExitCode::from(EXIT_INVALID_INPUT));
        }
    }
    let services = open(state).await?;
    match command {
        UserCommand::Add {
            username,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                let first = rpassword::prompt_password(format!("Password for {username}: "))?;
                let second = rpassword::prompt_password("Repeat the password: ")?;
                if first != second {
                    bail!("the passwords differ; nothing was stored");
                }
                first
            };
            fraudrisk::auth::add_user(services.users.as_ref(), &username, &password).await?;
            output::emit(format, &serde_json::json!({"added": username}), || {
                outln!("Added user {username}.")
            });
        }
        UserCommand::List => {
            let users = services.users.list_users().await?;
            output::print_users(format, &users);
        }
        UserCommand::Remove { username } => {
            if !services.users.remove_user(&username).await? {
                bail!("there is no user {username:?}");
            }
            output::emit(format, &serde_json::json!({"removed": username}), || {
                outln!("Removed user {username}.")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Times consecutive phases of a command and logs each at debug level.
struct Phase(std::time::Instant);

impl Phase {
    fn start() -> Self {
        Phase(std::time::Instant::now())
    }

    /// Logs the phase that just ended (`items`: rows or features it handled) and starts the next.
    fn done(&mut self, phase: &str, items: usize) {
        let now = std::time::Instant::now();
        tracing::debug!(
            phase,
            items,
            milliseconds = (now - self.0).as_secs_f64() * 1e3,
            "phase done"
        );
        self.0 = now;
    }
}
