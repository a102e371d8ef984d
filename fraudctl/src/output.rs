//! Terminal output: tables for people, one JSON object for programs.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use fraudrisk::dataset::DataQuality;
use fraudrisk::drift::DriftReport;
use fraudrisk::model::{Calibration, CostMatrix, CvResult, Metrics};
use fraudrisk::pipeline::{
    ChampionPointer, Comparison, RetrainSummary, ServedPrediction, TrainingSummary,
};
use fraudrisk::ports::{LoadSummary, LockOwner, RecordCounts, RecordRole, UserSummary};
use fraudrisk::request::RequestError;
use fraudrisk::services::Services;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::Format;

/// Writes one line to standard output (see `outln!`).
pub fn write_stdout_line(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}") {
        exit_on_write_error(&error);
    }
}

/// Flushes standard output at the end of a command.
pub fn flush_stdout() {
    if let Err(error) = std::io::stdout().lock().flush() {
        exit_on_write_error(&error);
    }
}

fn exit_on_write_error(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        // The reader has all it wanted (`| head`): stop quietly.
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// Prints `value` as JSON, or runs `human` for the table format.
pub fn emit<T: Serialize>(format: Format, value: &T, human: impl FnOnce()) {
    match format {
        Format::Json => match serde_json::to_string_pretty(value) {
            Ok(text) => outln!("{text}"),
            Err(error) => eprintln!("error: cannot encode the result as JSON: {error}"),
        },
        Format::Table => human(),
    }
}

pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

pub(crate) fn number(value: f64) -> Cell {
    Cell::new(format!("{value:.4}")).set_alignment(CellAlignment::Right)
}

pub(crate) fn p_value(value: f64) -> Cell {
    let text = if value == 0.0 || value >= 1e-4 {
        format!("{value:.4}")
    } else {
        format!("{value:.2e}")
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// A spinner on standard error for long steps (silent in JSON mode or without a terminal).
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn start(format: Format, message: &str) -> Self {
        if format == Format::Json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Spinner(None);
        }
        let bar = crate::progress::bars().add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }

    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
            crate::progress::bars().remove(&bar);
        }
    }
}

#[derive(Serialize)]
struct LoadRow<'a> {
    source: &'a str,
    role: RecordRole,
    #[serde(flatten)]
    summary: LoadSummary,
}

pub fn print_load_summaries(format: Format, results: &[(String, RecordRole, LoadSummary)]) {
    let rows: Vec<LoadRow> = results
        .iter()
        .map(|(source, role, summary)| LoadRow {
            source,
            role: *role,
            summary: *summary,
        })
        .collect();
    emit(format, &serde_json::json!({ "loaded": rows }), || {
        let mut t = table(&["source", "role", "rows", "new", "changed", "unchanged"]);
        for row in &rows {
            let s = &row.summary;
            let changed = if s.changed == 0 {
                "0".to_string()
            } else {
                format!(
                    "{} ({} replaced, {} beside an absorbed version)",
                    s.changed,
                    s.replaced,
                    s.changed - s.replaced
                )
            };
            t.add_row(vec![
                Cell::new(row.source),
                Cell::new(row.role.as_str()),
                Cell::new(s.offered),
                Cell::new(s.new),
                Cell::new(changed),
                Cell::new(s.already_present),
            ]);
        }
        outln!("{t}");
    });
}

/// The metrics of one or more models side by side.
pub fn metrics_table(columns: &[(&str, &Metrics)]) -> Table {
    let mut header = vec!["metric"];
    header.extend(columns.iter().map(|(name, _)| *name));
    let mut t = table(&header);
    type Getter = fn(&Metrics) -> Option<f64>;
    let rows: [(&str, Getter); 11] = [
        ("ROC AUC", |m| Some(m.roc_auc)),
        ("threshold", |m| Some(m.threshold)),
        ("accuracy", |m| Some(m.accuracy)),
        ("precision (fraud)", |m| Some(m.precision)),
        ("recall (fraud)", |m| Some(m.recall)),
        ("F1 (fraud)", |m| Some(m.f1)),
        ("expected cost per applicant", |m| m.expected_cost),
        ("expected cost at 0.5", |m| m.expected_cost_at_0_5),
        ("Brier score", |m| Some(m.brier)),
        ("log loss", |m| Some(m.log_loss)),
        // Metrics stored before calibration was reported have no reliability table.
        ("expected calibration error", |m| {
            (!m.reliability.is_empty()).then_some(m.expected_calibration_error)
        }),
    ];
    for (name, get) in rows {
        let mut row = vec![Cell::new(name)];
        // Metrics stored before costs were reported have no expected cost.
        row.extend(
            columns
                .iter()
                .map(|(_, m)| get(m).map_or_else(|| Cell::new("-"), number)),
        );
        t.add_row(row);
    }
    t
}

pub fn print_training_summary(format: Format, summary: &TrainingSummary) {
    emit(format, summary, || {
        outln!(
            "Trained version {} (alpha {}, threshold {:.4} for costs {}:{}) on {} rows, \
             evaluated on {} held-out rows; champion now.",
            summary.version,
            summary.alpha,
            summary.threshold,
            summary.cost_matrix.false_negative,
            summary.cost_matrix.false_positive,
            summary.training_rows,
            summary.holdout_rows
        );
        if let Some(Calibration::Platt { a, b }) = summary.calibration {
            outln!("Platt scaling: P(fraud) = sigmoid({a:.4} * log-odds {b:+.4}).");
        }
        outln!("{}", metrics_table(&[("holdout", &summary.metrics)]));
        outln!("{}", summary.metrics.report());
    });
}

pub fn print_retrain_summary(format: Format, summary: &RetrainSummary) {
    emit(format, summary, || {
        if let Some(drift) = &summary.drift {
            print_drift_table(drift);
        }
        if let Some(comparison) = &summary.comparison {
            let champion_name = format!("champion v{}", summary.previous_champion_version);
            let challenger_name = format!(
                "challenger v{}",
                summary.challenger_version.unwrap_or_default()
            );
            outln!(
                "Challenger against champion on {} held-out new rows:",
                comparison.holdout_rows
            );
            outln!(
                "{}",
                metrics_table(&[
                    (&champion_name, &comparison.champion),
                    (&challenger_name, &comparison.challenger)
                ])
            );
            print_gate(comparison);
        }
        outln!(
            "Decision: {} ({}). Champion: version {}.",
            serde_json::to_value(summary.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
                .replace('_', " "),
            summary.reason,
            summary.champion_version
        );
    });
}

/// The promotion gate: one row per criterion, then what became of the replay.
fn print_gate(comparison: &Comparison) {
    let mut t = table(&[
        "criterion",
        "data",
        "challenger",
        "champion",
        "margin",
        "verdict",
    ]);
    for c in &comparison.criteria {
        t.add_row(vec![
            Cell::new(c.metric.replace('_', " ")),
            Cell::new(
                serde_json::to_value(c.data)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                    .unwrap_or_default(),
            ),
            number(c.challenger),
            number(c.champion),
            Cell::new(if c.higher_is_better {
                format!("-{}", c.margin)
            } else {
                format!("+{}", c.margin)
            })
            .set_alignment(CellAlignment::Right),
            Cell::new(if c.passed { "pass" } else { "FAIL" }),
        ]);
    }
    outln!("Promotion gate:");
    outln!("{t}");
    let replay = &comparison.replay;
    match (&replay.evaluation, &replay.skipped) {
        (Some(e), _) => outln!(
            "Replay: {} served outcomes since the champion's promotion, {} left out (trained on or unusable), {} re-scored.",
            replay.served_outcomes,
            replay.excluded,
            e.rows
        ),
        (None, Some(why)) => outln!("Replay: does not count ({why})."),
        (None, None) => {}
    }
}

pub(crate) fn print_drift_table(report: &DriftReport) {
    let mut t = table(&[
        "feature",
        "kind",
        "test",
        "statistic",
        "p",
        "adjusted p",
        "PSI",
        "drift",
    ]);
    for f in &report.features {
        t.add_row(vec![
            Cell::new(&f.feature),
            Cell::new(f.kind.as_str()),
            Cell::new(&f.test),
            number(f.statistic),
            p_value(f.p_value),
            p_value(f.adjusted_p_value),
            number(f.psi),
            Cell::new(if f.significant { "DRIFT" } else { "" }),
        ]);
    }
    outln!(
        "Drift: {} reference rows against {} current rows, {} correction at alpha {}{}",
        report.reference_rows,
        report.current_rows,
        report.correction,
        report.alpha,
        report
            .min_psi
            .map(|m| format!(", minimum PSI {m}"))
            .unwrap_or_default()
    );
    outln!("{t}");
    let drifted = report.features.iter().filter(|f| f.significant).count();
    outln!(
        "Verdict: {}",
        if report.drift {
            format!("drift in {drifted} of {} features", report.features.len())
        } else {
            "no drift".to_string()
        }
    );
    if let Some(quality) = &report.data_quality {
        print_data_quality(quality);
    }
}

pub(crate) fn print_data_quality(quality: &DataQuality) {
    if quality.is_clean() {
        outln!(
            "Data quality: every value of the {} current rows is in its domain",
            quality.rows
        );
        return;
    }
    outln!(
        "Data quality: {} of {} current rows have missing or out-of-domain values; those values \
         were left out of their feature's test",
        quality.rows_with_issues,
        quality.rows
    );
    let mut t = table(&[
        "feature",
        "missing",
        "out of domain",
        "share",
        "examples (line: value)",
    ]);
    for f in quality.with_issues() {
        let examples: Vec<String> = f
            .examples
            .iter()
            .map(|e| match (e.line, &e.prediction_id) {
                (Some(line), _) => format!("{line}: {:?}", e.value),
                (None, Some(id)) => format!("{id}: {:?}", e.value),
                (None, None) => format!("{:?}", e.value),
            })
            .collect();
        t.add_row(vec![
            Cell::new(&f.feature),
            Cell::new(f.missing),
            Cell::new(f.out_of_domain),
            Cell::new(format!(
                "{:.2} %",
                100.0 * (f.missing_share + f.out_of_domain_share)
            )),
            Cell::new(examples.join(", ")),
        ]);
    }
    outln!("{t}");
}

pub fn print_drift(format: Format, report: &DriftReport) {
    emit(format, report, || print_drift_table(report));
}

#[allow(clippy::too_many_arguments)]
pub fn print_train(
    format: Format,
    metrics: &Metrics,
    (threshold, costs, calibration): (f64, &CostMatrix, Option<&Calibration>),
    alpha: f64,
    cv: &[CvResult],
    training_rows: usize,
    eval_rows: usize,
    overlap: usize,
    out: Option<&Path>,
) {
    let value = serde_json::json!({
        "metrics": metrics,
        "threshold": threshold,
        "cost_matrix": costs,
        "calibration": calibration,
        "alpha": alpha,
        "cv": cv,
        "training_rows": training_rows,
        "eval_rows": eval_rows,
        "shared_distinct_rows": overlap,
        "model": out,
    });
    emit(format, &value, || {
        let mut t = table(&["alpha", "mean CV ROC AUC", "std"]);
        for c in cv {
            t.add_row(vec![
                Cell::new(c.alpha),
                number(c.mean_roc_auc),
                number(c.std_roc_auc),
            ]);
        }
        outln!("Cross-validation (5 folds over distinct rows), chosen alpha {alpha}:");
        outln!("{t}");
        if let Some(Calibration::Platt { a, b }) = calibration {
            outln!(
                "Platt scaling on the out-of-fold log-odds: P(fraud) = sigmoid({a:.4} * \
                 log-odds {b:+.4})."
            );
        }
        outln!(
            "Threshold {threshold:.4}: the lowest expected cost on {}out-of-fold probabilities \
             (a missed fraud costs {}, a false alarm {}).",
            if calibration.is_some() {
                "calibrated "
            } else {
                ""
            },
            costs.false_negative,
            costs.false_positive
        );
        outln!("Trained on {training_rows} rows, evaluated on {eval_rows} rows:");
        outln!("{}", metrics_table(&[("evaluation", metrics)]));
        outln!("{}", metrics.report());
        if let Some(out) = out {
            outln!("Model written to {}", out.display());
        }
    });
}

pub fn print_request_error(format: Format, error: &RequestError) {
    let value = match error {
        RequestError::Shape { field, rule } => {
            serde_json::json!({"error": "invalid request", "fields": [{"field": field, "rule": rule}]})
        }
        RequestError::Invalid(errors) => {
            serde_json::json!({"error": "invalid fields", "fields": errors.0})
        }
    };
    match format {
        Format::Json => outln!("{value}"),
        Format::Table => {
            eprintln!("The request was refused:");
            match error {
                RequestError::Shape { .. } => eprintln!("  {error}"),
                RequestError::Invalid(errors) => {
                    for e in &errors.0 {
                        eprintln!("  {e}");
                    }
                }
            }
        }
    }
}

pub fn print_predictions(format: Format, served: &[ServedPrediction]) {
    let value = if served.len() == 1 {
        serde_json::to_value(&served[0])
    } else {
        serde_json::to_value(served).map(|v| serde_json::json!({ "predictions": v }))
    };
    match value {
        Ok(value) => emit(format, &value, || {
            for s in served {
                print_one_prediction(s);
            }
        }),
        Err(error) => eprintln!("error: cannot encode predictions: {error}"),
    }
}

pub fn print_one_prediction(s: &ServedPrediction) {
    outln!(
        "{}  (probability of fraud {:.3}, threshold {:.3}, model version {})",
        s.prediction.message,
        s.prediction.probability_of_fraud,
        s.prediction.threshold,
        s.model_version
    );
    if s.prediction.reason_codes.is_empty() {
        outln!("reason codes: none (no feature pushed toward fraud)");
    }
    for reason in &s.prediction.reason_codes {
        outln!("reason {}: {}", reason.code, reason.text);
    }
    match s.prediction_id {
        Some(id) => outln!("prediction id {}", id.hyphenated()),
        None => outln!("prediction id: none (not logged)"),
    }
    let mut t = table(&["feature", "value", "contribution to log-odds of fraud"]);
    for c in s.prediction.contributions.iter().take(5) {
        t.add_row(vec![
            Cell::new(c.feature),
            Cell::new(c.value),
            number(c.contribution),
        ]);
    }
    outln!("{t}");
}

pub fn print_status(
    format: Format,
    services: &Services,
    counts: &RecordCounts,
    waiting: &[(String, usize)],
    champion: Option<&ChampionPointer>,
    users: usize,
    lock: Option<&LockOwner>,
) {
    let by_source: std::collections::BTreeMap<&str, usize> =
        waiting.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let value = serde_json::json!({
        "records": counts,
        "waiting_by_source": by_source,
        "champion": champion,
        "users": users,
        "training_lock": lock,
        "adapters": services.description.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
    });
    emit(format, &value, || {
        let mut t = table(&["what", "value"]);
        for (k, v) in &services.description {
            t.add_row(vec![Cell::new(k), Cell::new(v)]);
        }
        t.add_row(vec![
            Cell::new("reference rows"),
            Cell::new(counts.reference),
        ]);
        t.add_row(vec![Cell::new("new rows"), Cell::new(counts.new)]);
        t.add_row(vec![
            Cell::new("waiting for retrain"),
            Cell::new(counts.pending),
        ]);
        for (source, count) in waiting {
            t.add_row(vec![
                Cell::new(format!("  waiting from {source}")),
                Cell::new(count),
            ]);
        }
        t.add_row(vec![
            Cell::new("champion"),
            Cell::new(
                champion
                    .map(|c| format!("version {} since {}", c.version, c.promoted_at))
                    .unwrap_or_else(|| "none: run initialtrain".to_string()),
            ),
        ]);
        t.add_row(vec![Cell::new("users"), Cell::new(users)]);
        t.add_row(vec![
            Cell::new("training lock"),
            Cell::new(
                lock.map(|owner| format!("held by {}", owner.describe()))
                    .unwrap_or_else(|| "free".to_string()),
            ),
        ]);
        outln!("{t}");
    });
}

pub fn print_users(format: Format, users: &[UserSummary]) {
    emit(format, &serde_json::json!({ "users": users }), || {
        let mut t = table(&["username", "created"]);
        for u in users {
            t.add_row(vec![Cell::new(&u.username), Cell::new(u.created_at)]);
        }
        outln!("{t}");
    });
}
