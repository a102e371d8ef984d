//! The monitor's report from what the store aggregates, so that its memory does not grow with
//! the prediction log: per feature the distinct logged values with their counts (an SQL
//! `GROUP BY`), and one streamed pass over the window's scores ([`super::WindowScan`]). The
//! figures equal the row-level report's ([`super::monitor_report`]): the same tests on the
//! same counts (`shared/tests/monitor_aggregates.rs` and the PostgreSQL test prove it).

use super::performance::{segment_list, Performance, VersionPerformance, WeekPerformance};
use super::scores::{compare_scores, ScoreSide};
use super::window_scan::{ScannedWindow, ScoreReference};
use super::{alerts, logged_value, MonitorReport, MonitorSettings, MonitorWindow};
use crate::dataset::DataQuality;
use crate::drift::detect_drift_grouped;
use crate::schema::{Applicant, FEATURES};

/// Per feature, in schema order: each distinct value logged (as the JSON it was stored as) and
/// how many predictions of the window hold it. A feature absent from an input object is not
/// listed: the missing count is the window's predictions minus the feature's sum.
pub type FeatureValueCounts = Vec<Vec<(serde_json::Value, u64)>>;

/// What the store computes over a window for the monitor.
#[derive(Clone, Debug)]
pub struct WindowAggregates {
    pub feature_values: FeatureValueCounts,
    pub scan: ScannedWindow,
}

impl WindowAggregates {
    /// Each feature's values as the drift tests read them, with their counts (a missing or
    /// unusable value as NaN, which the tests leave out), and whether any cell was bad: then
    /// the data quality has to be read row by row, for the rows with issues and the examples.
    pub fn current_columns(&self) -> (Vec<Vec<(f64, u64)>>, bool) {
        let mut any_bad = false;
        let columns = FEATURES
            .iter()
            .enumerate()
            .map(|(j, feature)| {
                let logged = self.feature_values.get(j).map_or(&[][..], Vec::as_slice);
                let mut column: Vec<(f64, u64)> = logged
                    .iter()
                    .map(|(value, count)| {
                        let value = logged_value(feature, Some(value)).unwrap_or_else(|_| {
                            any_bad = true;
                            f64::NAN
                        });
                        (value, *count)
                    })
                    .collect();
                let present: u64 = logged.iter().map(|g| g.1).sum();
                let missing = self.scan.served.saturating_sub(present);
                if missing > 0 {
                    any_bad = true;
                    column.push((f64::NAN, missing));
                }
                column
            })
            .collect();
        (columns, any_bad)
    }
}

/// The report from the aggregates: `reference` is the champion's training rows,
/// `scores` its scores on them (the reference the scan was made against), `data_quality` the
/// window's (clean, or read row by row when [`WindowAggregates::current_columns`] found a bad
/// cell).
pub fn monitor_report_from_aggregates(
    reference: &[Applicant],
    scores: &ScoreReference,
    aggregates: &WindowAggregates,
    data_quality: DataQuality,
    window: MonitorWindow,
    settings: &MonitorSettings,
) -> MonitorReport {
    let (columns, _) = aggregates.current_columns();
    let scan = &aggregates.scan;
    let served = usize::try_from(scan.served).unwrap_or(usize::MAX);
    let input_drift = detect_drift_grouped(reference, &columns, served, &settings.drift);
    let (n, fraud, decile_counts, histogram) = ScannedWindow::reference_parts(scores);
    let reference_side = ScoreSide {
        n,
        decisions: n as u64,
        fraud,
        decile_counts,
        histogram,
    };
    let current_side = ScoreSide {
        n: usize::try_from(scan.finite_scores).unwrap_or(usize::MAX),
        decisions: scan.served,
        fraud: scan.fraud_decisions,
        decile_counts: scan.decile_counts,
        histogram: scan.histogram.clone(),
    };
    let prediction_drift = compare_scores(
        &reference_side,
        &current_side,
        scan.ks,
        settings.drift.alpha,
    );
    let performance = Performance {
        overall: scan.overall.clone(),
        by_version: scan
            .by_version
            .iter()
            .map(|(model_version, figures)| VersionPerformance {
                model_version: *model_version,
                figures: figures.clone(),
            })
            .collect(),
        by_week: scan
            .by_week
            .iter()
            .map(|(week, figures)| WeekPerformance {
                week: week.clone(),
                figures: figures.clone(),
            })
            .collect(),
        reliability: scan.reliability.bins(),
    };
    let segments = segment_list(scan.by_age_band.clone(), scan.by_sex_marital_status.clone());
    let alerts = alerts(
        &window,
        &input_drift,
        &prediction_drift,
        &data_quality,
        &performance,
        settings,
    );
    MonitorReport {
        window,
        input_drift,
        prediction_drift,
        data_quality,
        performance,
        segments,
        alerts,
    }
}
