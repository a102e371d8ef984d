//! Reports people look at: each drift report (`fraudctl drift`, retrain's, the monitor's input
//! drift), each monitor report and each model card as one self-contained HTML page.
//!
//! A page has inline CSS and inline SVG only: no script, no font, image or style from the
//! network (a Content-Security-Policy meta tag forbids them as well), so it opens the same from
//! an MLflow artifact, an S3 object or a local file, offline, and prints. Every text that comes
//! from data (feature values, notes, examples, labels) is escaped.

mod drift;
mod model_card;
mod monitor;
mod svg;

pub use drift::drift_html;
pub use model_card::{
    HoldoutFigures, ModelCard, ModelChoices, PromotionRecord, SegmentFigures, TrainingData,
    MODEL_CARD_HTML, MODEL_CARD_JSON, MODEL_CARD_MARKDOWN, SMALL_SEGMENT_ROWS,
};
pub use monitor::monitor_html;

/// The content type the pages are stored with.
pub const HTML_CONTENT_TYPE: &str = "text/html";

/// Escapes text for HTML element content and quoted attribute values (the one escape the
/// predict page uses too).
pub use crate::http::html::escape;

/// A number for people: up to 4 significant digits, scientific when very small or large.
pub(crate) fn short_number(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_string();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e6).contains(&magnitude) {
        format!("{value:.3e}")
    } else if magnitude >= 1000.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.4}");
        let text = text.trim_end_matches('0');
        text.trim_end_matches('.').to_string()
    }
}

/// A p-value: scientific below 0.001.
pub(crate) fn p_value(p: f64) -> String {
    if p.is_finite() && p > 0.0 && p < 1e-3 {
        format!("{p:.2e}")
    } else {
        short_number(p)
    }
}

pub(crate) fn percent(share: f64) -> String {
    format!("{:.1} %", 100.0 * share)
}

const CSS: &str = "
:root { --ref: #5b7fa8; --cur: #e07b39; --bad: #fde4dc; --ink: #1d2733; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
  color: var(--ink); margin: 0 auto; padding: 24px 32px; max-width: 1280px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #d5dbe2; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.context { color: #4a5968; margin: 0 0 12px; }
.verdict { font-size: 17px; font-weight: 600; padding: 10px 14px; border-radius: 6px;
  background: #e3f1e6; border-left: 6px solid #2e7d43; }
.verdict.alarm { background: var(--bad); border-left-color: #c0392b; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e2e6ea; text-align: left; vertical-align: top; }
th { background: #f2f4f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.drifted td { background: var(--bad); font-weight: 600; }
td.note { font-size: 12px; color: #4a5968; max-width: 360px; }
ul.alerts li { background: var(--bad); margin: 4px 0; padding: 6px 10px; border-radius: 4px; list-style: none; }
ul.alerts { padding: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(580px, 1fr)); gap: 16px; }
figure { margin: 0; padding: 8px; border: 1px solid #e2e6ea; border-radius: 6px; break-inside: avoid; }
figure.drifted { border-color: #c0392b; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figcaption small { font-weight: normal; color: #4a5968; }
svg { max-width: 100%; height: auto; display: block; }
svg text { fill: var(--ink); }
svg .ref { fill: var(--ref); }
svg .cur { fill: var(--cur); }
svg .grid { stroke: #e2e6ea; stroke-width: 1; }
svg .axis { stroke: #6b7785; stroke-width: 1; }
svg .diagonal { stroke: #9aa5b1; stroke-dasharray: 4 3; }
svg .line { fill: none; stroke: var(--cur); stroke-width: 2; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -1px; }
.legend .ref { background: var(--ref); } .legend .cur { background: var(--cur); }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  .charts { grid-template-columns: 1fr 1fr; }
  h2 { break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
";

/// A page being written.
pub(crate) struct Page {
    html: String,
}

impl Page {
    pub(crate) fn new(title: &str) -> Self {
        let mut html = String::with_capacity(64 * 1024);
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        // Nothing may load: no script, no network; inline styles only.
        html.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'\">\n",
        );
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.push_str(&format!(
            "<title>{}</title>\n<style>{CSS}</style>\n",
            escape(title)
        ));
        html.push_str("</head>\n<body>\n");
        html.push_str(&format!("<h1>{}</h1>\n", escape(title)));
        Page { html }
    }

    /// Appends markup as it is (built by this module, data already escaped).
    pub(crate) fn raw(&mut self, markup: &str) {
        self.html.push_str(markup);
    }

    /// Appends `<tag class=..>text</tag>` with the text escaped.
    pub(crate) fn element(&mut self, tag: &str, class: &str, text: &str) {
        if class.is_empty() {
            self.html
                .push_str(&format!("<{tag}>{}</{tag}>\n", escape(text)));
        } else {
            self.html.push_str(&format!(
                "<{tag} class=\"{class}\">{}</{tag}>\n",
                escape(text)
            ));
        }
    }

    pub(crate) fn finish(mut self) -> String {
        self.html.push_str("</body>\n</html>\n");
        self.html
    }
}

/// A table from a header and rows of cells; each cell is (class, text), the text escaped.
pub(crate) fn table(header: &[&str], rows: &[(String, Vec<(&str, String)>)]) -> String {
    let mut html = String::from("<table>\n<thead><tr>");
    for h in header {
        html.push_str(&format!("<th>{}</th>", escape(h)));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for (row_class, cells) in rows {
        if row_class.is_empty() {
            html.push_str("<tr>");
        } else {
            html.push_str(&format!("<tr class=\"{row_class}\">"));
        }
        for (class, text) in cells {
            if class.is_empty() {
                html.push_str(&format!("<td>{}</td>", escape(text)));
            } else {
                html.push_str(&format!("<td class=\"{class}\">{}</td>", escape(text)));
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

/// The legend of the two-series charts.
pub(crate) fn legend(reference: &str, current: &str) -> String {
    format!(
        "<p class=\"legend\"><span class=\"ref\"></span>{}<span class=\"cur\"></span>{}</p>\n",
        escape(reference),
        escape(current)
    )
}

#[cfg(test)]
mod tests;
