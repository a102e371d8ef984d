//! The objects an invocation is about: EventBridge's S3 "Object Created" event (what
//! `template.yaml` wires up) or an S3 event notification (`Records`, for a bucket that
//! notifies the function directly).

use serde_json::Value;

/// An object named by an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key as the event gives it.
    pub key: String,
    /// The key with S3 notification URL-encoding undone (`+` for spaces, `%xx`), when that
    /// differs: notifications encode keys, EventBridge events do not.
    pub decoded_key: Option<String>,
}

/// Why an event names no object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error(
        "unrecognised event: expected an EventBridge S3 \"Object Created\" event or an S3 \
         event notification with Records"
    )]
    Unrecognised,
    #[error("the event lacks {0}")]
    Missing(&'static str),
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
}

fn decoded(key: &str) -> Option<String> {
    if !key.contains(['%', '+']) {
        return None;
    }
    let decoded: String = form_urlencoded::parse(format!("k={key}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())?;
    (decoded != key).then_some(decoded)
}

/// The objects the event names, in order.
pub fn objects_in_event(event: &Value) -> Result<Vec<ObjectRef>, EventError> {
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        return records
            .iter()
            .map(|record| {
                let bucket = text(record, &["s3", "bucket", "name"])
                    .ok_or(EventError::Missing("Records[].s3.bucket.name"))?;
                let key = text(record, &["s3", "object", "key"])
                    .ok_or(EventError::Missing("Records[].s3.object.key"))?;
                Ok(ObjectRef {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    decoded_key: decoded(key),
                })
            })
            .collect();
    }
    if text(event, &["source"]) == Some("aws.s3") || event.get("detail-type").is_some() {
        let bucket = text(event, &["detail", "bucket", "name"])
            .ok_or(EventError::Missing("detail.bucket.name"))?;
        let key = text(event, &["detail", "object", "key"])
            .ok_or(EventError::Missing("detail.object.key"))?;
        return Ok(vec![ObjectRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
            decoded_key: decoded(key),
        }]);
    }
    Err(EventError::Unrecognised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_event_shapes_name_their_objects() {
        let eventbridge = json!({
            "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "p/incoming/new.csv", "size": 5}}
        });
        assert_eq!(
            objects_in_event(&eventbridge).unwrap(),
            [ObjectRef {
                bucket: "b".into(),
                key: "p/incoming/new.csv".into(),
                decoded_key: None
            }]
        );
        let notification = json!({"Records": [
            {"s3": {"bucket": {"name": "b"}, "object": {"key": "p/incoming/my+file%281%29.csv"}}}
        ]});
        let objects = objects_in_event(&notification).unwrap();
        assert_eq!(
            objects[0].decoded_key.as_deref(),
            Some("p/incoming/my file(1).csv")
        );
    }

    #[test]
    fn other_events_are_refused() {
        assert_eq!(
            objects_in_event(&json!({"mode": "always"})),
            Err(EventError::Unrecognised)
        );
        assert_eq!(
            objects_in_event(&json!({"source": "aws.s3", "detail": {}})),
            Err(EventError::Missing("detail.bucket.name"))
        );
    }
}
