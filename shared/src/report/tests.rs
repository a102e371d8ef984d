//! The pages: escaped data, every feature present, nothing that loads or runs, balanced tags.

use super::*;
use crate::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use crate::drift::{detect_drift, DriftConfig, DriftReport};
use crate::monitor::{monitor_report, MonitorInput, MonitorReport, MonitorSettings, MonitorWindow};
use crate::ports::{MonitoredPrediction, PredictionLogEntry};
use crate::schema::{Applicant, FEATURES};

fn rows(kind: GeneratedKind, n: usize) -> Vec<Applicant> {
    let config = GeneratorConfig {
        seed: 7,
        reference_rows: n,
        shifted_rows: n,
    };
    generated_rows(kind, config)
        .into_iter()
        .map(|r| r.record.applicant)
        .collect()
}

fn drift_report() -> DriftReport {
    detect_drift(
        &rows(GeneratedKind::Reference, 600),
        &rows(GeneratedKind::Shifted, 300),
        &DriftConfig::default(),
    )
}

fn monitor() -> MonitorReport {
    let reference = rows(GeneratedKind::Reference, 400);
    let reference_scores: Vec<f64> = (0..reference.len())
        .map(|i| (i % 100) as f64 / 100.0)
        .collect();
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap();
    let served: Vec<MonitoredPrediction> = rows(GeneratedKind::Shifted, 150)
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = ((i * 37) % 100) as f64 / 100.0;
            MonitoredPrediction {
                entry: PredictionLogEntry {
                    prediction_id: uuid::Uuid::from_u128(i as u128 + 1),
                    created_at: start + chrono::Duration::days((i / 10) as i64),
                    model_version: 1,
                    threshold: 0.5,
                    probability_of_fraud: p,
                    fraud: p >= 0.5,
                    features: a.to_json(),
                    username: None,
                    reason_codes: Vec::new(),
                },
                outcome: (i % 3 != 0).then_some((i * 7) % 10 < 4 + usize::from(p > 0.5) * 3),
            }
        })
        .collect();
    let window = MonitorWindow {
        since: Some(start),
        until: None,
        champion_version: 1,
        champion_promoted_at: start,
        served: served.len(),
        truncated: false,
        reference_rows: reference.len(),
        score_reference: crate::monitor::ScoreReferenceSource::Holdout,
        score_reference_rows: reference_scores.len(),
    };
    let input = MonitorInput {
        reference: &reference,
        reference_scores: &reference_scores,
        threshold: 0.5,
        served: &served,
    };
    monitor_report(input, window, &MonitorSettings::default())
}

/// Elements without a closing tag in HTML.
const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];

/// Checks that every tag is closed in order (a tiny parser: enough for markup this module
/// writes, which never puts `<` or `>` in attribute values or text unescaped).
fn assert_balanced(html: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').expect("a tag is closed by >");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().unwrap_or_default();
            assert_eq!(open, name.trim(), "closing tag out of order");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        if name == "style" {
            let close = rest.find("</style>").expect("style is closed");
            assert!(!rest[..close].contains('<'));
            rest = &rest[close + "</style>".len()..];
            continue;
        }
        stack.push(name);
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

/// Nothing runs and nothing is fetched.
fn assert_inert(html: &str) {
    let lower = html.to_lowercase();
    for forbidden in [
        "<script", "http://", "https://", " src=", " href=", "url(", "@import", "<link", "<img",
        "<iframe", " on",
    ] {
        // An event handler attribute: ` on<letters>=` inside a tag.
        if forbidden == " on" {
            for tag in lower.split('<').skip(1) {
                let inside = tag.split('>').next().unwrap_or("");
                for (at, _) in inside.match_indices(" on") {
                    let name: String = inside[at + 3..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .collect();
                    assert!(
                        !inside[at + 3 + name.len()..].starts_with('='),
                        "event handler attribute in <{inside}>"
                    );
                }
            }
        } else {
            assert!(!lower.contains(forbidden), "{forbidden} in the page");
        }
    }
}

#[test]
fn drift_page_has_every_feature_a_chart_each_and_no_active_content() {
    let report = drift_report();
    assert!(report.drift, "the generated shifted rows drift");
    let html = drift_html(
        &report,
        "Drift report",
        "generated reference against shifted",
    );
    assert_balanced(&html);
    assert_inert(&html);
    assert!(html.contains("Drift: "));
    for feature in FEATURES.iter() {
        assert!(html.contains(feature.name), "{}", feature.name);
        assert!(html.contains(&escape(feature.label)), "{}", feature.label);
    }
    assert_eq!(html.matches("<figure").count(), FEATURES.len());
    assert_eq!(html.matches("<svg").count(), FEATURES.len());
    let drifted = report.features.iter().filter(|f| f.significant).count();
    assert_eq!(html.matches("<tr class=\"drifted\">").count(), drifted);
    // Codebook labels name the bars.
    assert!(html.contains("radio or television"));
}

#[test]
fn hostile_text_is_escaped() {
    let mut report = drift_report();
    let hostile = "<script>alert('x')</script> & \"<img src=x onerror=alert(1)>\"";
    report.features[0].note = Some(hostile.to_string());
    report.features[1].feature = hostile.to_string();
    let html = drift_html(&report, hostile, hostile);
    assert_balanced(&html);
    assert!(!html.contains("<script") && !html.contains("<img"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;&lt;img"));
}

#[test]
fn monitor_page_has_alerts_scores_reliability_and_weeks() {
    let mut report = monitor();
    report.alerts.push(crate::monitor::Alert {
        kind: "<b>kind</b>".to_string(),
        detail: "detail <script>".to_string(),
    });
    let html = monitor_html(&report);
    assert_balanced(&html);
    assert_inert(&html);
    let alerts = html.find("<h2>Alerts</h2>").unwrap();
    let drift = html.find("Input drift").unwrap();
    assert!(alerts < drift, "alerts come first");
    assert!(html.contains("&lt;b&gt;kind&lt;/b&gt;"));
    // 20 input charts, the score histogram, the reliability diagram, AUC by week.
    assert_eq!(html.matches("<svg").count(), FEATURES.len() + 3);
    assert!(html.contains("Reliability bins"));
    for week in &report.performance.by_week {
        assert!(html.contains(&week.week));
    }
    assert_eq!(
        report
            .prediction_drift
            .histogram
            .current
            .iter()
            .sum::<u64>(),
        150
    );
    assert_eq!(
        report
            .performance
            .reliability
            .iter()
            .map(|b| b.count)
            .sum::<usize>(),
        report.performance.overall.labelled
    );
}

#[test]
fn empty_reports_render() {
    let report = detect_drift(&[], &[], &DriftConfig::default());
    let html = drift_html(&report, "Empty", "");
    assert_balanced(&html);
    assert!(html.contains("No drift"));
    assert_eq!(html.matches("<svg").count(), 0);
}

#[test]
fn numbers_for_people() {
    assert_eq!(short_number(0.12345678), "0.1235");
    assert_eq!(short_number(2.0), "2");
    assert_eq!(short_number(12345.6), "12346");
    assert_eq!(short_number(1.5e-7), "1.500e-7");
    assert_eq!(p_value(1e-12), "1.00e-12");
    assert_eq!(short_number(f64::NAN), "-");
}
