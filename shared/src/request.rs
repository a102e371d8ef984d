//! Prediction requests: a JSON object of the 20 fields, or `{"records": [...]}` for a batch.
//! Used by the HTTP endpoints and by `fraudctl predict` alike.

use crate::schema::{Applicant, FieldError, FieldValue, ValidationErrors};

/// Most applicants one batch request may carry.
pub const MAX_BATCH: usize = 1000;

/// The seed's documented example request body (`post_request_body.json`, user `merlin`).
/// It has `no_of_dependents = 3`, outside the data's 0/1 domain, so it is rejected.
pub const SEED_EXAMPLE_JSON: &str = include_str!("seed_example.json");

/// The seed's example with `no_of_dependents` set to 1, a valid request.
pub fn seed_example_corrected() -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(SEED_EXAMPLE_JSON).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("no_of_dependents".to_string(), serde_json::Value::from(1));
    }
    value
}

/// Why a request body could not become applicants.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body's shape is wrong (not an object, empty or oversized batch).
    #[error("{field} {rule}")]
    Shape { field: String, rule: String },
    /// Fields broke their rules (every problem listed).
    #[error("invalid fields: {0}")]
    Invalid(ValidationErrors),
}

/// One applicant from a JSON object.
pub fn applicant_from_object(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<Applicant, ValidationErrors> {
    Applicant::from_fields(
        object
            .iter()
            .map(|(name, value)| (name.as_str(), FieldValue::from_json(value))),
    )
}

/// Applicants from a request body: one object, or `{"records": [objects]}`.
/// Returns whether the body was a batch, so answers keep the caller's shape.
pub fn applicants_from_json(
    body: &serde_json::Value,
) -> Result<(Vec<Applicant>, bool), RequestError> {
    let Some(object) = body.as_object() else {
        return Err(RequestError::Shape {
            field: "body".to_string(),
            rule: "must be a JSON object with the 20 fields, or {\"records\": [...]}".to_string(),
        });
    };
    let Some(records) = object.get("records") else {
        return applicant_from_object(object)
            .map(|a| (vec![a], false))
            .map_err(RequestError::Invalid);
    };
    let Some(items) = records.as_array() else {
        return Err(RequestError::Shape {
            field: "records".to_string(),
            rule: "must be an array of objects".to_string(),
        });
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(RequestError::Shape {
            field: "records".to_string(),
            rule: format!(
                "must hold 1 to {MAX_BATCH} applicants (got {})",
                items.len()
            ),
        });
    }
    if object.len() > 1 {
        return Err(RequestError::Shape {
            field: "body".to_string(),
            rule: "a batch body has only the key \"records\"".to_string(),
        });
    }
    let mut applicants = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let result = match item.as_object() {
            Some(object) => applicant_from_object(object),
            None => Err(ValidationErrors(vec![FieldError::new(
                "",
                "must be a JSON object".to_string(),
                None,
            )])),
        };
        match result {
            Ok(applicant) => applicants.push(applicant),
            Err(ValidationErrors(found)) => errors.extend(found.into_iter().map(|mut e| {
                e.field = if e.field.is_empty() {
                    format!("records[{index}]")
                } else {
                    format!("records[{index}].{}", e.field)
                };
                e
            })),
        }
    }
    if errors.is_empty() {
        Ok((applicants, true))
    } else {
        Err(RequestError::Invalid(ValidationErrors(errors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_is_the_seeds_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/seed/post_request_body.json"
        );
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
                let ours: serde_json::Value = serde_json::from_str(SEED_EXAMPLE_JSON).unwrap();
                assert_eq!(theirs, ours);
            }
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped: the seed's reference folder is not beside the checkout ({e})")
            }
            Err(e) => panic!("{path}: {e}"),
        }
    }

    #[test]
    fn seed_example_fails_on_dependents_and_corrected_passes() {
        let body: serde_json::Value = serde_json::from_str(SEED_EXAMPLE_JSON).unwrap();
        match applicants_from_json(&body) {
            Err(RequestError::Invalid(errors)) => {
                assert_eq!(errors.0.len(), 1);
                assert_eq!(errors.0[0].field, "no_of_dependents");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        let (applicants, batch) = applicants_from_json(&seed_example_corrected()).unwrap();
        assert_eq!(applicants.len(), 1);
        assert!(!batch);
    }

    #[test]
    fn batch_errors_name_the_record() {
        let good = seed_example_corrected();
        let body = serde_json::json!({"records": [good, {"purpose": 3}, 7]});
        let Err(RequestError::Invalid(errors)) = applicants_from_json(&body) else {
            panic!("expected errors");
        };
        assert!(errors.0.iter().any(|e| e.field == "records[1].age_years"));
        assert!(errors.0.iter().any(|e| e.field == "records[2]"));
        assert!(!errors.0.iter().any(|e| e.field.starts_with("records[0]")));
        let empty = serde_json::json!({"records": []});
        assert!(matches!(
            applicants_from_json(&empty),
            Err(RequestError::Shape { .. })
        ));
        assert!(matches!(
            applicants_from_json(&serde_json::json!([1])),
            Err(RequestError::Shape { .. })
        ));
    }

    #[test]
    fn json_fields_are_numbers_not_strings() {
        let mut body = seed_example_corrected();
        body["account_balance"] = serde_json::Value::from("4");
        let Err(RequestError::Invalid(errors)) = applicants_from_json(&body) else {
            panic!("a code given as a JSON string was accepted");
        };
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "account_balance");
        assert_eq!(errors.0[0].value.as_deref(), Some("a JSON string"));
    }
}
