//! The browser page of `GET /predict`: a form for the 20 fields, read from
//! [`crate::schema::FEATURES`] (labels, and the code meanings as `<select>` options), and
//! the result with its explanation when the query holds fields.
//!
//! Every piece of text that did not come from this file is escaped with [`escape`]. Element
//! ids (`predict-form`, `result`, `decision`, `probability`, `threshold`, `prediction-id`,
//! `reason-codes`, `contributions`, `errors`, `unavailable`) are stable, for browser tests.

use std::fmt::Write;

use uuid::Uuid;

use crate::model::{Contribution, Prediction, ReasonCode};
use crate::request::seed_example_corrected;
use crate::schema::{feature_index, Domain, FieldError, FEATURES};

/// What the page shows above the form.
pub enum Outcome<'a> {
    /// Only the form.
    Form,
    /// A scored applicant.
    Result {
        prediction: &'a Prediction,
        model_version: u32,
        /// The id it was logged under (`None`: not logged).
        prediction_id: Option<Uuid>,
    },
    /// The fields that broke their rules.
    Invalid(&'a [FieldError]),
    /// The service cannot score now (no model yet, a dependency down).
    Unavailable {
        message: String,
        hint: Option<String>,
    },
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
main{max-width:46rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.6rem;margin:.2rem 0 1rem}\
section{background:#fff;border-radius:.5rem;padding:1rem 1.25rem;margin-bottom:1rem;box-shadow:0 1px 3px #0002}\
#result.fraud{border-left:.4rem solid #c0392b}#result.not_fraud{border-left:.4rem solid #27ae60}\
#result.review{border-left:.4rem solid #e67e22}\
#errors,#unavailable{border-left:.4rem solid #e67e22}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #eee}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
form{display:grid;grid-template-columns:1fr 1fr;gap:.6rem 1rem}\
label{display:flex;flex-direction:column;font-size:.9rem;gap:.2rem}\
select,input{font:inherit;padding:.3rem}\
button{grid-column:1/-1;font:inherit;padding:.6rem;background:#2c3e50;color:#fff;border:0;border-radius:.3rem;cursor:pointer}\
@media(max-width:40rem){form{grid-template-columns:1fr}}";

/// Renders the page. `query` holds the submitted fields (empty: the form is prefilled with
/// the seed's example, corrected to a valid request).
pub fn render(query: &[(String, String)], outcome: &Outcome<'_>) -> String {
    let defaults = seed_example_corrected();
    let value_of = |name: &str| -> String {
        if query.is_empty() {
            defaults
                .get(name)
                .map(|v| v.to_string())
                .unwrap_or_default()
        } else {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        }
    };

    let mut page = String::with_capacity(16 * 1024);
    page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    page.push_str("<title>Fraud risk: predict</title><style>");
    page.push_str(STYLE);
    page.push_str("</style></head><body><main><h1>Fraud risk of a credit applicant</h1>\n");

    match outcome {
        Outcome::Form => {}
        Outcome::Result {
            prediction,
            model_version,
            prediction_id,
        } => render_result(&mut page, prediction, *model_version, *prediction_id),
        Outcome::Invalid(fields) => {
            page.push_str("<section id=\"errors\"><h2>Please correct these fields</h2><ul>");
            for field in fields.iter() {
                let label = feature_index(&field.field)
                    .map(|i| FEATURES[i].label)
                    .unwrap_or(field.field.as_str());
                let _ = write!(
                    page,
                    "<li data-field=\"{}\"><strong>{}</strong> {}{}</li>",
                    escape(&field.field),
                    escape(label),
                    escape(&field.rule),
                    field
                        .value
                        .as_deref()
                        .map(|v| format!(" (got {})", escape(v)))
                        .unwrap_or_default()
                );
            }
            page.push_str("</ul></section>\n");
        }
        Outcome::Unavailable { message, hint } => {
            let _ = writeln!(
                page,
                "<section id=\"unavailable\"><h2>Cannot score now</h2><p>{}</p>{}</section>",
                escape(message),
                hint.as_deref()
                    .map(|h| format!("<p>{}</p>", escape(h)))
                    .unwrap_or_default()
            );
        }
    }

    page.push_str("<section><h2>Applicant</h2>");
    // No action: the form submits to the page's own path, whatever it is (`/predict`,
    // `/predict/`, `/prod/predict`); a relative "predict" made `/predict/predict`.
    page.push_str("<form id=\"predict-form\" method=\"get\">\n");
    for feature in FEATURES.iter() {
        let current = value_of(feature.name);
        let _ = write!(
            page,
            "<label for=\"{name}\">{label}",
            name = feature.name,
            label = escape(feature.label)
        );
        match feature.domain {
            Domain::Codes(codes) => {
                let _ = write!(
                    page,
                    "<select id=\"{name}\" name=\"{name}\" required>",
                    name = feature.name
                );
                let known = codes
                    .iter()
                    .any(|(code, _)| code.to_string() == current.trim());
                if !known {
                    page.push_str("<option value=\"\" selected disabled>choose…</option>");
                }
                for (code, meaning) in codes.iter() {
                    let selected = if code.to_string() == current.trim() {
                        " selected"
                    } else {
                        ""
                    };
                    let _ = write!(
                        page,
                        "<option value=\"{code}\"{selected}>{code}: {}</option>",
                        escape(meaning)
                    );
                }
                page.push_str("</select>");
            }
            Domain::Range { min, max } => {
                let _ = write!(
                    page,
                    "<input id=\"{name}\" name=\"{name}\" type=\"number\" min=\"{min}\" max=\"{max}\" step=\"1\" value=\"{value}\" required>",
                    name = feature.name,
                    value = escape(&current)
                );
            }
        }
        page.push_str("</label>\n");
    }
    page.push_str("<button type=\"submit\">Predict</button></form></section>\n");
    page.push_str("</main></body></html>\n");
    page
}

fn render_result(
    page: &mut String,
    prediction: &Prediction,
    model_version: u32,
    prediction_id: Option<Uuid>,
) {
    let class = prediction.decision.as_str();
    let _ = write!(
        page,
        "<section id=\"result\" class=\"{class}\" data-decision=\"{class}\"><h2 id=\"decision\">{}</h2>\
         <p>Probability of fraud: <strong id=\"probability\">{:.1} %</strong> \
         (model version <span id=\"model-version\">{model_version}</span>); the decision is \
         fraud from <span id=\"threshold\">{:.1} %</span>, the threshold with the lowest \
         expected cost of wrong decisions.</p>",
        escape(prediction.message),
        prediction.probability_of_fraud * 100.0,
        prediction.threshold * 100.0,
    );
    if let Some(id) = prediction_id {
        // The id to quote when the outcome of this application is known.
        let _ = write!(
            page,
            "<p>Prediction id: <code id=\"prediction-id\">{}</code></p>",
            id.hyphenated()
        );
    }
    render_reason_codes(page, &prediction.reason_codes);
    page.push_str(
        "<h3>Why: the features that moved the estimate most</h3>\
         <table id=\"contributions\"><thead><tr><th>Feature</th><th>Value</th>\
         <th>Effect on the log-odds of fraud</th></tr></thead><tbody>",
    );
    for contribution in prediction
        .contributions
        .iter()
        .take(super::TOP_CONTRIBUTIONS)
    {
        render_contribution(page, contribution);
    }
    page.push_str(
        "</tbody></table><p><small>Relative to the average training applicant; positive values \
         raise the estimated risk, negative values lower it.</small></p></section>\n",
    );
}

/// The principal reasons toward fraud, with their stable codes.
fn render_reason_codes(page: &mut String, reasons: &[ReasonCode]) {
    page.push_str("<h3>Reason codes: what pushed toward fraud</h3>");
    if reasons.is_empty() {
        page.push_str("<p id=\"reason-codes\">None: no feature pushed toward fraud.</p>");
        return;
    }
    page.push_str("<ol id=\"reason-codes\">");
    for reason in reasons {
        let _ = write!(
            page,
            "<li data-code=\"{code}\"><code>{code}</code> {}</li>",
            escape(&reason.text),
            code = escape(reason.code)
        );
    }
    page.push_str("</ol>");
}

fn render_contribution(page: &mut String, contribution: &Contribution) {
    let feature = feature_index(contribution.feature).map(|i| &FEATURES[i]);
    let label = feature.map(|f| f.label).unwrap_or(contribution.feature);
    let code = contribution.value as i64;
    let value = match feature.map(|f| f.domain) {
        Some(Domain::Codes(codes)) => codes
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, meaning)| format!("{c}: {meaning}"))
            .unwrap_or_else(|| code.to_string()),
        _ => code.to_string(),
    };
    let direction = if contribution.contribution > 0.0 {
        "raises the risk"
    } else {
        "lowers the risk"
    };
    let _ = write!(
        page,
        "<tr data-feature=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{:+.3} ({direction})</td></tr>",
        escape(contribution.feature),
        escape(label),
        escape(&value),
        contribution.contribution
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_form_has_every_feature_with_its_label() {
        let page = render(&[], &Outcome::Form);
        for feature in FEATURES.iter() {
            assert!(page.contains(&format!("name=\"{}\"", feature.name)));
            assert!(page.contains(&escape(feature.label)));
        }
        // Prefilled with the corrected seed example.
        assert!(page.contains("name=\"credit_amount\" type=\"number\" min=\"1\" max=\"1000000\" step=\"1\" value=\"618\""));
        assert!(page.contains("<option value=\"4\" selected>4: 200 DM or more"));
    }

    #[test]
    fn submitted_text_is_escaped() {
        let query = vec![("age_years".to_string(), "\"><script>".to_string())];
        let errors = vec![FieldError::new(
            "age_years",
            "must be a number".to_string(),
            Some("\"><script>".to_string()),
        )];
        let page = render(&query, &Outcome::Invalid(&errors));
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_result_shows_the_threshold_and_the_reason_codes() {
        let mut prediction = Prediction {
            probability_of_fraud: 0.42,
            threshold: 0.2,
            review_from: None,
            decision: crate::model::Decision::Fraud,
            message: crate::model::FRAUD_MESSAGE,
            reason_codes: vec![ReasonCode {
                code: "R01",
                text: "checking account: <no running account>".to_string(),
            }],
            contributions: Vec::new(),
        };
        let outcome = |p: &Prediction| {
            render(
                &[],
                &Outcome::Result {
                    prediction: p,
                    model_version: 3,
                    prediction_id: None,
                },
            )
        };
        let page = outcome(&prediction);
        assert!(
            page.contains("<span id=\"threshold\">20.0 %</span>"),
            "{page}"
        );
        assert!(page.contains(
            "<li data-code=\"R01\"><code>R01</code> checking account: &lt;no running account&gt;</li>"
        ));
        prediction.reason_codes.clear();
        assert!(outcome(&prediction).contains("<p id=\"reason-codes\">None"));
    }
}
