//! The monitor step: reads the window's aggregates, the champion's training data (the inputs'
//! reference) and the champion's scores on its held-out rows stored at training time (the
//! scores' reference), and builds the report.

use chrono::{DateTime, Utc};

use super::tracking::{drift_table, push_drift_metrics};
use super::{describe, finish_run, json_bytes, load_champion, run_blocking, Cause, PipelineError};
use crate::dataset::DataQuality;
use crate::drift::{detect_drift_grouped, DriftConfig};
use crate::monitor::{
    emf_documents, monitor_report_from_aggregates, reference_scores_key, MonitorReport,
    MonitorSettings, MonitorWindow, ReferenceScores, ScoreReference, ScoreReferenceSource,
    ServedInputDrift,
};
use crate::ports::{ArtifactStore, PredictionLog, RecordStore, RunData, Tracker};
use crate::report::monitor_html;
use crate::schema::Applicant;
use crate::services::Services;

/// The tracking experiment of the monitor's runs.
pub const MONITORING_EXPERIMENT: &str = "fraudrisk-monitoring";
/// The report's path among a monitoring run's artifacts.
pub const MONITOR_REPORT_PATH: &str = "monitor_report.json";
/// Its HTML page, beside it.
pub const MONITOR_HTML_PATH: &str = "monitor_report.html";

/// Which predictions to look at: made at or after `since` (default: the champion's
/// promotion) and before `until` (default: unbounded).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MonitorRequest {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Runs the monitor over the window against the champion's training data (the rows its
/// version, or an earlier one, absorbed). Reads only; takes no lock. The served side comes
/// from the store's aggregates ([`PredictionLog::window_aggregates`]): memory grows with the
/// reference and the number of distinct logged values, not with the log.
pub async fn monitor(
    records: &dyn RecordStore,
    predictions: &dyn PredictionLog,
    artifacts: &dyn ArtifactStore,
    request: MonitorRequest,
    settings: &MonitorSettings,
) -> Result<MonitorReport, PipelineError> {
    let champion = load_champion(artifacts)
        .await?
        .ok_or(PipelineError::NoChampion)?;
    let version = champion.pointer.version;
    let since = request.since.or(Some(champion.pointer.promoted_at));
    let reference = champion_reference(records, version).await?;
    let threshold = champion.model.threshold();
    let stored = stored_reference_scores(artifacts, version).await?;
    let (reference, scores, score_reference, score_reference_rows) =
        run_blocking(move || match stored {
            Some(stored) => {
                let rows = stored.scores.len();
                let scores = ScoreReference::new(&stored.scores, threshold);
                (reference, scores, stored.source, rows)
            }
            // Models trained before their holdout scores were stored: the champion re-scores
            // its own training rows (in-sample, so a little more confident than traffic).
            None => {
                let scores: Vec<f64> = reference
                    .iter()
                    .map(|a| champion.model.probability_of_fraud(a))
                    .collect();
                let rows = scores.len();
                let scores = ScoreReference::new(&scores, threshold);
                (reference, scores, ScoreReferenceSource::TrainingRows, rows)
            }
        })
        .await?;
    let aggregates = predictions
        .window_aggregates(since, request.until, &scores)
        .await?;
    let (_, any_bad) = aggregates.current_columns();
    let data_quality = if any_bad {
        predictions
            .window_data_quality(since, request.until)
            .await?
    } else {
        DataQuality::clean(aggregates.scan.served)
    };
    let window = MonitorWindow {
        since,
        until: request.until,
        champion_version: version,
        champion_promoted_at: champion.pointer.promoted_at,
        served: usize::try_from(aggregates.scan.served).unwrap_or(usize::MAX),
        truncated: false,
        reference_rows: reference.len(),
        score_reference,
        score_reference_rows,
    };
    let settings = settings.clone();
    run_blocking(move || {
        monitor_report_from_aggregates(
            &reference,
            &scores,
            &aggregates,
            data_quality,
            window,
            &settings,
        )
    })
    .await
}

/// The scores stored with version `version` at training time, if it has them. A damaged file
/// is an error, not a silent fallback: the report would compare with something else.
async fn stored_reference_scores(
    artifacts: &dyn ArtifactStore,
    version: u32,
) -> Result<Option<ReferenceScores>, PipelineError> {
    let key = reference_scores_key(version);
    let Some(bytes) = artifacts.get(&key).await? else {
        return Ok(None);
    };
    ReferenceScores::from_json_bytes(&bytes)
        .map(Some)
        .map_err(|e| PipelineError::CorruptChampion(Cause::of(format!("{key}: {e}"), e)))
}

/// The rows the champion (version `version`) was trained on: those its version or an earlier
/// one absorbed. None is an error: there is nothing to compare with.
async fn champion_reference(
    records: &dyn RecordStore,
    version: u32,
) -> Result<Vec<Applicant>, PipelineError> {
    let reference: Vec<Applicant> = records
        .absorbed_records()
        .await?
        .into_iter()
        .filter(|s| s.absorbed_by.is_some_and(|v| v <= version))
        .map(|s| s.record.applicant)
        .collect();
    if reference.is_empty() {
        return Err(PipelineError::NoReferenceData);
    }
    Ok(reference)
}

/// The monitor's input-drift verdict on what was served since `since` (the champion's
/// promotion) against `reference` (the champion's training data), for `retrain --mode
/// if-drift`, from the store's aggregates. Fewer than 2 served predictions test nothing and
/// find no drift.
pub async fn served_input_drift(
    predictions: &dyn PredictionLog,
    reference: Vec<Applicant>,
    since: DateTime<Utc>,
    drift: &DriftConfig,
) -> Result<ServedInputDrift, PipelineError> {
    // The scores play no part in the verdict: an empty score reference keeps the scan small.
    let scores = ScoreReference::new(&[], 0.5);
    let aggregates = predictions
        .window_aggregates(Some(since), None, &scores)
        .await?;
    let drift = drift.clone();
    run_blocking(move || {
        let (columns, _) = aggregates.current_columns();
        let served = usize::try_from(aggregates.scan.served).unwrap_or(usize::MAX);
        let report = detect_drift_grouped(&reference, &columns, served, &drift);
        ServedInputDrift::of(&report, served)
    })
    .await
}

/// Runs the monitor and records it: a run in [`MONITORING_EXPERIMENT`] (the headline figures
/// as metrics, the report and the input-drift table as artifacts), and, in Lambda, the figures
/// as CloudWatch Embedded Metric Format lines on standard output, which CloudWatch Logs turns
/// into the metrics the alarms watch. A tracker that is down fails the call: a monitor whose
/// run is lost would go unseen.
pub async fn monitor_and_record(
    services: &Services,
    request: MonitorRequest,
    settings: &MonitorSettings,
) -> Result<MonitorReport, PipelineError> {
    let report = services.monitor(request, settings).await?;
    record_run(services.tracker.as_ref(), &report).await?;
    // Only Lambda's standard output is CloudWatch Logs; elsewhere it is the user's terminal
    // or `--format json`.
    if crate::config::process::running_in_lambda() {
        for document in emf_documents(&report, Utc::now().timestamp_millis()) {
            // One JSON object per line, nothing around it: that is what EMF requires.
            println!("{document}");
        }
    }
    Ok(report)
}

async fn record_run(tracker: &dyn Tracker, report: &MonitorReport) -> Result<(), PipelineError> {
    let run_name = format!(
        "monitor-v{}-{}",
        report.window.champion_version,
        Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let run = tracker.start_run(MONITORING_EXPERIMENT, &run_name).await?;
    let result = async {
        tracker.log_batch(&run, &run_data(report)).await?;
        tracker
            .log_artifact(&run, MONITOR_REPORT_PATH, json_bytes(report)?)
            .await?;
        tracker
            .log_artifact(&run, MONITOR_HTML_PATH, monitor_html(report).into_bytes())
            .await?;
        tracker
            .log_artifact(
                &run,
                super::DRIFT_TABLE_PATH,
                drift_table(&report.input_drift)?,
            )
            .await?;
        let alerts: Vec<&str> = report.alerts.iter().map(|a| a.kind.as_str()).collect();
        let sentence = format!(
            "Monitored {} predictions served by version {}: {}.",
            report.window.served,
            report.window.champion_version,
            if alerts.is_empty() {
                "no alert".to_string()
            } else {
                format!("alerts {}", alerts.join(", "))
            }
        );
        describe(tracker, &run, sentence).await?;
        Ok(())
    }
    .await;
    finish_run(tracker, &run, result).await
}

fn run_data(report: &MonitorReport) -> RunData {
    let mut data = RunData::default();
    let window = &report.window;
    data.params.push((
        "champion_version".to_string(),
        window.champion_version.to_string(),
    ));
    for (name, time) in [("since", window.since), ("until", window.until)] {
        if let Some(time) = time {
            data.params.push((name.to_string(), time.to_rfc3339()));
        }
    }
    push_drift_metrics(&mut data, &report.input_drift);
    let scores = &report.prediction_drift;
    let overall = &report.performance.overall;
    let mut metrics = vec![
        ("served", window.served as f64),
        ("score_ks_statistic", scores.ks_statistic),
        ("score_ks_p_value", scores.ks_p_value),
        ("score_psi", scores.psi),
        ("fraud_decision_rate", scores.current_fraud_rate),
        ("label_coverage", overall.label_coverage),
        ("alerts", report.alerts.len() as f64),
    ];
    for (name, value) in [
        ("realized_roc_auc", overall.roc_auc),
        ("realized_precision", overall.precision),
        ("realized_recall", overall.recall),
        ("realized_f1", overall.f1),
        ("realized_brier", overall.brier),
    ] {
        if let Some(value) = value {
            metrics.push((name, value));
        }
    }
    data.metrics.extend(
        metrics
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    data.tags.push((
        "alerts".to_string(),
        report
            .alerts
            .iter()
            .map(|a| a.kind.as_str())
            .collect::<Vec<_>>()
            .join(","),
    ));
    data
}
