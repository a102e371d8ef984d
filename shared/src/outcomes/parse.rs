//! The JSON body of `POST /outcomes`, checked whole: every problem is named by its field
//! (`outcomes[3].fraud`) before anything is stored. The value rules are shared with the
//! outcome files (`file.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Outcome, MAX_OUTCOMES};
use crate::schema::FieldError;

/// How far in the future an `observed_at` may be (clock skew between systems).
const FUTURE_TOLERANCE: Duration = Duration::minutes(5);

const FIELDS: &str = "prediction_id, fraud, observed_at";
pub(super) const ID_RULE: &str =
    "must be a prediction id (a UUID, as the prediction's answer gave it)";
const FRAUD_RULE: &str = "must be true or false";
pub(super) const OBSERVED_RULE: &str =
    "must be an RFC 3339 time with a zone, e.g. 2026-12-01T10:00:00Z, not in the future";

/// The outcomes of a `POST /outcomes` body, or every problem with it.
pub fn outcomes_from_json(
    body: &Value,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new(
            "body",
            "must be a JSON object {\"outcomes\": [...]}".to_string(),
            None,
        )]);
    };
    for key in object.keys().filter(|k| k.as_str() != "outcomes") {
        errors.push(FieldError::new(
            key,
            "is not a field of the body (only outcomes)".to_string(),
            None,
        ));
    }
    let items = match object.get("outcomes") {
        Some(Value::Array(items)) if (1..=MAX_OUTCOMES).contains(&items.len()) => items.as_slice(),
        Some(Value::Array(items)) => {
            errors.push(FieldError::new(
                "outcomes",
                format!("must hold 1 to {MAX_OUTCOMES} outcomes"),
                Some(items.len().to_string()),
            ));
            return Err(errors);
        }
        Some(other) => {
            errors.push(FieldError::new(
                "outcomes",
                "must be an array of outcomes".to_string(),
                Some(short(other)),
            ));
            return Err(errors);
        }
        None => {
            errors.push(FieldError::new(
                "outcomes",
                "is required: an array of {\"prediction_id\", \"fraud\", \"observed_at\"}"
                    .to_string(),
                None,
            ));
            return Err(errors);
        }
    };
    let mut outcomes = Vec::with_capacity(items.len());
    let mut first_index: HashMap<Uuid, usize> = HashMap::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let path = |field: &str| format!("outcomes[{index}].{field}");
        let Some(item) = item.as_object() else {
            errors.push(FieldError::new(
                &format!("outcomes[{index}]"),
                format!("must be an object with {FIELDS}"),
                Some(short(item)),
            ));
            continue;
        };
        for key in item.keys() {
            if !matches!(key.as_str(), "prediction_id" | "fraud" | "observed_at") {
                errors.push(FieldError::new(
                    &path(key),
                    format!("is not a field of an outcome ({FIELDS})"),
                    None,
                ));
            }
        }
        let prediction_id = match item.get("prediction_id") {
            Some(Value::String(text)) => match parse_id(text) {
                Some(id) => Some(id),
                None => {
                    errors.push(FieldError::new(
                        &path("prediction_id"),
                        ID_RULE.to_string(),
                        Some(text.clone()),
                    ));
                    None
                }
            },
            Some(other) => {
                errors.push(FieldError::new(
                    &path("prediction_id"),
                    ID_RULE.to_string(),
                    Some(short(other)),
                ));
                None
            }
            None => {
                errors.push(FieldError::new(
                    &path("prediction_id"),
                    "is required".to_string(),
                    None,
                ));
                None
            }
        };
        if let Some(id) = prediction_id {
            if let Some(first) = first_index.insert(id, index) {
                errors.push(FieldError::new(
                    &path("prediction_id"),
                    format!("occurs more than once in the request (first at outcomes[{first}])"),
                    Some(id.to_string()),
                ));
                first_index.insert(id, first);
            }
        }
        let fraud = match item.get("fraud") {
            Some(Value::Bool(fraud)) => Some(*fraud),
            Some(other) => {
                errors.push(FieldError::new(
                    &path("fraud"),
                    FRAUD_RULE.to_string(),
                    Some(short(other)),
                ));
                None
            }
            None => {
                errors.push(FieldError::new(
                    &path("fraud"),
                    "is required (true or false)".to_string(),
                    None,
                ));
                None
            }
        };
        let observed_at = match item.get("observed_at") {
            None => Some(now),
            Some(Value::String(text)) => match parse_time(text, now) {
                Some(time) => Some(time),
                None => {
                    errors.push(FieldError::new(
                        &path("observed_at"),
                        OBSERVED_RULE.to_string(),
                        Some(text.clone()),
                    ));
                    None
                }
            },
            Some(other) => {
                errors.push(FieldError::new(
                    &path("observed_at"),
                    OBSERVED_RULE.to_string(),
                    Some(short(other)),
                ));
                None
            }
        };
        if let (Some(prediction_id), Some(fraud), Some(observed_at)) =
            (prediction_id, fraud, observed_at)
        {
            outcomes.push(Outcome {
                prediction_id,
                fraud,
                observed_at,
            });
        }
    }
    if errors.is_empty() {
        Ok(outcomes)
    } else {
        Err(errors)
    }
}

/// A value as quoted in an error, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// A UUID in its hyphenated form (what the answers carry), case-insensitive.
pub(super) fn parse_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

pub(super) fn parse_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let time = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    (time <= now + FUTURE_TOLERANCE).then_some(time)
}

pub(super) fn parse_fraud(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0192f0c4-8a4e-7c1b-9d2e-3f4a5b6c7d8e";
    const OTHER: &str = "0192f0c4-8a4e-7c1b-9d2e-3f4a5b6c7d8f";

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_valid_body_defaults_observed_at_to_now() {
        let now = Utc::now();
        let body = json!({"outcomes": [
            {"prediction_id": ID, "fraud": true, "observed_at": "2026-01-02T03:04:05+01:00"},
            {"prediction_id": OTHER, "fraud": false}
        ]});
        let outcomes = outcomes_from_json(&body, now).unwrap();
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes[0].fraud);
        assert_eq!(
            outcomes[0].observed_at.to_rfc3339(),
            "2026-01-02T02:04:05+00:00"
        );
        assert_eq!(outcomes[1].observed_at, now);
        // `observed_at` is optional, but not nullable (the schema says a date-time).
        let null = json!({"outcomes": [{"prediction_id": ID, "fraud": true, "observed_at": null}]});
        let errors = outcomes_from_json(&null, now).unwrap_err();
        assert_eq!(fields(&errors), ["outcomes[0].observed_at"]);
    }

    #[test]
    fn every_bad_field_is_named_with_its_index() {
        let body = json!({"outcomes": [
            {"prediction_id": "not-a-uuid", "fraud": "yes"},
            {"prediction_id": ID, "fraud": true, "observed_at": "yesterday", "extra": 1},
            {"fraud": false},
            {"prediction_id": ID, "fraud": false},
            {"prediction_id": OTHER, "fraud": true, "observed_at": "2999-01-01T00:00:00Z"},
            7
        ], "more": true});
        let errors = outcomes_from_json(&body, Utc::now()).unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "more",
                "outcomes[0].prediction_id",
                "outcomes[0].fraud",
                "outcomes[1].extra",
                "outcomes[1].observed_at",
                "outcomes[2].prediction_id",
                "outcomes[3].prediction_id",
                "outcomes[4].observed_at",
                "outcomes[5]",
            ]
        );
        assert!(
            errors[6].rule.contains("first at outcomes[1]"),
            "{}",
            errors[6].rule
        );
    }

    #[test]
    fn counts_outside_one_to_a_thousand_are_refused() {
        let empty = outcomes_from_json(&json!({"outcomes": []}), Utc::now()).unwrap_err();
        assert_eq!(fields(&empty), ["outcomes"]);
        let many: Vec<Value> = (0..=MAX_OUTCOMES)
            .map(|_| json!({"prediction_id": Uuid::now_v7().to_string(), "fraud": true}))
            .collect();
        let errors = outcomes_from_json(&json!({ "outcomes": many }), Utc::now()).unwrap_err();
        assert_eq!(errors[0].value.as_deref(), Some("1001"));
        assert_eq!(
            fields(&outcomes_from_json(&json!([]), Utc::now()).unwrap_err()),
            ["body"]
        );
        assert_eq!(
            fields(&outcomes_from_json(&json!({}), Utc::now()).unwrap_err()),
            ["outcomes"]
        );
    }
}
