//! A logged prediction's inputs, read from the log's JSON straight into the 20 values.
//!
//! A report of 1,000 outcomes reads 1,000 logged inputs; parsing each into a JSON tree (a map
//! of 20 owned keys) only to pick the 20 numbers out again was a visible part of its CPU time.
//! Deserializing into [`LoggedInputs`] visits the object once and keeps just the numbers; keys
//! it does not know are skipped, and a damaged entry is kept as the reason it cannot be used
//! (the report names it per item) rather than failing the whole read.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::schema::{FEATURES, FEATURE_COUNT};

/// The 20 inputs in schema order, or why the logged entry cannot give them.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedInputs(Result<[f64; FEATURE_COUNT], String>);

impl LoggedInputs {
    /// The inputs of an entry already read as a JSON tree.
    pub fn of_json(value: &serde_json::Value) -> Self {
        Self::deserialize(value).unwrap_or_else(|error| LoggedInputs(Err(error.to_string())))
    }

    /// The values in schema order, or the reason they are unusable.
    pub fn values(&self) -> Result<&[f64; FEATURE_COUNT], &str> {
        self.0.as_ref().map_err(String::as_str)
    }
}

impl<'de> Deserialize<'de> for LoggedInputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(InputsVisitor)
    }
}

fn not_an_object() -> LoggedInputs {
    LoggedInputs(Err("not a JSON object".to_string()))
}

struct InputsVisitor;

impl<'de> Visitor<'de> for InputsVisitor {
    type Value = LoggedInputs;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("the logged inputs (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LoggedInputs, A::Error> {
        let mut values: [Option<f64>; FEATURE_COUNT] = [None; FEATURE_COUNT];
        while let Some(slot) = map.next_key::<FeatureSlot>()? {
            match slot.0 {
                Some(index) => values[index] = map.next_value::<Number>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut complete = [0.0; FEATURE_COUNT];
        for ((value, slot), feature) in values.iter().zip(&mut complete).zip(FEATURES.iter()) {
            match value {
                Some(number) => *slot = *number,
                None => {
                    return Ok(LoggedInputs(Err(format!(
                        "{} is missing or not a number",
                        feature.name
                    ))))
                }
            }
        }
        Ok(LoggedInputs(Ok(complete)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LoggedInputs, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<LoggedInputs, E> {
        Ok(not_an_object())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<LoggedInputs, E> {
        Ok(not_an_object())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<LoggedInputs, E> {
        Ok(not_an_object())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<LoggedInputs, E> {
        Ok(not_an_object())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<LoggedInputs, E> {
        Ok(not_an_object())
    }

    fn visit_unit<E: de::Error>(self) -> Result<LoggedInputs, E> {
        Ok(not_an_object())
    }
}

/// A key of the logged object: the index of the feature it names, if any.
struct FeatureSlot(Option<usize>);

impl<'de> Deserialize<'de> for FeatureSlot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FeatureSlot;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<FeatureSlot, E> {
                Ok(FeatureSlot(FEATURES.iter().position(|f| f.name == key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A value of the logged object: its number, or `None` for anything else.
struct Number(Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Number, E> {
                Ok(Number(Some(value as f64)))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Number, E> {
                Ok(Number(Some(value as f64)))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Number, E> {
                Ok(Number(Some(value)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Number, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Number, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> LoggedInputs {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_what_a_json_tree_would_give() {
        let example = crate::request::seed_example_corrected();
        // The logged object itself, with an unknown key of every shape beside the 20.
        let mut object = example.clone();
        object["unknown"] = serde_json::json!([{"a": null}, "x", true]);
        let inputs = read(&object.to_string());
        let expected: Vec<f64> = FEATURES
            .iter()
            .map(|f| example[f.name].as_f64().unwrap())
            .collect();
        assert_eq!(inputs.values().unwrap().to_vec(), expected);
        // An object without the fields (here, wrapping them): the first is named missing.
        let text = serde_json::json!({"extra": {"nested": [1, 2]}, "inputs": example}).to_string();
        let wrapped = read(&text);
        let reason = wrapped.values().unwrap_err();
        assert!(reason.contains(FEATURES[0].name), "{reason}");
    }

    #[test]
    fn damaged_entries_are_reasons_not_errors() {
        assert_eq!(read("[1, 2]").values(), Err("not a JSON object"));
        assert_eq!(read("\"text\"").values(), Err("not a JSON object"));
        assert_eq!(read("null").values(), Err("not a JSON object"));
        let mut object = crate::request::seed_example_corrected();
        object["age_years"] = serde_json::json!("old");
        let reason = read(&object.to_string()).values().unwrap_err().to_string();
        assert_eq!(reason, "age_years is missing or not a number");
        // Malformed JSON still fails the read.
        assert!(serde_json::from_str::<LoggedInputs>("{\"age_years\": ").is_err());
    }
}
