//! `fraudctl`: the fraud-risk service on one machine.
//!
//! Every command runs the same library code as the Lambda functions, over the embedded
//! defaults (SQLite and folders below `--state`).

// Output goes through `outln!`, which ends the process quietly when standard output is a closed
// pipe (`fraudctl ... | head -1`); `println!` would panic there.
#![deny(clippy::print_stdout)]

/// `println!` for command output: a closed standard output (a pipe whose reader is gone) ends
/// the process with exit code 0, as `head` expects; any other write error exits with 1.
macro_rules! outln {
    () => {
        $crate::output::write_stdout_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout_line(format_args!($($arg)*))
    };
}

// mimalloc rather than glibc's malloc: allocation was a fifth of `serve`'s CPU under load
// (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod commands;
mod demo;
mod model_card;
mod monitor_output;
mod outcomes;
mod output;
mod progress;
mod serve;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The fraud-risk service on your machine: data, training, drift, prediction, users, and
/// the HTTP API.
#[derive(Parser, Debug)]
#[command(name = "fraudctl", version, about, long_about = None)]
struct Invocation {
    /// Local state folder (SQLite database, artifacts, tracking runs).
    #[arg(long, global = true, env = fraudrisk::config::ENV_STATE_DIR, default_value = fraudrisk::services::DEFAULT_STATE_DIR)]
    state: PathBuf,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    #[command(subcommand)]
    command: TopCommand,
}

// `serve` runs until stopped and has no output format, and `demo` runs the other commands'
// steps in its own state folder, so both are dispatched here; the one-shot commands go to
// `commands::run` unchanged.
#[derive(Subcommand, Debug)]
enum TopCommand {
    /// The whole life cycle on generated data, in a fresh state folder.
    Demo(DemoArgs),
    #[command(flatten)]
    OneShot(Command),
    /// Serve the HTTP API (hello, initialtrain, retrain, predict, outcomes) on a local address.
    Serve(serve::ServeArgs),
}

/// The global options and a one-shot command, as `commands::run` takes them.
#[derive(Debug)]
struct Cli {
    state: PathBuf,
    format: Format,
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Readable tables.
    Table,
    /// One JSON object on standard output.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or upgrade the database tables.
    Migrate,
    /// Load labelled rows: generated (the seed's 10,000 reference + 2,000 shifted) or from CSV files.
    LoadData(LoadDataArgs),
    /// Train on the reference rows, register version 1 (or the next), make it champion.
    ///
    /// Refuses to replace a champion that retrain promoted (it was compared; this would not
    /// be) unless --force is given.
    Initialtrain(InitialtrainArgs),
    /// Drift-test waiting rows, train a challenger, promote it if it is not worse.
    Retrain(RetrainArgs),
    /// Drift tests between two CSV files.
    Drift(DriftArgs),
    /// Watch what was served: input and score drift, data quality, realized performance
    /// per version, week and segment, and alerts, since the champion's promotion.
    Monitor(MonitorArgs),
    /// Train a model on a CSV file and evaluate it on another (or on a held-out split).
    Train(TrainArgs),
    /// Score applicants with the champion or a model file.
    Predict(PredictArgs),
    /// Rows, champion, users and who holds the training lock, at a glance.
    Status,
    /// Remove the training lock, whoever holds it, and print what was removed.
    ///
    /// A lock left by a killed process on this host is taken over by the next training on
    /// its own; this is for the rest (a process on another host, a hung one). A training
    /// still running under the removed lock does not promote its model.
    Unlock,
    /// Fraud outcomes of served predictions, by prediction id.
    #[command(subcommand)]
    Outcomes(OutcomesCommand),
    /// Manage API users.
    #[command(subcommand)]
    User(UserCommand),
    /// A model version's documents.
    #[command(subcommand)]
    Model(ModelCommand),
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Print a version's model card (Markdown; the card's JSON with --format json): intended
    /// use, training data, threshold and costs, holdout figures with the reliability table,
    /// figures per segment, drift at training time, the promotion decision, limitations.
    Card {
        /// The version (default: the champion).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        version: Option<u32>,
        /// Also write the card as a self-contained HTML page to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum OutcomesCommand {
    /// Record outcomes from a file: CSV with a header naming prediction_id,fraud[,observed_at],
    /// or JSON lines of the same fields. The file is checked whole first: one bad line
    /// refuses it (exit 2, naming line and column) and nothing is stored.
    Load {
        /// The CSV or JSON-lines file.
        file: PathBuf,
        /// Replace a different stored outcome whose labelled row is still waiting.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Args, Debug)]
struct InitialtrainArgs {
    /// Replace the champion even if retrain promoted it after a comparison.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    costs: CostArgs,
}

/// The cost matrix the decision threshold minimises, the optional review band and the
/// calibration; each option wins over its variable.
#[derive(Args, Debug, Clone, Copy)]
struct CostArgs {
    /// Cost of a missed fraud (default: FRAUDRISK_COST_FALSE_NEGATIVE, else 5); above 0.
    #[arg(long, value_name = "COST", value_parser = args::positive, allow_negative_numbers = true)]
    cost_false_negative: Option<f64>,
    /// Cost of a false alarm (default: FRAUDRISK_COST_FALSE_POSITIVE, else 1); above 0.
    #[arg(long, value_name = "COST", value_parser = args::positive, allow_negative_numbers = true)]
    cost_false_positive: Option<f64>,
    /// Decide `review` from this P(fraud) up to the threshold (default:
    /// FRAUDRISK_REVIEW_BELOW, else no review band); strictly between 0 and 1.
    #[arg(long, value_name = "P", value_parser = args::probability, allow_negative_numbers = true)]
    review_below: Option<f64>,
    /// Recalibrate the probabilities: `platt` fits Platt scaling on the out-of-fold log-odds
    /// and chooses the threshold on the calibrated ones (default: FRAUDRISK_CALIBRATION, else
    /// none).
    #[arg(long, value_enum, value_name = "METHOD")]
    calibration: Option<Calibration>,
}

/// `--calibration`'s values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Calibration {
    None,
    Platt,
}

impl From<Calibration> for fraudrisk::model::CalibrationMethod {
    fn from(c: Calibration) -> Self {
        match c {
            Calibration::None => fraudrisk::model::CalibrationMethod::None,
            Calibration::Platt => fraudrisk::model::CalibrationMethod::Platt,
        }
    }
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Seed of the data generator and the training.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args, Debug)]
struct LoadDataArgs {
    /// CSV file of reference rows (the data the initial model learns from).
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
    /// CSV file of new labelled rows (waiting for the next retrain).
    #[arg(long, value_name = "FILE")]
    new: Option<PathBuf>,
    /// Generate rows instead of reading files (the default when no file is given).
    #[arg(long, value_enum)]
    generate: Option<Generate>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many reference rows to generate (0 to 10,000,000).
    #[arg(long, default_value_t = 10_000, value_parser = args::row_count)]
    reference_rows: usize,
    /// How many shifted new rows to generate (0 to 10,000,000).
    #[arg(long, default_value_t = 2_000, value_parser = args::row_count)]
    shifted_rows: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Generate {
    Both,
    Reference,
    Shifted,
}

#[derive(Args, Debug)]
struct RetrainArgs {
    /// `always` trains whenever rows wait; `if-drift` needs 1,000 rows and a drift verdict.
    #[arg(long, value_enum, default_value_t = Mode::Always)]
    mode: Mode,
    #[command(flatten)]
    costs: CostArgs,
    /// Train on at most this many rows, the most recently loaded (the waiting rows always
    /// count); default FRAUDRISK_TRAINING_WINDOW_ROWS, else all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1000..))]
    window_rows: Option<u64>,
    /// Train only on absorbed rows loaded in the last M months; default
    /// FRAUDRISK_TRAINING_WINDOW_MONTHS, else all.
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..))]
    window_months: Option<u32>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Always,
    IfDrift,
}

#[derive(Args, Debug)]
struct DriftArgs {
    /// Reference CSV file.
    #[arg(long, value_name = "FILE")]
    reference: PathBuf,
    /// Current CSV file.
    #[arg(long, value_name = "FILE")]
    current: PathBuf,
    /// Family-wise error rate (or false discovery rate for benjamini-hochberg), strictly
    /// between 0 and 1.
    #[arg(long, default_value_t = 0.05, value_parser = args::probability, allow_negative_numbers = true)]
    alpha: f64,
    /// Multiple-testing correction: bonferroni, holm or benjamini-hochberg.
    #[arg(long, default_value = "bonferroni")]
    correction: String,
    /// Only call a feature drifted when its PSI is at least this (a finite number, 0 or more).
    #[arg(long, value_parser = args::non_negative, allow_negative_numbers = true)]
    min_psi: Option<f64>,
    /// Refuse a current file with a missing or out-of-domain value (by default such values are
    /// left out of the tests and reported under data quality).
    #[arg(long)]
    strict: bool,
    /// Also write the report as a self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct MonitorArgs {
    /// Predictions made at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z); default:
    /// the champion's promotion.
    #[arg(long, value_parser = args::timestamp)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Predictions made before this time (RFC 3339); default: no bound.
    #[arg(long, value_parser = args::timestamp)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Significance level of the drift tests, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.05, value_parser = args::probability, allow_negative_numbers = true)]
    alpha: f64,
    /// Alert when the realized ROC AUC is below this (over at least --min-labelled outcomes).
    #[arg(long, default_value_t = 0.7, value_parser = args::probability, allow_negative_numbers = true)]
    min_roc_auc: f64,
    /// Outcomes needed before a low realized ROC AUC raises an alert.
    #[arg(long, default_value_t = 100, value_parser = args::row_count)]
    min_labelled: usize,
    /// Also write the report as a self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Training CSV file.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Evaluation CSV file; without it a stratified 20 % of distinct rows is held out.
    #[arg(long, value_name = "FILE")]
    eval: Option<PathBuf>,
    /// Where to write the model artifact (versioned JSON).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Seed of the folds and the split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    costs: CostArgs,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// JSON request body: one object of the 20 fields or {"records": [...]}; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// A field as name=value; repeat for all 20.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// Score with this model file instead of the champion (nothing is logged then).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Score the seed's documented example request.
    #[arg(long, conflicts_with_all = ["input", "fields"])]
    seed_example: bool,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user; the password is asked for on the terminal, or read from stdin with
    /// --password-stdin (needed when there is no terminal).
    Add {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Remove a user.
    Remove { username: String },
}

/// Exit codes: 0 success, 1 failure, 2 usage or refused input (clap's own errors are 2 too).
fn main() -> ExitCode {
    let invocation = Invocation::parse();
    init_logging(invocation.format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let work = async move {
        match invocation.command {
            TopCommand::Serve(args) => serve::run(&invocation.state, args).await,
            TopCommand::Demo(args) => {
                demo::run(&invocation.state, args.seed, invocation.format).await
            }
            TopCommand::OneShot(command) => {
                commands::run(Cli {
                    state: invocation.state,
                    format: invocation.format,
                    command,
                })
                .await
            }
        }
    };
    let outcome = runtime.block_on(work);
    // Flush what the command printed; a reader that went away is not an error.
    output::flush_stdout();
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            exit_code_of(&error)
        }
    }
}

/// 2 when the input was refused (a bad file, invalid fields), 1 for every other failure.
fn exit_code_of(error: &anyhow::Error) -> ExitCode {
    let refused_input = error.chain().any(|cause| {
        cause.is::<fraudrisk::dataset::CsvError>()
            || cause.is::<fraudrisk::request::RequestError>()
            || cause.is::<fraudrisk::outcomes::OutcomeFileError>()
    });
    if refused_input {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Log lines (level from `RUST_LOG`, default `warn`) on standard error, and the library's
/// progress events as bars or lines, except in JSON mode where standard error stays quiet.
fn init_logging(format: Format) {
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::Layer;

    let progress = (format == Format::Table).then(|| {
        progress::ProgressLayer::new().with_filter(filter_fn(|meta| {
            meta.target() == fraudrisk::progress::TARGET
        }))
    });
    fraudrisk::telemetry::init_cli("warn", progress);
}

/// The error and its causes joined with ": ", so every failure is named once: a cause whose
/// text the message so far already holds ends the walk. Errors that quote their source in
/// their own message (the library's do, rendering what matters of the chain beneath in their
/// own words, e.g. a PostgreSQL error with its SQLSTATE) keep that source for programs, not
/// for a second mention here.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            break;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that quotes its source in its message and also returns it as `source()`.
    #[derive(Debug)]
    struct Quoting(std::io::Error);

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "t.csv: {}", self.0)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "not there");
        let error = anyhow::Error::from(Quoting(io)).context("cannot load");
        assert_eq!(error_chain(&error), "cannot load: t.csv: not there");
    }

    #[test]
    fn the_words_beneath_a_quoted_cause_are_not_repeated() {
        // A store error quotes the driver's error in its own words; the driver's own text
        // (and what it wraps) stays beneath, for programs.
        let driver = std::io::Error::other("db error: ERROR: relation \"x\" does not exist");
        let store = fraudrisk::ports::StoreError::backend_source(
            "migrate",
            "ERROR 42P01: relation \"x\" does not exist",
            fraudrisk::ports::Reworded::new("ERROR 42P01: relation \"x\" does not exist", driver),
        );
        let error = anyhow::Error::from(store).context("cannot open the local state in s");
        assert_eq!(
            error_chain(&error),
            "cannot open the local state in s: database error during migrate: \
             ERROR 42P01: relation \"x\" does not exist"
        );
    }
}
