//! `fraudctl monitor` as tables: the window, input drift, score drift, data quality,
//! realized performance by version, week and segment, and the alerts.

use comfy_table::{Cell, CellAlignment};
use fraudrisk::monitor::{MonitorReport, PerformanceFigures};

use crate::output::{emit, number, p_value, print_data_quality, print_drift_table, table};
use crate::Format;

pub fn print_monitor(format: Format, report: &MonitorReport) {
    emit(format, report, || print_tables(report));
}

fn print_tables(report: &MonitorReport) {
    let w = &report.window;
    let bound = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".to_string())
    };
    outln!(
        "Monitor: champion version {} (promoted {}); {} predictions served from {} until {}{}; \
         reference: its {} training rows",
        w.champion_version,
        w.champion_promoted_at.to_rfc3339(),
        w.served,
        bound(w.since),
        bound(w.until),
        if w.truncated {
            " (the window was cut at the oldest ones: narrow it with --until)"
        } else {
            ""
        },
        w.reference_rows
    );
    outln!();
    outln!("Input drift (served inputs against the training data):");
    print_drift_table(&report.input_drift);
    outln!();

    let s = &report.prediction_drift;
    outln!(
        "Prediction drift ({} reference scores, {} served):",
        s.reference_n,
        s.current_n
    );
    let mut t = table(&["test", "statistic", "p", "reference", "served"]);
    t.add_row(vec![
        Cell::new(format!("Kolmogorov-Smirnov on P(fraud), {}", s.ks_method)),
        number(s.ks_statistic),
        p_value(s.ks_p_value),
        Cell::new(""),
        Cell::new(""),
    ]);
    t.add_row(vec![
        Cell::new("two-proportion z on the fraud-decision rate"),
        number(s.decision_rate_z),
        p_value(s.decision_rate_p_value),
        percent(s.reference_fraud_rate),
        percent(s.current_fraud_rate),
    ]);
    t.add_row(vec![
        Cell::new("PSI over the reference deciles"),
        number(s.psi),
        Cell::new(""),
        Cell::new(""),
        Cell::new(""),
    ]);
    outln!("{t}");
    outln!(
        "Verdict: {}{}",
        if s.drift {
            "score drift"
        } else {
            "no score drift"
        },
        s.note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    outln!();
    print_data_quality(&report.data_quality);
    outln!();

    let p = &report.performance;
    outln!("Realized performance (predictions with outcomes; decisions as served):");
    let mut t = performance_table("group");
    t.add_row(figures_row("all".to_string(), &p.overall));
    for v in &p.by_version {
        t.add_row(figures_row(
            format!("version {}", v.model_version),
            &v.figures,
        ));
    }
    for week in &p.by_week {
        t.add_row(figures_row(week.week.clone(), &week.figures));
    }
    outln!("{t}");
    outln!();
    outln!("Segments:");
    let mut t = performance_table("segment");
    for segment in &report.segments {
        t.add_row(figures_row(
            format!("{} {}", segment.segment, segment.value),
            &segment.figures,
        ));
    }
    outln!("{t}");
    outln!();
    if report.alerts.is_empty() {
        outln!("Alerts: none");
    } else {
        outln!("Alerts:");
        for alert in &report.alerts {
            outln!("- {}: {}", alert.kind, alert.detail);
        }
    }
}

fn performance_table(first: &str) -> comfy_table::Table {
    table(&[
        first,
        "served",
        "with outcome",
        "coverage",
        "frauds",
        "ROC AUC",
        "precision",
        "recall",
        "F1",
        "Brier",
    ])
}

fn figures_row(name: String, f: &PerformanceFigures) -> Vec<Cell> {
    let optional = |value: Option<f64>| match value {
        Some(v) => number(v),
        None => Cell::new("-").set_alignment(CellAlignment::Right),
    };
    vec![
        Cell::new(name),
        Cell::new(f.served).set_alignment(CellAlignment::Right),
        Cell::new(f.labelled).set_alignment(CellAlignment::Right),
        percent(f.label_coverage),
        Cell::new(f.frauds).set_alignment(CellAlignment::Right),
        optional(f.roc_auc),
        optional(f.precision),
        optional(f.recall),
        optional(f.f1),
        optional(f.brier),
    ]
}

fn percent(share: f64) -> Cell {
    Cell::new(format!("{:.1} %", 100.0 * share)).set_alignment(CellAlignment::Right)
}
