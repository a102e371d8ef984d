//! What the life cycle records in the tracker, and under which names.
//!
//! One name per quantity in every run, so one chart shows it across versions:
//! - `holdout_<metric>`: the model the run trained, on the rows it held out (initialtrain:
//!   its holdout split; retrain: the held-out new rows), linked to that logged model;
//! - `champion_holdout_<metric>`: the serving champion on the same rows (retrain only);
//! - `cv_roc_auc`: the chosen strength's mean cross-validated ROC AUC (the whole grid is in
//!   `model.json` of the logged model, beside its `MLmodel` and `code/fraudrisk_pyfunc.py`);
//! - drift headlines (`drift_detected`, `drift_features_significant`, `drift_max_psi`,
//!   `drift_min_adjusted_p_value`); the 20 per-feature rows are one table artifact,
//!   `drift_features.json`, instead of 40 one-bar charts;
//! - prediction figures only when there were predictions (`predictions.none = true` tag
//!   otherwise, so an empty log never reads as a real zero);
//! - `mlflow.note.content`: one sentence saying what the run did (MLflow's run description).

use serde_json::json;

use super::promotion::{Comparison, GateData};
use super::{json_bytes, PipelineError, PipelineSettings};
use crate::drift::DriftReport;
use crate::model::{model_folder, CvResult, Metrics, Provenance, TrainConfig};
use crate::ports::{
    LoggedModel, ModelSpec, ModelVersionInfo, PredictionStats, RunData, RunInfo, Tracker,
};

/// MLflow's run-description tag.
pub const NOTE_TAG: &str = "mlflow.note.content";
/// Set (to `true`) on a run when no prediction was served since the last promotion.
pub const NO_PREDICTIONS_TAG: &str = "predictions.none";
/// MLflow's tag listing a run's table artifacts (what `MlflowClient.log_table` sets).
const LOGGED_ARTIFACTS_TAG: &str = "mlflow.loggedArtifacts";
/// The per-feature drift table.
pub const DRIFT_TABLE_PATH: &str = "drift_features.json";
/// The drift report, among a retrain run's artifacts and beside a published model.
pub const DRIFT_REPORT_PATH: &str = "drift_report.json";
/// Its HTML page.
pub const DRIFT_HTML_PATH: &str = "drift_report.html";

/// The drift report's page, for a retrain run.
pub(super) fn drift_page(drift: &DriftReport) -> Vec<u8> {
    crate::report::drift_html(
        drift,
        "Drift report: retrain",
        "The new rows waiting for training (current) against the rows the champion was \
         trained on (reference).",
    )
    .into_bytes()
}

/// The model files and figures `publish_version` hands to the tracker.
pub(super) struct ModelRecord<'a> {
    pub config: &'a TrainConfig,
    pub chosen_alpha: f64,
    pub cv: &'a [CvResult],
    pub holdout: Option<&'a Metrics>,
    pub data_fingerprint: &'a str,
    pub model_json: Vec<u8>,
    pub mlmodel: String,
}

/// Logs the trained model (an MLflow 3 logged model where the server has them: params,
/// linked metrics, files, READY) and registers it as a new version. A failure after the
/// logged model exists marks it FAILED.
pub(super) async fn log_and_register_model(
    tracker: &dyn Tracker,
    settings: &PipelineSettings,
    run: &RunInfo,
    record: ModelRecord<'_>,
) -> Result<ModelVersionInfo, PipelineError> {
    let mut params = RunData::default();
    push_training_params(&mut params, record.config, record.chosen_alpha);
    let spec = ModelSpec {
        name: settings.model_name.clone(),
        model_type: "logistic_regression".to_string(),
        params: params.params,
        tags: vec![
            (
                "data_fingerprint".to_string(),
                record.data_fingerprint.to_string(),
            ),
            (
                "code_version".to_string(),
                Provenance::CODE_VERSION.to_string(),
            ),
        ],
    };
    let model = tracker.create_logged_model(run, &spec).await?;
    let result = async {
        let mut metrics = RunData::default();
        push_cv_metric(&mut metrics, record.cv, record.chosen_alpha);
        if let Some(holdout) = record.holdout {
            push_metrics(&mut metrics, "holdout_", holdout);
        }
        tracker
            .log_model_metrics(run, &model, &metrics.metrics)
            .await?;
        for file in model_folder(record.model_json, record.mlmodel) {
            tracker
                .log_model_artifact(run, &model, file.path, file.bytes)
                .await?;
        }
        tracker.finalize_logged_model(&model, true).await?;
        Ok::<_, PipelineError>(())
    }
    .await;
    if let Err(error) = result {
        fail_model(tracker, &model).await;
        return Err(error);
    }
    Ok(tracker
        .create_model_version(&settings.model_name, run, &model)
        .await?)
}

async fn fail_model(tracker: &dyn Tracker, model: &LoggedModel) {
    if let Err(error) = tracker.finalize_logged_model(model, false).await {
        tracing::warn!(%error, "could not mark the logged model as failed");
    }
}

/// Sets the run's description.
pub(super) async fn describe(
    tracker: &dyn Tracker,
    run: &RunInfo,
    sentence: String,
) -> Result<(), PipelineError> {
    let data = RunData {
        tags: vec![(NOTE_TAG.to_string(), sentence)],
        ..RunData::default()
    };
    Ok(tracker.log_batch(run, &data).await?)
}

pub(super) fn push_training_params(data: &mut RunData, config: &TrainConfig, chosen_alpha: f64) {
    let grid: Vec<String> = config.alphas.iter().map(|a| a.to_string()).collect();
    if let Some(p) = config.review_below {
        data.params
            .push(("review_below".to_string(), p.to_string()));
    }
    data.params.extend([
        ("model".to_string(), "logistic_regression".to_string()),
        ("alpha".to_string(), chosen_alpha.to_string()),
        ("alpha_grid".to_string(), grid.join(",")),
        ("cv_folds".to_string(), config.folds.to_string()),
        ("seed".to_string(), config.seed.to_string()),
        (
            "cost_false_negative".to_string(),
            config.costs.false_negative.to_string(),
        ),
        (
            "cost_false_positive".to_string(),
            config.costs.false_positive.to_string(),
        ),
        (
            "calibration".to_string(),
            config.calibration.as_str().to_string(),
        ),
        ("solver".to_string(), "newton".to_string()),
        (
            "model_selection_rows".to_string(),
            config.selection_rows.to_string(),
        ),
    ]);
}

fn push_cv_metric(data: &mut RunData, cv: &[CvResult], chosen_alpha: f64) {
    if let Some(best) = cv.iter().find(|c| c.alpha == chosen_alpha) {
        data.metrics
            .push(("cv_roc_auc".to_string(), best.mean_roc_auc));
    }
}

pub(super) fn push_metrics(data: &mut RunData, prefix: &str, metrics: &Metrics) {
    data.metrics.extend([
        (format!("{prefix}roc_auc"), metrics.roc_auc),
        (format!("{prefix}accuracy"), metrics.accuracy),
        (format!("{prefix}precision"), metrics.precision),
        (format!("{prefix}recall"), metrics.recall),
        (format!("{prefix}f1"), metrics.f1),
        (format!("{prefix}brier"), metrics.brier),
        (format!("{prefix}log_loss"), metrics.log_loss),
        (format!("{prefix}threshold"), metrics.threshold),
    ]);
    // Absent in metrics stored before calibration was reported (no reliability table).
    if !metrics.reliability.is_empty() {
        data.metrics.push((
            format!("{prefix}expected_calibration_error"),
            metrics.expected_calibration_error,
        ));
    }
    // Per applicant, at the model's threshold and at 0.5 (absent in old artifacts' metrics).
    for (name, value) in [
        ("expected_cost", metrics.expected_cost),
        ("expected_cost_at_0_5", metrics.expected_cost_at_0_5),
    ] {
        if let Some(value) = value {
            data.metrics.push((format!("{prefix}{name}"), value));
        }
    }
}

/// The promotion gate: each criterion's figures and verdict (1 passed, 0 failed) as metrics
/// named `gate_<data>_<metric>_{challenger,champion,passed}`, and the replay's counts.
pub(super) fn push_gate(data: &mut RunData, comparison: &Comparison) {
    for c in &comparison.criteria {
        let data_name = match c.data {
            GateData::HeldOutNewRows => "holdout",
            GateData::ServedOutcomes => "replay",
        };
        let name = format!("gate_{data_name}_{}", c.metric);
        data.metrics.extend([
            (format!("{name}_challenger"), c.challenger),
            (format!("{name}_champion"), c.champion),
            (format!("{name}_passed"), f64::from(u8::from(c.passed))),
        ]);
    }
    let replay = &comparison.replay;
    data.metrics.extend([
        (
            "replay_served_outcomes".to_string(),
            replay.served_outcomes as f64,
        ),
        ("replay_excluded".to_string(), replay.excluded as f64),
    ]);
}

/// Headline drift figures as metrics, and the tag that makes `drift_features.json` a table
/// in MLflow's UI (log the table with [`drift_table`]).
pub(super) fn push_drift_metrics(data: &mut RunData, drift: &DriftReport) {
    let significant = drift.features.iter().filter(|f| f.significant).count();
    data.metrics.push((
        "drift_detected".to_string(),
        f64::from(u8::from(drift.drift)),
    ));
    data.metrics
        .push(("drift_features_significant".to_string(), significant as f64));
    let max_psi = drift.features.iter().map(|f| f.psi).fold(None, max_of);
    let min_p = drift
        .features
        .iter()
        .map(|f| -f.adjusted_p_value)
        .fold(None, max_of)
        .map(|p| -p);
    if let Some(psi) = max_psi {
        data.metrics.push(("drift_max_psi".to_string(), psi));
    }
    if let Some(p) = min_p {
        data.metrics
            .push(("drift_min_adjusted_p_value".to_string(), p));
    }
    data.params
        .push(("drift_correction".to_string(), drift.correction.to_string()));
    data.params
        .push(("drift_alpha".to_string(), drift.alpha.to_string()));
    data.tags.push((
        LOGGED_ARTIFACTS_TAG.to_string(),
        json!([{ "path": DRIFT_TABLE_PATH, "type": "table" }]).to_string(),
    ));
}

/// The larger, ignoring NaN (a feature with no test result must not hide the others).
fn max_of(acc: Option<f64>, x: f64) -> Option<f64> {
    if x.is_nan() {
        return acc;
    }
    Some(acc.map_or(x, |a| a.max(x)))
}

/// One row per feature, in the `{"columns", "data"}` layout `MlflowClient.log_table` writes.
pub(super) fn drift_table(drift: &DriftReport) -> Result<Vec<u8>, PipelineError> {
    let rows: Vec<_> = drift
        .features
        .iter()
        .map(|f| {
            json!([
                f.feature,
                f.kind,
                f.test,
                f.statistic,
                f.p_value,
                f.adjusted_p_value,
                f.psi,
                f.significant,
                f.reference_n,
                f.current_n
            ])
        })
        .collect();
    json_bytes(&json!({
        "columns": [
            "feature", "kind", "test", "statistic", "p_value", "adjusted_p_value", "psi",
            "significant", "reference_n", "current_n"
        ],
        "data": rows,
    }))
}

/// Prediction figures when there were predictions; a tag saying there were none otherwise.
pub(super) fn push_prediction_metrics(data: &mut RunData, stats: &PredictionStats) {
    if stats.count == 0 {
        data.tags
            .push((NO_PREDICTIONS_TAG.to_string(), "true".to_string()));
        return;
    }
    data.metrics.extend([
        (
            "predictions_since_promotion".to_string(),
            stats.count as f64,
        ),
        (
            "predictions_fraud_share".to_string(),
            stats.fraud_count as f64 / stats.count as f64,
        ),
        (
            "predictions_mean_probability_of_fraud".to_string(),
            stats.mean_probability_of_fraud,
        ),
    ]);
}

pub(super) fn push_common_tags(data: &mut RunData, data_fingerprint: &str, decision: &str) {
    data.tags.extend([
        ("data_fingerprint".to_string(), data_fingerprint.to_string()),
        (
            "code_version".to_string(),
            Provenance::CODE_VERSION.to_string(),
        ),
        ("decision".to_string(), decision.to_string()),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(data: &RunData) -> Vec<&str> {
        data.metrics.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn no_predictions_log_no_figures_but_a_tag() {
        let mut data = RunData::default();
        push_prediction_metrics(&mut data, &PredictionStats::default());
        assert!(data.metrics.is_empty());
        assert_eq!(
            data.tags,
            [(NO_PREDICTIONS_TAG.to_string(), "true".to_string())]
        );

        let mut data = RunData::default();
        let stats = PredictionStats {
            count: 4,
            fraud_count: 1,
            mean_probability_of_fraud: 0.3,
        };
        push_prediction_metrics(&mut data, &stats);
        assert!(data.tags.is_empty());
        assert_eq!(
            data.metrics,
            [
                ("predictions_since_promotion".to_string(), 4.0),
                ("predictions_fraud_share".to_string(), 0.25),
                ("predictions_mean_probability_of_fraud".to_string(), 0.3),
            ]
        );
    }

    #[test]
    fn holdout_names_are_the_same_for_the_model_and_beside_it_for_the_champion() {
        let m = Metrics {
            roc_auc: 0.9,
            accuracy: 0.8,
            precision: 0.5,
            recall: 0.4,
            f1: 0.44,
            brier: 0.1,
            log_loss: 0.3,
            threshold: 0.5,
            support: 10,
            confusion: Default::default(),
            expected_cost: Some(0.4),
            expected_cost_at_0_5: Some(0.6),
            expected_calibration_error: 0.05,
            reliability: crate::model::reliability_table(&[true, false], &[0.7, 0.2]),
        };
        let mut data = RunData::default();
        push_metrics(&mut data, "holdout_", &m);
        push_metrics(&mut data, "champion_holdout_", &m);
        let names = names(&data);
        assert!(names.contains(&"holdout_roc_auc"));
        assert!(names.contains(&"champion_holdout_roc_auc"));
        assert!(names.contains(&"holdout_expected_cost"));
        assert!(names.contains(&"holdout_expected_cost_at_0_5"));
        assert!(names.contains(&"holdout_expected_calibration_error"));
        assert_eq!(names.len(), 22);
        // Metrics stored before calibration was reported log no ECE (not a false 0).
        let old = Metrics {
            reliability: Vec::new(),
            ..m
        };
        let mut data = RunData::default();
        push_metrics(&mut data, "holdout_", &old);
        assert!(!data
            .metrics
            .iter()
            .any(|(k, _)| k == "holdout_expected_calibration_error"));
    }

    #[test]
    fn extremes_skip_nan() {
        assert_eq!(
            [0.2, f64::NAN, 0.5].into_iter().fold(None, max_of),
            Some(0.5)
        );
        assert_eq!([f64::NAN].into_iter().fold(None, max_of), None);
    }
}
