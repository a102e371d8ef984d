//! Request bodies parsed strictly: a key given twice in one object is refused (as a repeated
//! query parameter is) instead of the last one silently winning, and a number too large for
//! a float (`1e400`) reaches validation, which names its field, instead of failing the parse.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::schema::FieldError;

/// Why a body was refused before validation.
#[derive(Debug)]
pub enum StrictJsonError {
    /// Not JSON at all (400).
    Malformed(String),
    /// Keys given more than once, with their paths (422).
    Duplicates(Vec<FieldError>),
}

/// Parses a body into a [`Value`], refusing duplicate keys.
pub fn parse(body: &[u8]) -> Result<Value, StrictJsonError> {
    let raw: &RawValue =
        serde_json::from_slice(body).map_err(|e| StrictJsonError::Malformed(e.to_string()))?;
    let mut duplicates = Vec::new();
    let value = convert(raw, "", &mut duplicates)?;
    if duplicates.is_empty() {
        Ok(value)
    } else {
        Err(StrictJsonError::Duplicates(duplicates))
    }
}

/// An object's members in order, duplicates kept.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members<'a>, M::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'a RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

fn malformed(error: serde_json::Error) -> StrictJsonError {
    StrictJsonError::Malformed(error.to_string())
}

fn convert(
    raw: &RawValue,
    path: &str,
    duplicates: &mut Vec<FieldError>,
) -> Result<Value, StrictJsonError> {
    let text = raw.get();
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {
            let members: Members<'_> = serde_json::from_str(text).map_err(malformed)?;
            let mut object = Map::new();
            for (key, value) in members.0 {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if object.contains_key(&key) {
                    if !duplicates.iter().any(|d| d.field == child) {
                        duplicates.push(FieldError::new(
                            &child,
                            "is given more than once".to_string(),
                            None,
                        ));
                    }
                    continue;
                }
                let value = convert(value, &child, duplicates)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(malformed)?;
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| convert(item, &format!("{path}[{index}]"), duplicates))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Some(b'-' | b'0'..=b'9') => match serde_json::from_str::<Value>(text) {
            Ok(value) => Ok(value),
            // Out of a float's range: kept as its text, so validation names the field.
            Err(_) => Ok(Value::String(text.trim().to_string())),
        },
        _ => serde_json::from_str(text).map_err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_named_with_their_path() {
        let body = br#"{"records": [{"a": 1, "b": 2, "a": 3}], "x": 1, "x": 2}"#;
        let Err(StrictJsonError::Duplicates(fields)) = parse(body) else {
            panic!("duplicates accepted");
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["records[0].a", "x"]);
    }

    #[test]
    fn huge_numbers_reach_validation_as_text() {
        let value = parse(br#"{"age_years": 1e400, "b": [1, -2.5, "s", null, true]}"#).unwrap();
        assert_eq!(value["age_years"], "1e400");
        assert_eq!(value["b"][1], -2.5);
        assert_eq!(value["b"][2], "s");
    }

    #[test]
    fn malformed_json_is_malformed() {
        assert!(matches!(
            parse(b"{\"a\": 1,"),
            Err(StrictJsonError::Malformed(_))
        ));
        assert!(matches!(parse(b""), Err(StrictJsonError::Malformed(_))));
    }
}
