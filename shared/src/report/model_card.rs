//! The model card of a version: what the people who approve a model read (intended use,
//! training data, the choices made, holdout figures with calibration, figures per segment, the
//! drift at training time, the promotion decision, known limitations).
//!
//! Written once as Markdown; the HTML page is that Markdown rendered (pulldown-cmark) inside the
//! reports' self-contained page, so both always say the same. Raw HTML in the Markdown (from a
//! source file's name, say) is shown as text, never passed through.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use pulldown_cmark::{html, Event, Options, Parser};
use serde::Serialize;

use crate::dataset::RecordSource;
use crate::drift::DriftReport;
use crate::model::calibration::Calibration;
use crate::model::{CostMatrix, CvResult, Metrics};
use crate::monitor::ReliabilityBin;
use crate::pipeline::promotion::Criterion;

use super::{p_value, short_number, Page};

/// File names of the card, in the version's folder and in its training run.
pub const MODEL_CARD_MARKDOWN: &str = "model_card.md";
pub const MODEL_CARD_HTML: &str = "model_card.html";
pub const MODEL_CARD_JSON: &str = "model_card.json";

/// Segments with fewer held-out rows than this are flagged: their figures move a lot by chance.
pub const SMALL_SEGMENT_ROWS: usize = 30;

/// Everything a card says, also stored as `model_card.json` for tools.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    pub model_name: String,
    pub version: u32,
    pub run_id: String,
    pub trained_at: DateTime<Utc>,
    /// `initialtrain`, or `retrain (always)` / `retrain (if-drift)`.
    pub trained_by: String,
    pub code_version: String,
    pub training_data: TrainingData,
    pub choices: ModelChoices,
    pub holdout: HoldoutFigures,
    /// Per age band (in band order), then per `sex_marital_status` code, on the holdout.
    pub segments: Vec<SegmentFigures>,
    /// The drift test of the new rows against the champion's training data (retrain only).
    pub drift: Option<DriftReport>,
    pub promotion: PromotionRecord,
    pub limitations: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainingData {
    pub rows: usize,
    pub distinct_rows: usize,
    /// SHA-256 of the training rows (order-independent).
    pub data_fingerprint: String,
    /// Where stored rows came from, and when they were loaded.
    pub sources: Vec<RecordSource>,
    /// Which rows the training window kept (retrain), in words.
    pub window: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelChoices {
    /// linfa's L2 strength (scikit-learn's C = 1 / alpha), chosen by cross-validated ROC AUC.
    pub alpha: f64,
    pub cross_validation: Vec<CvResult>,
    pub threshold: f64,
    pub cost_matrix: CostMatrix,
    /// The lower edge of the review band, when one is configured.
    pub review_from: Option<f64>,
    /// The recalibration of the probabilities, when one was fitted.
    pub calibration: Option<Calibration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HoldoutFigures {
    /// Which rows were held out, in words.
    pub description: String,
    pub metrics: Option<Metrics>,
    /// Held-out rows in 10 bins of P(fraud).
    pub reliability: Vec<ReliabilityBin>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SegmentFigures {
    /// `age_band` or `sex_marital_status`.
    pub segment: String,
    pub value: String,
    pub rows: usize,
    pub frauds: usize,
    /// Share of the segment's rows decided fraud at the threshold.
    pub flagged_share: f64,
    pub roc_auc: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub brier: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PromotionRecord {
    /// Whether the version became champion when it was trained.
    pub promoted: bool,
    pub reason: String,
    /// The promotion gate's criteria (retrain only).
    pub criteria: Vec<Criterion>,
}

impl ModelCard {
    /// The card as Markdown (GitHub-flavoured tables).
    pub fn to_markdown(&self) -> String {
        let mut md = String::with_capacity(16 * 1024);
        let _ = writeln!(
            md,
            "# Model card: {} version {}\n",
            cell(&self.model_name),
            self.version
        );
        let _ = writeln!(
            md,
            "Trained {} by `{}` (MLflow run `{}`, fraudrisk {}). {}\n",
            self.trained_at.format("%Y-%m-%d %H:%M UTC"),
            self.trained_by,
            self.run_id,
            self.code_version,
            if self.promotion.promoted {
                "Made champion when trained."
            } else {
                "Not promoted when trained."
            }
        );
        self.intended_use(&mut md);
        self.training_data_section(&mut md);
        self.choices_section(&mut md);
        self.holdout_section(&mut md);
        self.segments_section(&mut md);
        self.drift_section(&mut md);
        self.promotion_section(&mut md);
        md.push_str("## Known limitations\n\n");
        for limitation in &self.limitations {
            let _ = writeln!(md, "- {limitation}");
        }
        md
    }

    /// The same content as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let markdown = self.to_markdown();
        let title = format!("Model card: {} version {}", self.model_name, self.version);
        let mut page = Page::new(&title);
        page.raw(&markdown_to_html(strip_title(&markdown)));
        page.finish()
    }

    fn intended_use(&self, md: &mut String) {
        md.push_str(
            "## Intended use\n\n\
             Scores a credit applicant's 20 German-credit features with P(fraud), the \
             probability that the applicant might not repay as agreed, and decides `fraud` at \
             the cost-based threshold below, with up to four reason codes. Meant to rank and \
             route applications for human review, with the reasons shown to the reviewer.\n\n\
             **Out of scope**: deciding alone, without a person, on an application; applicants \
             or products unlike the training data (other countries, business loans, amounts or \
             durations outside its range); explaining causes (the reason codes describe what \
             moved this model's score, not why an applicant behaves as they do); any use of \
             `sex_marital_status` or age to treat people differently (they are inputs because \
             the seed data has them; their segment figures are below so that disparities can \
             be seen).\n\n",
        );
    }

    fn training_data_section(&self, md: &mut String) {
        let data = &self.training_data;
        md.push_str("## Training data\n\n");
        let _ = writeln!(
            md,
            "{} rows ({} distinct), fingerprint `{}`.\n",
            data.rows, data.distinct_rows, data.data_fingerprint
        );
        if let Some(window) = &data.window {
            let _ = writeln!(md, "Training window: {window}.\n");
        }
        if data.sources.is_empty() {
            return;
        }
        md.push_str(
            "| source | role | rows | first loaded | last loaded |\n|---|---|---:|---|---|\n",
        );
        for s in &data.sources {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                cell(&s.source),
                cell(&s.role),
                s.rows,
                s.first_loaded_at.format("%Y-%m-%d %H:%M"),
                s.last_loaded_at.format("%Y-%m-%d %H:%M")
            );
        }
        md.push('\n');
    }

    fn choices_section(&self, md: &mut String) {
        let c = &self.choices;
        md.push_str("## Model and decision\n\n");
        let _ = writeln!(
            md,
            "Logistic regression, L2 strength alpha = {} (scikit-learn C = {}), chosen by \
             cross-validated ROC AUC. Decision threshold **{}**: the lowest expected cost on \
             out-of-fold probabilities under the cost matrix (a missed fraud costs {}, a false \
             alarm {}).{}\n",
            short_number(c.alpha),
            short_number(1.0 / c.alpha),
            short_number(c.threshold),
            short_number(c.cost_matrix.false_negative),
            short_number(c.cost_matrix.false_positive),
            match c.review_from {
                Some(r) => format!(
                    " Review band: P(fraud) from {} up to the threshold is `review`.",
                    short_number(r)
                ),
                None => String::new(),
            }
        );
        match c.calibration {
            Some(Calibration::Platt { a, b }) => {
                let _ = writeln!(
                    md,
                    "Probabilities recalibrated by Platt scaling on the out-of-fold log-odds z: \
                     P(fraud) = sigmoid({a:.4} z {} {:.4}).\n",
                    if b < 0.0 { "-" } else { "+" },
                    b.abs()
                );
            }
            None => md.push_str(
                "Probabilities are the logistic regression's own (no recalibration).\n\n",
            ),
        }
        if !c.cross_validation.is_empty() {
            md.push_str("| alpha | mean ROC AUC | std |\n|---:|---:|---:|\n");
            for cv in &c.cross_validation {
                let chosen = if cv.alpha == c.alpha { " (chosen)" } else { "" };
                let _ = writeln!(
                    md,
                    "| {}{chosen} | {:.4} | {:.4} |",
                    short_number(cv.alpha),
                    cv.mean_roc_auc,
                    cv.std_roc_auc
                );
            }
            md.push('\n');
        }
    }

    fn holdout_section(&self, md: &mut String) {
        let h = &self.holdout;
        md.push_str("## Holdout figures\n\n");
        let _ = writeln!(md, "{}\n", h.description);
        if let Some(m) = &h.metrics {
            md.push_str("| metric | value |\n|---|---:|\n");
            let rows = [
                ("rows", m.support.to_string()),
                ("ROC AUC", format!("{:.4}", m.roc_auc)),
                ("Brier score", format!("{:.4}", m.brier)),
                (
                    "expected calibration error (10 bins)",
                    format!("{:.4}", m.expected_calibration_error),
                ),
                ("log loss", format!("{:.4}", m.log_loss)),
                ("accuracy", format!("{:.4}", m.accuracy)),
                ("precision (fraud)", format!("{:.4}", m.precision)),
                ("recall (fraud)", format!("{:.4}", m.recall)),
                ("F1 (fraud)", format!("{:.4}", m.f1)),
                ("threshold", short_number(m.threshold)),
                (
                    "cost per applicant at the threshold",
                    m.expected_cost.map_or("-".into(), |c| format!("{c:.4}")),
                ),
                (
                    "cost per applicant at 0.5",
                    m.expected_cost_at_0_5
                        .map_or("-".into(), |c| format!("{c:.4}")),
                ),
            ];
            for (name, value) in rows {
                let _ = writeln!(md, "| {name} | {value} |");
            }
            let c = &m.confusion;
            let _ = writeln!(
                md,
                "\nAt the threshold: {} frauds caught, {} missed, {} false alarms, {} correctly \
                 passed.\n",
                c.true_positive, c.false_negative, c.false_positive, c.true_negative
            );
        }
        if h.reliability.iter().any(|b| b.count > 0) {
            md.push_str(
                "Reliability (calibration): held-out rows in 10 bins of P(fraud); a calibrated \
                 model's observed fraud share is close to its mean P(fraud) in every bin.\n\n\
                 | P(fraud) bin | rows | mean P(fraud) | observed fraud share |\n\
                 |---|---:|---:|---:|\n",
            );
            for b in &h.reliability {
                let _ = writeln!(
                    md,
                    "| {:.1}-{:.1} | {} | {} | {} |",
                    b.lower,
                    b.upper,
                    b.count,
                    optional(b.mean_predicted),
                    optional(b.observed_fraud_share)
                );
            }
            md.push('\n');
        }
    }

    fn segments_section(&self, md: &mut String) {
        if self.segments.is_empty() {
            return;
        }
        md.push_str(
            "## Figures per segment (holdout)\n\n\
             | segment | value | rows | frauds | decided fraud | ROC AUC | precision | recall | Brier |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for s in &self.segments {
            let small = if s.rows < SMALL_SEGMENT_ROWS {
                " *"
            } else {
                ""
            };
            let _ = writeln!(
                md,
                "| {} | {} | {}{small} | {} | {:.1} % | {} | {} | {} | {} |",
                cell(&s.segment),
                cell(&s.value),
                s.rows,
                s.frauds,
                100.0 * s.flagged_share,
                optional(s.roc_auc),
                optional(s.precision),
                optional(s.recall),
                optional(s.brier)
            );
        }
        let _ = writeln!(
            md,
            "\n\\* fewer than {SMALL_SEGMENT_ROWS} held-out rows: these figures move a lot by \
             chance.\n"
        );
    }

    fn drift_section(&self, md: &mut String) {
        md.push_str("## Drift at training time\n\n");
        let Some(d) = &self.drift else {
            md.push_str(
                "None tested: an initial training has no earlier data to compare with.\n\n",
            );
            return;
        };
        let drifted: Vec<&str> = d
            .features
            .iter()
            .filter(|f| f.significant)
            .map(|f| f.feature.as_str())
            .collect();
        let _ = writeln!(
            md,
            "The {} new rows against the champion's {} training rows ({} correction, alpha {}): \
             {}.\n",
            d.current_rows,
            d.reference_rows,
            d.correction.as_str(),
            short_number(d.alpha),
            if drifted.is_empty() {
                "no feature drifted".to_string()
            } else {
                format!("{} drifted ({})", drifted.len(), drifted.join(", "))
            }
        );
        md.push_str(
            "| feature | test | statistic | adjusted p | PSI | drifted |\n\
             |---|---|---:|---:|---:|---|\n",
        );
        for f in &d.features {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                f.feature,
                f.test,
                short_number(f.statistic),
                p_value(f.adjusted_p_value),
                short_number(f.psi),
                if f.significant { "**yes**" } else { "no" }
            );
        }
        md.push('\n');
    }

    fn promotion_section(&self, md: &mut String) {
        let p = &self.promotion;
        md.push_str("## Promotion decision\n\n");
        let _ = writeln!(
            md,
            "{}: {}\n",
            if p.promoted {
                "Promoted"
            } else {
                "Not promoted"
            },
            p.reason
        );
        if p.criteria.is_empty() {
            return;
        }
        md.push_str(
            "| criterion | rows | challenger | champion | margin | passed |\n\
             |---|---|---:|---:|---:|---|\n",
        );
        for c in &p.criteria {
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {:.4} | {:.4} | {} | {} |",
                c.metric,
                if c.higher_is_better {
                    "higher is better"
                } else {
                    "lower is better"
                },
                c.data.describe(),
                c.challenger,
                c.champion,
                short_number(c.margin),
                if c.passed { "yes" } else { "**no**" }
            );
        }
        md.push('\n');
    }
}

/// A table cell's text: a `|` would end the cell, a line break the row, `<` start markup.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

/// The Markdown without its first heading: the page prints the title itself.
fn strip_title(markdown: &str) -> &str {
    match markdown.split_once('\n') {
        Some((first, rest)) if first.starts_with("# ") => rest,
        _ => markdown,
    }
}

/// Markdown to HTML, with any raw HTML in it turned into escaped text.
fn markdown_to_html(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
#[path = "model_card_tests.rs"]
mod tests;
