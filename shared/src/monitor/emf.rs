//! The monitor's figures as CloudWatch metrics in Embedded Metric Format: JSON log lines that
//! CloudWatch Logs turns into metrics (no API call, no extra permission), which the alarms in
//! template.yaml watch.
//!
//! One document carries the headline metrics, per `ModelVersion` and also without dimensions
//! (the series the alarms watch, whichever version serves); one more per feature carries its
//! PSI per `ModelVersion` and `Feature` and per `Feature` alone, so a dashboard can chart every
//! feature under one metric name.

use serde_json::{json, Map, Value};

use super::MonitorReport;

/// The metric namespace (template.yaml's alarms use the same).
pub const METRIC_NAMESPACE: &str = "FraudRisk/Monitor";

/// The EMF documents of a report, `timestamp_ms` milliseconds since the epoch.
pub fn emf_documents(report: &MonitorReport, timestamp_ms: i64) -> Vec<Value> {
    let version = report.window.champion_version.to_string();
    let drifted = report
        .input_drift
        .features
        .iter()
        .filter(|f| f.significant)
        .count();
    let max_psi = report
        .input_drift
        .features
        .iter()
        .map(|f| f.psi)
        .fold(0.0, f64::max);
    let scores = &report.prediction_drift;
    let overall = &report.performance.overall;
    let mut metrics: Vec<(&str, &str, f64)> = vec![
        ("ServedPredictions", "Count", report.window.served as f64),
        ("DriftedFeatures", "Count", drifted as f64),
        ("MaxPsi", "None", max_psi),
        ("ScoreKsStatistic", "None", scores.ks_statistic),
        ("ScoreKsPValue", "None", scores.ks_p_value),
        ("ScorePsi", "None", scores.psi),
        ("ScoreDrift", "Count", f64::from(u8::from(scores.drift))),
        ("FraudDecisionRate", "None", scores.current_fraud_rate),
        ("LabelCoverage", "None", overall.label_coverage),
        ("Alerts", "Count", report.alerts.len() as f64),
    ];
    // No outcomes of both kinds yet: no AUC point, so the alarm sees missing data, not 0.
    if let Some(auc) = overall.roc_auc {
        metrics.push(("RealizedRocAuc", "None", auc));
    }
    let mut documents = vec![document(
        timestamp_ms,
        &[("ModelVersion", version.as_str())],
        &metrics,
    )];
    for feature in &report.input_drift.features {
        documents.push(document(
            timestamp_ms,
            &[
                ("ModelVersion", version.as_str()),
                ("Feature", feature.feature.as_str()),
            ],
            &[("FeaturePsi", "None", feature.psi)],
        ));
    }
    documents
}

fn document(
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, &str, f64)],
) -> Value {
    // Every dimension, and the same without the model version (the version-free series).
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    let without_version: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| *name != "ModelVersion")
        .collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [names, without_version],
                "Metrics": definitions,
            }],
        }),
    );
    for (name, value) in dimensions {
        root.insert((*name).to_string(), json!(value));
    }
    for (name, _, value) in metrics {
        // The report holds no NaN or infinity; a value that did would be dropped by JSON.
        root.insert((*name).to_string(), json!(value));
    }
    Value::Object(root)
}
