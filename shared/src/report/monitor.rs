//! The monitor report's page: window, alerts, input drift, score distributions, data quality,
//! calibration, realized ROC AUC by week and the performance tables.

use super::drift::{drift_sections, quality_section};
use super::svg::{line_chart, reliability_chart, vertical_bars, Pair};
use super::{escape, legend, p_value, percent, short_number, table, Page};
use crate::monitor::{MonitorReport, PerformanceFigures, ReliabilityBin, SCORE_HISTOGRAM_BINS};
use crate::schema::{Domain, FEATURES};

/// A time to the second, for people.
fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A segment's name, with the codebook's label for a `sex_marital_status` code.
fn segment_name(segment: &str, value: &str) -> String {
    let label = FEATURES
        .iter()
        .find(|f| f.name == segment)
        .and_then(|f| match f.domain {
            Domain::Codes(codes) => codes
                .iter()
                .find(|(code, _)| code.to_string() == value)
                .map(|(_, label)| *label),
            Domain::Range { .. } => None,
        });
    match label {
        Some(label) => format!("{segment} {value}: {label}"),
        None => format!("{segment} {value}"),
    }
}

/// The whole page of a monitor report.
pub fn monitor_html(report: &MonitorReport) -> String {
    let w = &report.window;
    let mut page = Page::new(&format!(
        "Monitor report: champion version {}",
        w.champion_version
    ));
    let bound =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(time).unwrap_or_else(|| "-".to_string());
    page.element(
        "p",
        "context",
        &format!(
            "{} predictions served from {} until {} by version {} (promoted {}); inputs compared with its {} training rows, scores with {} ({}).{}",
            w.served,
            bound(w.since),
            bound(w.until),
            w.champion_version,
            time(w.champion_promoted_at),
            w.reference_rows,
            w.score_reference.describe(),
            w.score_reference_rows,
            if w.truncated {
                " The window held more predictions: the oldest ones were examined (narrow it with --until)."
            } else {
                ""
            }
        ),
    );

    page.element("h2", "", "Alerts");
    if report.alerts.is_empty() {
        page.element("p", "verdict", "No alert.");
    } else {
        page.raw("<ul class=\"alerts\">\n");
        for alert in &report.alerts {
            page.raw(&format!(
                "<li><strong>{}</strong>: {}</li>\n",
                escape(&alert.kind),
                escape(&alert.detail)
            ));
        }
        page.raw("</ul>\n");
    }

    page.element(
        "h2",
        "",
        "Input drift: served inputs against the training data",
    );
    drift_sections(&mut page, &report.input_drift, "h3");

    page.element("h2", "", "Prediction drift: P(fraud)");
    scores_section(&mut page, report);

    page.element("h2", "", "Data quality of the logged inputs");
    page.raw(&quality_section(&report.data_quality));

    page.element("h2", "", "Realized performance");
    performance_section(&mut page, report);
    page.finish()
}

fn scores_section(page: &mut Page, report: &MonitorReport) {
    let s = &report.prediction_drift;
    page.element(
        "p",
        if s.drift { "verdict alarm" } else { "verdict" },
        &format!(
            "{}{}",
            if s.drift {
                "Score drift."
            } else {
                "No score drift."
            },
            s.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
    );
    let rows = vec![
        (
            String::new(),
            vec![
                (
                    "",
                    format!("Kolmogorov-Smirnov on P(fraud), {}", s.ks_method),
                ),
                ("num", short_number(s.ks_statistic)),
                ("num", p_value(s.ks_p_value)),
                ("num", String::new()),
                ("num", String::new()),
            ],
        ),
        (
            String::new(),
            vec![
                (
                    "",
                    "two-proportion z on the fraud-decision rate".to_string(),
                ),
                ("num", short_number(s.decision_rate_z)),
                ("num", p_value(s.decision_rate_p_value)),
                ("num", percent(s.reference_fraud_rate)),
                ("num", percent(s.current_fraud_rate)),
            ],
        ),
        (
            String::new(),
            vec![
                ("", "PSI over the reference deciles".to_string()),
                ("num", short_number(s.psi)),
                ("num", String::new()),
                ("num", String::new()),
                ("num", String::new()),
            ],
        ),
    ];
    page.raw(&table(
        &["test", "statistic", "p", "reference", "served"],
        &rows,
    ));
    let total = |counts: &[u64]| counts.iter().sum::<u64>();
    let share = |counts: &[u64]| -> Vec<f64> {
        let n = total(counts);
        counts
            .iter()
            .map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
            .collect()
    };
    let width = 1.0 / SCORE_HISTOGRAM_BINS as f64;
    let labels: Vec<String> = (0..SCORE_HISTOGRAM_BINS)
        .map(|k| format!("{:.2}", k as f64 * width))
        .collect();
    let (reference, current) = (share(&s.histogram.reference), share(&s.histogram.current));
    page.raw(&legend(
        &format!(
            "reference: {} ({})",
            report.window.score_reference.describe(),
            s.reference_n
        ),
        &format!("served ({})", s.current_n),
    ));
    page.raw("<figure><figcaption>P(fraud) in 20 bins of 0.05 <small>(x: bin's lower edge)</small></figcaption>\n");
    page.raw(&vertical_bars(
        &Pair {
            labels: &labels,
            reference: &reference,
            current: &current,
        },
        "P(fraud): share of reference and served scores per bin of 0.05",
        2,
    ));
    page.raw("</figure>\n");
}

fn performance_section(page: &mut Page, report: &MonitorReport) {
    let p = &report.performance;
    page.element(
        "p",
        "context",
        &format!(
            "{} of {} predictions have an outcome ({}); decisions as served.",
            p.overall.labelled,
            p.overall.served,
            percent(p.overall.label_coverage)
        ),
    );
    page.raw("<div class=\"charts\">\n");
    page.raw("<figure><figcaption>Reliability <small>(predictions with outcomes in 10 bins of P(fraud); labels: counts)</small></figcaption>\n");
    let points: Vec<(f64, f64, usize)> = p
        .reliability
        .iter()
        .filter_map(|b| Some((b.mean_predicted?, b.observed_fraud_share?, b.count)))
        .collect();
    if points.is_empty() {
        page.raw("<p>No prediction has an outcome yet.</p>");
    } else {
        page.raw(&reliability_chart(
            &points,
            "Observed fraud share against mean predicted P(fraud), per bin",
        ));
    }
    page.raw("</figure>\n");
    page.raw("<figure><figcaption>Realized ROC AUC by ISO week</figcaption>\n");
    if p.by_week.iter().all(|w| w.figures.roc_auc.is_none()) {
        page.raw("<p>No week has outcomes of both kinds yet: no ROC AUC.</p>");
    } else {
        let labels: Vec<String> = p.by_week.iter().map(|w| w.week.clone()).collect();
        let values: Vec<Option<f64>> = p.by_week.iter().map(|w| w.figures.roc_auc).collect();
        page.raw(&line_chart(
            &labels,
            &values,
            "Realized ROC AUC per ISO week",
        ));
    }
    page.raw("</figure>\n</div>\n");
    page.element("h3", "", "Reliability bins");
    page.raw(&reliability_table(&p.reliability));

    page.element("h3", "", "Per model version and ISO week");
    let mut rows = vec![figures_row("all".to_string(), &p.overall)];
    rows.extend(
        p.by_version
            .iter()
            .map(|v| figures_row(format!("version {}", v.model_version), &v.figures)),
    );
    rows.extend(
        p.by_week
            .iter()
            .map(|w| figures_row(w.week.clone(), &w.figures)),
    );
    page.raw(&table(&header("group"), &rows));
    page.element("h3", "", "Segments");
    let rows: Vec<_> = report
        .segments
        .iter()
        .map(|s| figures_row(segment_name(&s.segment, &s.value), &s.figures))
        .collect();
    page.raw(&table(&header("segment"), &rows));
}

fn reliability_table(bins: &[ReliabilityBin]) -> String {
    let optional = |v: Option<f64>| v.map(short_number).unwrap_or_else(|| "-".to_string());
    let rows: Vec<_> = bins
        .iter()
        .map(|b| {
            (
                String::new(),
                vec![
                    ("", format!("{:.1}–{:.1}", b.lower, b.upper)),
                    ("num", b.count.to_string()),
                    ("num", optional(b.mean_predicted)),
                    ("num", optional(b.observed_fraud_share)),
                ],
            )
        })
        .collect();
    table(
        &[
            "P(fraud) bin",
            "with outcome",
            "mean predicted",
            "observed fraud share",
        ],
        &rows,
    )
}

fn header(first: &str) -> [&str; 10] {
    [
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
    ]
}

fn figures_row(name: String, f: &PerformanceFigures) -> (String, Vec<(&'static str, String)>) {
    let optional = |v: Option<f64>| v.map(short_number).unwrap_or_else(|| "-".to_string());
    (
        String::new(),
        vec![
            ("", name),
            ("num", f.served.to_string()),
            ("num", f.labelled.to_string()),
            ("num", percent(f.label_coverage)),
            ("num", f.frauds.to_string()),
            ("num", optional(f.roc_auc)),
            ("num", optional(f.precision)),
            ("num", optional(f.recall)),
            ("num", optional(f.f1)),
            ("num", optional(f.brier)),
        ],
    )
}
