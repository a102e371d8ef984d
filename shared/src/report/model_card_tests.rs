use chrono::TimeZone;

use super::*;
use crate::dataset::{generate_reference, generate_shifted};
use crate::drift::{detect_drift, DriftConfig};
use crate::model::metrics::metrics_from_scores;
use crate::monitor::{reliability, ScoredOutcome};
use crate::schema::Applicant;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 9, 30, 0)
        .single()
        .unwrap_or_default()
}

fn card(source: &str, drift: Option<DriftReport>) -> ModelCard {
    let labels = [true, false, false, true, false, false, false, true];
    let scores = [0.9, 0.2, 0.35, 0.6, 0.05, 0.15, 0.4, 0.3];
    let metrics = metrics_from_scores(&labels, &scores, 0.28).ok();
    let scored: Vec<ScoredOutcome> = labels
        .iter()
        .zip(scores)
        .map(|(&fraud, p)| ScoredOutcome {
            probability_of_fraud: p,
            decided_fraud: p >= 0.28,
            outcome: Some(fraud),
        })
        .collect();
    ModelCard {
        model_name: "fraud-risk".to_string(),
        version: 3,
        run_id: "run-abc".to_string(),
        trained_at: at(30),
        trained_by: "retrain (always)".to_string(),
        code_version: "0.1.0".to_string(),
        training_data: TrainingData {
            rows: 1200,
            distinct_rows: 1180,
            data_fingerprint: "f1ngerpr1nt".to_string(),
            sources: vec![RecordSource {
                source: source.to_string(),
                role: "reference".to_string(),
                rows: 1000,
                first_loaded_at: at(2),
                last_loaded_at: at(20),
            }],
            window: Some("the most recent 1000 rows (200 older rows left out)".to_string()),
        },
        choices: ModelChoices {
            alpha: 0.01,
            cross_validation: vec![
                CvResult {
                    alpha: 0.01,
                    mean_roc_auc: 0.78,
                    std_roc_auc: 0.02,
                },
                CvResult {
                    alpha: 1.0,
                    mean_roc_auc: 0.74,
                    std_roc_auc: 0.03,
                },
            ],
            threshold: 0.28,
            cost_matrix: CostMatrix::default(),
            review_from: Some(0.2),
            calibration: Some(crate::model::calibration::Calibration::Platt { a: 1.02, b: -0.05 }),
        },
        holdout: HoldoutFigures {
            description: "8 rows held out".to_string(),
            metrics,
            reliability: reliability(&scored),
        },
        segments: vec![
            SegmentFigures {
                segment: "age_band".to_string(),
                value: "under 25".to_string(),
                rows: 12,
                frauds: 4,
                flagged_share: 0.5,
                roc_auc: Some(0.7),
                precision: Some(0.5),
                recall: Some(0.75),
                brier: Some(0.2),
            },
            SegmentFigures {
                segment: "sex_marital_status".to_string(),
                value: "3".to_string(),
                rows: 300,
                frauds: 80,
                flagged_share: 0.4,
                roc_auc: None,
                precision: None,
                recall: None,
                brier: None,
            },
        ],
        drift,
        promotion: PromotionRecord {
            promoted: false,
            reason: "the challenger is worse in expected cost".to_string(),
            criteria: Vec::new(),
        },
        limitations: vec!["a fixed caveat".to_string()],
    }
}

fn applicants(records: Vec<crate::schema::LabeledRecord>) -> Vec<Applicant> {
    records.into_iter().map(|r| r.applicant).collect()
}

#[test]
fn the_markdown_has_every_section_the_issue_names() {
    let md = card("german_credit.csv", None).to_markdown();
    for heading in [
        "# Model card: fraud-risk version 3",
        "## Intended use",
        "**Out of scope**",
        "## Training data",
        "## Model and decision",
        "## Holdout figures",
        "Reliability (calibration)",
        "## Figures per segment (holdout)",
        "## Drift at training time",
        "## Promotion decision",
        "## Known limitations",
    ] {
        assert!(md.contains(heading), "missing {heading:?} in\n{md}");
    }
    assert!(md.contains("1200 rows (1180 distinct), fingerprint `f1ngerpr1nt`"));
    assert!(md.contains(
        "| german_credit.csv | reference | 1000 | 2026-11-02 09:30 | 2026-11-20 09:30 |"
    ));
    assert!(md.contains("Training window: the most recent 1000 rows (200 older rows left out)."));
    assert!(md.contains("Decision threshold **0.28**"));
    assert!(md.contains("a missed fraud costs 5, a false alarm 1"));
    assert!(md.contains("Review band: P(fraud) from 0.2"));
    assert!(md.contains("P(fraud) = sigmoid(1.0200 z - 0.0500)"));
    assert!(md.contains("| expected calibration error (10 bins) |"));
    assert!(md.contains("| 0.01 (chosen) | 0.7800 | 0.0200 |"));
    assert!(md.contains("| 1 | 0.7400 | 0.0300 |"));
    // 12 rows is under the small-segment mark, 300 is not.
    assert!(md.contains("| age_band | under 25 | 12 * | 4 | 50.0 % |"));
    assert!(md.contains("| sex_marital_status | 3 | 300 | 80 | 40.0 % | - |"));
    assert!(md.contains("Not promoted: the challenger is worse in expected cost"));
    assert!(md.contains("- a fixed caveat"));
    assert!(md.contains("None tested"));
}

#[test]
fn the_reliability_rows_count_the_holdout() {
    let md = card("a.csv", None).to_markdown();
    // 0.9 alone in the last bin, 0.35 and 0.3 in 0.3-0.4.
    assert!(md.contains("| 0.9-1.0 | 1 | 0.9000 | 1.0000 |"), "{md}");
    assert!(md.contains("| 0.3-0.4 | 2 | 0.3250 | 0.5000 |"), "{md}");
    assert!(md.contains("| 0.7-0.8 | 0 | - | - |"), "{md}");
}

#[test]
fn a_retrain_card_lists_the_drift_test_of_every_feature() {
    let reference = applicants(generate_reference(600, 1));
    let current = applicants(generate_shifted(300, 2));
    let report = detect_drift(&reference, &current, &DriftConfig::default());
    let md = card("a.csv", Some(report.clone())).to_markdown();
    assert!(md.contains("The 300 new rows against the champion's 600 training rows"));
    for feature in &report.features {
        assert!(
            md.contains(&format!("| {} | {} |", feature.feature, feature.test)),
            "{} is not in the drift table",
            feature.feature
        );
    }
    let drifted = report.features.iter().filter(|f| f.significant).count();
    assert_eq!(md.matches("| **yes** |").count(), drifted);
}

#[test]
fn the_html_page_says_the_same_and_loads_nothing() {
    let card = card("german_credit.csv", None);
    let html = card.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("default-src 'none'"));
    assert!(!html.contains("<script"));
    assert!(!html.contains(" src="));
    assert!(html.contains("<h1>Model card: fraud-risk version 3</h1>"));
    assert_eq!(html.matches("<h1>").count(), 1, "the title once");
    for heading in [
        "Intended use",
        "Training data",
        "Holdout figures",
        "Known limitations",
    ] {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
    assert!(html.contains("<td>german_credit.csv</td>"));
    assert!(html.contains("<strong>0.28</strong>"));
    // Every Markdown table is an HTML table: CV, holdout, reliability, sources, segments.
    let md = card.to_markdown();
    let tables = md.lines().filter(|l| l.starts_with("|---")).count();
    assert_eq!(tables, 5);
    assert_eq!(html.matches("<table>").count(), tables);
}

#[test]
fn text_from_data_cannot_break_a_table_or_inject_markup() {
    let hostile = "<script>alert(1)</script>|x\nnext";
    let card = card(hostile, None);
    let md = card.to_markdown();
    assert!(md.contains("| <script>alert(1)</script>\\|x next | reference |"));
    let html = card.to_html();
    assert!(!html.contains("<script>"), "raw markup passed through");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;|x next"));
    // The sources table still has its five columns.
    let row = html
        .split("<tr>")
        .find(|r| r.contains("alert(1)"))
        .unwrap_or_default();
    assert_eq!(row.matches("<td").count(), 5, "{row}");
}
