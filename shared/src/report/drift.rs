//! The drift report's sections: verdict, the table of tests, data quality, and per feature a
//! reference-vs-current chart.

use super::svg::{horizontal_bars, vertical_bars, Pair};
use super::{escape, legend, p_value, percent, short_number, table, Page};
use crate::dataset::DataQuality;
use crate::drift::{DistributionBin, DriftReport, FeatureDistribution, FeatureDrift};
use crate::schema::{Domain, FeatureKind, FEATURES};

/// The whole page of a drift report; `context` says what was compared (files, rows, runs).
pub fn drift_html(report: &DriftReport, title: &str, context: &str) -> String {
    let mut page = Page::new(title);
    page.element("p", "context", context);
    drift_sections(&mut page, report, "h2");
    page.finish()
}

/// The verdict sentence of a drift report.
pub(crate) fn verdict(report: &DriftReport) -> String {
    let drifted: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.significant)
        .map(|f| f.feature.as_str())
        .collect();
    let rule = format!(
        "adjusted p < {} ({}){}",
        report.alpha,
        report.correction,
        report
            .min_psi
            .map(|m| format!(" and PSI ≥ {m}"))
            .unwrap_or_default()
    );
    if drifted.is_empty() {
        format!(
            "No drift: none of the {} features drifted ({rule}).",
            report.features.len()
        )
    } else {
        format!(
            "Drift: {} of {} features drifted ({rule}): {}.",
            drifted.len(),
            report.features.len(),
            drifted.join(", ")
        )
    }
}

/// Verdict, tests, data quality and charts, under headings of level `heading`.
pub(crate) fn drift_sections(page: &mut Page, report: &DriftReport, heading: &str) {
    page.element(
        "p",
        if report.drift {
            "verdict alarm"
        } else {
            "verdict"
        },
        &verdict(report),
    );
    page.element(
        "p",
        "context",
        &format!(
            "{} reference rows, {} current rows.",
            report.reference_rows, report.current_rows
        ),
    );
    page.element(heading, "", "Tests");
    page.raw(&tests_table(report));
    if let Some(quality) = &report.data_quality {
        page.element(heading, "", "Data quality");
        page.raw(&quality_section(quality));
    }
    page.element(heading, "", "Reference and current, feature by feature");
    page.raw(&legend("reference", "current"));
    page.raw("<div class=\"charts\">\n");
    for feature in &report.features {
        page.raw(&feature_figure(feature));
    }
    page.raw("</div>\n");
}

fn label_of(name: &str) -> &'static str {
    FEATURES
        .iter()
        .find(|f| f.name == name)
        .map_or("", |f| f.label)
}

fn tests_table(report: &DriftReport) -> String {
    let rows: Vec<(String, Vec<(&str, String)>)> = report
        .features
        .iter()
        .map(|f| {
            (
                if f.significant { "drifted" } else { "" }.to_string(),
                vec![
                    ("", format!("{} ({})", label_of(&f.feature), f.feature)),
                    ("", f.kind.as_str().to_string()),
                    ("", f.test.clone()),
                    ("num", short_number(f.statistic)),
                    ("num", p_value(f.p_value)),
                    ("num", p_value(f.adjusted_p_value)),
                    ("num", short_number(f.psi)),
                    ("num", format!("{} / {}", f.reference_n, f.current_n)),
                    (
                        "",
                        if f.significant { "drifted" } else { "stable" }.to_string(),
                    ),
                    ("note", f.note.clone().unwrap_or_default()),
                ],
            )
        })
        .collect();
    table(
        &[
            "feature",
            "kind",
            "test",
            "statistic",
            "p",
            "adjusted p",
            "PSI",
            "n (ref / cur)",
            "decision",
            "note",
        ],
        &rows,
    )
}

/// Data quality: the rows with issues and, per feature with a bad value, its counts and
/// examples.
pub(crate) fn quality_section(quality: &DataQuality) -> String {
    let mut html = format!(
        "<p>{} of {} rows hold a missing or out-of-domain value{}</p>\n",
        quality.rows_with_issues,
        quality.rows,
        if quality.is_clean() {
            "."
        } else {
            ": those values were left out of their feature's test."
        }
    );
    let rows: Vec<(String, Vec<(&str, String)>)> = quality
        .with_issues()
        .map(|f| {
            let examples: Vec<String> = f
                .examples
                .iter()
                .map(|e| {
                    let place = match (&e.line, &e.prediction_id) {
                        (Some(line), _) => format!("line {line}"),
                        (None, Some(id)) => format!("prediction {id}"),
                        (None, None) => String::new(),
                    };
                    format!("{place}: {:?} ({})", e.value, e.rule)
                })
                .collect();
            (
                String::new(),
                vec![
                    ("", f.feature.clone()),
                    ("num", f.missing.to_string()),
                    ("num", percent(f.missing_share)),
                    ("num", f.out_of_domain.to_string()),
                    ("num", percent(f.out_of_domain_share)),
                    ("note", examples.join("; ")),
                ],
            )
        })
        .collect();
    if !rows.is_empty() {
        html.push_str(&table(
            &[
                "feature",
                "missing",
                "share",
                "out of domain",
                "share",
                "examples",
            ],
            &rows,
        ));
    }
    html
}

fn feature_figure(feature: &FeatureDrift) -> String {
    let label = label_of(&feature.feature);
    let mut html = format!(
        "<figure class=\"{}\"><figcaption>{} <small>({}, {}; PSI {}, adjusted p {}{})</small></figcaption>\n",
        if feature.significant { "drifted" } else { "stable" },
        escape(label),
        escape(&feature.feature),
        feature.kind.as_str(),
        short_number(feature.psi),
        p_value(feature.adjusted_p_value),
        if feature.significant { ", drifted" } else { "" }
    );
    match &feature.distribution {
        Some(distribution) if distribution.totals() != [0, 0] => {
            html.push_str(&chart(feature, label, distribution));
        }
        _ => html.push_str("<p>No chart: a side had no values for this feature.</p>"),
    }
    html.push_str("</figure>\n");
    html
}

fn shares(counts: impl Iterator<Item = u64>, total: u64) -> Vec<f64> {
    counts
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

fn chart(feature: &FeatureDrift, label: &str, distribution: &FeatureDistribution) -> String {
    let [ref_total, cur_total] = distribution.totals();
    let reference = shares(distribution.bins.iter().map(|b| b.reference), ref_total);
    let current = shares(distribution.bins.iter().map(|b| b.current), cur_total);
    let title = format!("{label}: share of reference and current values per bin");
    if feature.kind == FeatureKind::Numeric {
        let labels: Vec<String> = distribution.bins.iter().map(decile_label).collect();
        let pair = Pair {
            labels: &labels,
            reference: &reference,
            current: &current,
        };
        format!(
            "{}<p class=\"context\">Bins cut at the reference's deciles (x: value range).</p>",
            vertical_bars(&pair, &title, 1)
        )
    } else {
        let codebook = FEATURES
            .iter()
            .find(|f| f.name == feature.feature)
            .and_then(|f| match f.domain {
                Domain::Codes(codes) => Some(codes),
                Domain::Range { .. } => None,
            })
            .unwrap_or(&[]);
        let labels: Vec<String> = distribution
            .bins
            .iter()
            .map(|b| code_label(b, codebook))
            .collect();
        let pair = Pair {
            labels: &labels,
            reference: &reference,
            current: &current,
        };
        horizontal_bars(&pair, &title)
    }
}

fn code_label(bin: &DistributionBin, codebook: &[(i64, &str)]) -> String {
    match bin.value {
        Some(value) => match codebook.iter().find(|(code, _)| *code as f64 == value) {
            Some((code, text)) => format!("{code}: {text}"),
            None => format!("{} (not a code)", short_number(value)),
        },
        None => "other values".to_string(),
    }
}

fn decile_label(bin: &DistributionBin) -> String {
    match (bin.lower, bin.upper) {
        (None, Some(upper)) => format!("≤ {}", short_number(upper)),
        (Some(lower), None) => format!("> {}", short_number(lower)),
        (Some(lower), Some(upper)) => {
            format!("{}–{}", short_number(lower), short_number(upper))
        }
        (None, None) => "all".to_string(),
    }
}
