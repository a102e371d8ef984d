//! Request bodies parsed strictly: a key given twice in one object is refused (as a repeated
//! query parameter is) instead of the last one silently winning, and a number too large for
//! a float (`1e400`) reaches validation, which names its field, instead of failing the parse.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
///
/// One pass over the body when it is well-formed and every number fits a float (the
/// usual case); otherwise the slower pass below, which keeps huge numbers as text and
/// gives the same errors as before.
pub fn parse(body: &[u8]) -> Result<Value, StrictJsonError> {
    let mut duplicates = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let fast = Strict {
        path: Path::Root,
        duplicates: &mut duplicates,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match fast {
        Ok(value) if duplicates.is_empty() => Ok(value),
        Ok(_) => Err(StrictJsonError::Duplicates(duplicates)),
        Err(_) => parse_slowly(body),
    }
}

/// Where a value sits in the body; written out only for a duplicate key.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// `records[0].a`, as [`convert`] names it.
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(Path::Root, key) => (*key).to_string(),
            Path::Key(parent, key) => format!("{}.{key}", parent.render()),
            Path::Index(parent, index) => format!("{}[{index}]", parent.render()),
        }
    }
}

/// A value, with the duplicate keys of its objects recorded under their paths (the value
/// of a repeated key is skipped, not looked into, as in [`convert`]).
struct Strict<'p, 'd> {
    path: Path<'p>,
    duplicates: &'d mut Vec<FieldError>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Strict {
                path: Path::Index(&self.path, items.len()),
                duplicates: &mut *self.duplicates,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Value, M::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                map.next_value::<IgnoredAny>()?;
                let child = Path::Key(&self.path, &key).render();
                if !self.duplicates.iter().any(|d| d.field == child) {
                    self.duplicates.push(FieldError::new(
                        &child,
                        "is given more than once".to_string(),
                        None,
                    ));
                }
                continue;
            }
            let value = map.next_value_seed(Strict {
                path: Path::Key(&self.path, &key),
                duplicates: &mut *self.duplicates,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// [`parse`] by raw values: numbers out of a float's range are kept as their text.
fn parse_slowly(body: &[u8]) -> Result<Value, StrictJsonError> {
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

/// True for a body with nothing but JSON's whitespace (RFC 8259: space, tab, LF, CR), which
/// counts as no body. `u8::is_ascii_whitespace` would also pass a form feed, which is not JSON.
pub(super) fn is_blank(body: &[u8]) -> bool {
    body.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
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
    fn one_pass_and_raw_values_agree() {
        let bodies: [&[u8]; 6] = [
            br#"{"records": [{"a": 1, "b": 2, "a": 3}], "x": 1, "x": 2}"#,
            br#"{"a": {"b": [[{"c": 1, "c": 2}]]}, "a": {"d": 1, "d": 2}}"#,
            br#"{"a": -0.0, "b": 18446744073709551615, "c": -9223372036854775808, "d": "\u00e9"}"#,
            br#"[{"a": 1}, {"a": 2, "a": 3}, true, null]"#,
            br#" {"a": 1e400, "a": 2} "#,
            br#"{"a": 1} trailing"#,
        ];
        for body in bodies {
            let slow = match parse_slowly(body) {
                Ok(value) => Ok(value),
                Err(StrictJsonError::Duplicates(fields)) => {
                    Err(fields.into_iter().map(|f| f.field).collect::<Vec<_>>())
                }
                Err(StrictJsonError::Malformed(message)) => Err(vec![message]),
            };
            let fast = match parse(body) {
                Ok(value) => Ok(value),
                Err(StrictJsonError::Duplicates(fields)) => {
                    Err(fields.into_iter().map(|f| f.field).collect::<Vec<_>>())
                }
                Err(StrictJsonError::Malformed(message)) => Err(vec![message]),
            };
            assert_eq!(fast, slow, "{}", String::from_utf8_lossy(body));
        }
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
