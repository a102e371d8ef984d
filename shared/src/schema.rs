//! The 20 applicant features, declared once.
//!
//! Validation, encoding, the drift-test choice, the CSV reader, the HTML form and the docs all
//! read [`FEATURES`]; no other place in the code base lists feature names.
//!
//! The order is the seed's (its CSV columns and its example request body). Codes follow the
//! German credit data as the seed's files have them; the meanings are those of the data set's
//! codebook (Hofmann, Statlog German Credit), as far as the seed's recoding preserves them.
//! The table itself is in `schema/features.rs`, the reason codes beside it in
//! `schema/reasons.rs`; the types and the validation are here.

use serde::{Deserialize, Serialize};
use std::fmt;

mod features;
pub mod reasons;
pub use features::FEATURES;
pub use reasons::{reason_text, Reason, REASONS};

/// Number of applicant features.
pub const FEATURE_COUNT: usize = 20;

/// The label column: 1 = good credit, 0 = bad ("might intend to commit fraud").
pub const LABEL_COLUMN: &str = "creditability";

/// How a feature is measured, which decides its encoding and its drift test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// A quantity: standardised for the model, Welch's t-test for drift.
    Numeric,
    /// Unordered categories: one-hot for the model, chi-square test for drift.
    Nominal,
    /// Ordered categories: standardised for the model, Mann-Whitney U test for drift.
    Ordinal,
    /// Two codes, 0 and 1: used as is by the model, two-proportion z-test for drift.
    Binary,
}

impl FeatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Nominal => "nominal",
            FeatureKind::Ordinal => "ordinal",
            FeatureKind::Binary => "binary",
        }
    }
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values a feature may take. Every feature is an integer code or count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Any integer in `min..=max`.
    Range { min: i64, max: i64 },
    /// One of the listed codes, each with its meaning.
    Codes(&'static [(i64, &'static str)]),
}

impl Domain {
    pub fn contains(&self, value: i64) -> bool {
        match self {
            Domain::Range { min, max } => (*min..=*max).contains(&value),
            Domain::Codes(codes) => codes.iter().any(|(code, _)| *code == value),
        }
    }

    /// The rule as a user reads it in an error message.
    pub fn describe(&self) -> String {
        match self {
            Domain::Range { min, max } => format!("an integer from {min} to {max}"),
            Domain::Codes(codes) => {
                let listed: Vec<String> = codes.iter().map(|(c, _)| c.to_string()).collect();
                format!("one of the codes {}", listed.join(", "))
            }
        }
    }
}

/// One applicant feature.
#[derive(Debug)]
pub struct Feature {
    /// Column and field name, as in the seed.
    pub name: &'static str,
    pub kind: FeatureKind,
    pub domain: Domain,
    /// A human label, for forms and reports.
    pub label: &'static str,
}

impl Feature {
    /// Checks one value against this feature's rule, returning the integer code.
    pub fn check(&self, value: f64) -> Result<i64, FieldError> {
        if !value.is_finite() || value.fract() != 0.0 || value.abs() > 1e15 {
            return Err(FieldError::new(
                self.name,
                format!("must be {}", self.domain.describe()),
                Some(format_value(value)),
            ));
        }
        let code = value as i64;
        if !self.domain.contains(code) {
            return Err(FieldError::new(
                self.name,
                format!("must be {}", self.domain.describe()),
                Some(code.to_string()),
            ));
        }
        Ok(code)
    }

    /// The category codes of a nominal, ordinal or binary feature (empty for numeric ranges).
    pub fn codes(&self) -> Vec<i64> {
        match self.domain {
            Domain::Codes(codes) => codes.iter().map(|(c, _)| *c).collect(),
            Domain::Range { min, max } if self.kind != FeatureKind::Numeric => {
                (min..=max).collect()
            }
            Domain::Range { .. } => Vec::new(),
        }
    }
}

fn format_value(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Finds a feature by name, ignoring ASCII case (the seed's files spell
/// `no_of_credits_at_this_Bank` in one and `no_of_credits_at_this_bank` in the other).
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURES
        .iter()
        .position(|f| f.name.eq_ignore_ascii_case(name.trim()))
}

/// The 20 feature values of one applicant, in [`FEATURES`] order. Every value is an integer
/// code or count, stored as `f64` because the model and the statistics compute in floats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Applicant(pub [f64; FEATURE_COUNT]);

impl Applicant {
    /// Checks every value against its feature's rule and reports all violations at once.
    pub fn validate(values: [f64; FEATURE_COUNT]) -> Result<Self, ValidationErrors> {
        let errors: Vec<FieldError> = FEATURES
            .iter()
            .zip(values.iter())
            .filter_map(|(feature, value)| feature.check(*value).err())
            .collect();
        if errors.is_empty() {
            Ok(Applicant(values))
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// Builds an applicant from named values, as a query string or a JSON object gives them.
    /// Reports every missing, unknown, malformed and out-of-domain field at once.
    pub fn from_fields<'a, I>(fields: I) -> Result<Self, ValidationErrors>
    where
        I: IntoIterator<Item = (&'a str, FieldValue<'a>)>,
    {
        let mut values: [Option<f64>; FEATURE_COUNT] = [None; FEATURE_COUNT];
        let mut errors = Vec::new();
        for (name, raw) in fields {
            let Some(index) = FEATURES.iter().position(|f| f.name == name) else {
                errors.push(FieldError::new(
                    name,
                    "is not a feature of this model".to_string(),
                    None,
                ));
                continue;
            };
            let feature = &FEATURES[index];
            if values[index].is_some() {
                errors.push(FieldError::new(
                    name,
                    "is given more than once".to_string(),
                    None,
                ));
                continue;
            }
            let number = match raw {
                FieldValue::Number(n) => Some(n),
                // Surrounding spaces are refused, not trimmed: `" 4 "` is not the code 4
                // (the CSV reader trims its cells before they get here).
                FieldValue::Text(text) if text.trim() == text => text.parse::<f64>().ok(),
                FieldValue::Text(_) => None,
                FieldValue::Other(_) => None,
            };
            match number {
                Some(n) => match feature.check(n) {
                    Ok(code) => values[index] = Some(code as f64),
                    Err(error) => errors.push(error),
                },
                None => errors.push(FieldError::new(
                    name,
                    format!("must be a number: {}", feature.domain.describe()),
                    Some(raw.to_string()),
                )),
            }
        }
        for (feature, value) in FEATURES.iter().zip(values.iter()) {
            if value.is_none() && !errors.iter().any(|e| e.field == feature.name) {
                errors.push(FieldError::new(
                    feature.name,
                    format!("is required: {}", feature.domain.describe()),
                    None,
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors));
        }
        let mut out = [0.0; FEATURE_COUNT];
        for (slot, value) in out.iter_mut().zip(values.iter()) {
            *slot = value.unwrap_or_default();
        }
        Ok(Applicant(out))
    }

    /// The values as a JSON object keyed by feature name, in schema order.
    pub fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = FEATURES
            .iter()
            .zip(self.0.iter())
            .map(|(f, v)| (f.name.to_string(), serde_json::Value::from(*v as i64)))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// A raw field value before validation.
#[derive(Clone, Copy, Debug)]
pub enum FieldValue<'a> {
    /// From a query string or a CSV cell.
    Text(&'a str),
    /// A JSON number.
    Number(f64),
    /// Any other JSON type (the name of the type, for the error message).
    Other(&'static str),
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(text) => write!(f, "{text:?}"),
            FieldValue::Number(n) => f.write_str(&format_value(*n)),
            FieldValue::Other(kind) => write!(f, "a JSON {kind}"),
        }
    }
}

impl<'a> FieldValue<'a> {
    /// Classifies a JSON value. JSON fields are numbers: a string, even `"4"`, is refused
    /// (the OpenAPI document says integer, and a lenient server would accept what it
    /// documents as invalid).
    pub fn from_json(value: &'a serde_json::Value) -> Self {
        match value {
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(FieldValue::Number)
                .unwrap_or(FieldValue::Other("number out of range")),
            serde_json::Value::String(_) => FieldValue::Other("string"),
            serde_json::Value::Null => FieldValue::Other("null"),
            serde_json::Value::Bool(_) => FieldValue::Other("boolean"),
            serde_json::Value::Array(_) => FieldValue::Other("array"),
            serde_json::Value::Object(_) => FieldValue::Other("object"),
        }
    }
}

/// One applicant with its known outcome: a training row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabeledRecord {
    pub applicant: Applicant,
    /// 1 = good credit, 0 = bad ("might intend to commit fraud").
    pub creditability: u8,
}

impl LabeledRecord {
    /// True when the label is the fraud class (creditability 0).
    pub fn is_fraud(&self) -> bool {
        self.creditability == 0
    }
}

/// One field that broke its rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name; `records[3].age_years` in a batch.
    pub field: String,
    /// The rule it broke, as a user reads it.
    pub rule: String,
    /// The value given, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl FieldError {
    pub fn new(field: &str, rule: String, value: Option<String>) -> Self {
        FieldError {
            field: field.to_string(),
            rule,
            value,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{} {} (got {})", self.field, self.rule, value),
            None => write!(f, "{} {}", self.field, self.rule),
        }
    }
}

/// Every rule an input broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_example() -> Vec<(&'static str, f64)> {
        vec![
            ("account_balance", 4.0),
            ("duration_of_credit_month", 12.0),
            ("payment_status_of_previous_credit", 4.0),
            ("purpose", 3.0),
            ("credit_amount", 618.0),
            ("value_savings_stocks", 1.0),
            ("length_of_current_employment", 5.0),
            ("instalment_per_cent", 4.0),
            ("sex_marital_status", 3.0),
            ("guarantors", 1.0),
            ("duration_in_current_address", 4.0),
            ("most_valuable_available_asset", 2.0),
            ("age_years", 56.0),
            ("concurrent_credits", 3.0),
            ("type_of_apartment", 2.0),
            ("no_of_credits_at_this_bank", 1.0),
            ("occupation", 1.0),
            ("no_of_dependents", 3.0),
            ("telephone", 0.0),
            ("foreign_worker", 0.0),
        ]
    }

    #[test]
    fn names_are_unique_and_kinds_match_the_seed_typing() {
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURE_COUNT);
        let count = |k| FEATURES.iter().filter(|f| f.kind == k).count();
        assert_eq!(count(FeatureKind::Numeric), 5);
        assert_eq!(count(FeatureKind::Nominal), 9);
        assert_eq!(count(FeatureKind::Ordinal), 3);
        assert_eq!(count(FeatureKind::Binary), 3);
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(feature_index("no_of_credits_at_this_Bank"), Some(15));
        assert_eq!(feature_index("creditability"), None);
    }

    #[test]
    fn seed_example_is_rejected_only_for_no_of_dependents() {
        let fields = seed_example();
        let err = Applicant::from_fields(fields.iter().map(|(n, v)| (*n, FieldValue::Number(*v))))
            .unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].field, "no_of_dependents");
        assert!(err.0[0].rule.contains("0, 1"), "{}", err.0[0].rule);
        assert_eq!(err.0[0].value.as_deref(), Some("3"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut fields: Vec<(&str, FieldValue)> = seed_example()
            .into_iter()
            .filter(|(n, _)| *n != "age_years")
            .map(|(n, v)| (n, FieldValue::Number(v)))
            .collect();
        fields[0] = ("account_balance", FieldValue::Text("four"));
        fields[1] = ("duration_of_credit_month", FieldValue::Number(12.5));
        fields.push(("colour", FieldValue::Text("red")));
        let err = Applicant::from_fields(fields).unwrap_err();
        let named: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "account_balance",
            "duration_of_credit_month",
            "no_of_dependents",
            "colour",
            "age_years",
        ] {
            assert!(
                named.contains(&expected),
                "{expected} missing from {named:?}"
            );
        }
    }

    #[test]
    fn a_valid_applicant_round_trips_through_json() {
        let fields = seed_example();
        let fixed = fields.iter().map(|(n, v)| {
            let v = if *n == "no_of_dependents" { 1.0 } else { *v };
            (*n, FieldValue::Number(v))
        });
        let applicant = Applicant::from_fields(fixed).unwrap();
        let json = applicant.to_json();
        assert_eq!(json["credit_amount"], 618);
        let back = Applicant::from_fields(
            json.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), FieldValue::from_json(v))),
        )
        .unwrap();
        assert_eq!(back, applicant);
    }
}
