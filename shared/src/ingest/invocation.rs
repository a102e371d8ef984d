//! One invocation of the `ingest` function: every object its event names, each checked
//! against the configured bucket and prefix, loaded and moved.

use serde_json::Value;

use crate::config::Config;

use super::{ingest_key, objects_in_event, EventError, IngestError, IngestOutcome, IngestStores};

/// Where the function's objects live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestTarget {
    /// The configured bucket; `None` for the local folder store (events then name keys
    /// relative to it, and any bucket).
    pub bucket: Option<String>,
    /// The artifact prefix (without slashes at either end; may be empty).
    pub prefix: String,
}

/// The prefix events carry for the local folder store: the template's default
/// `ArtifactPrefix`, so the same sample events work locally and in AWS.
pub const LOCAL_PREFIX: &str = "fraudrisk";

impl IngestTarget {
    /// The configured bucket and prefix, or the local folder store's.
    pub fn from_config(config: &Config) -> Self {
        match &config.artifacts {
            Some(artifacts) => IngestTarget {
                bucket: Some(artifacts.bucket.clone()),
                prefix: artifacts.prefix.trim_matches('/').to_string(),
            },
            None => Self::local(),
        }
    }

    /// The local folder store: any bucket, keys below [`LOCAL_PREFIX`].
    pub fn local() -> Self {
        IngestTarget {
            bucket: None,
            prefix: LOCAL_PREFIX.to_string(),
        }
    }

    /// The key relative to the artifact store, or why the object is not ours.
    fn relative<'a>(&self, bucket: &str, key: &'a str) -> Result<&'a str, String> {
        if let Some(ours) = &self.bucket {
            if ours != bucket {
                return Err(format!(
                    "bucket {bucket} is not the configured bucket {ours}"
                ));
            }
        }
        if self.prefix.is_empty() {
            return Ok(key);
        }
        key.strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| format!("{key} is not below the prefix {}/", self.prefix))
    }
}

/// Why an invocation failed (Lambda retries it, then hands it to the dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Handles every object of `event`; the answer lists what each did. An object that is not
/// ours is reported as ignored (retrying would not change that); a store failure fails the
/// invocation after the objects before it were handled (they are not redone on the retry:
/// they are gone from `incoming/`).
pub async fn ingest_event(
    stores: &IngestStores<'_>,
    target: &IngestTarget,
    event: &Value,
) -> Result<Vec<IngestOutcome>, InvocationError> {
    let mut outcomes = Vec::new();
    for object in objects_in_event(event)? {
        let key = match target.relative(&object.bucket, &object.key) {
            Ok(key) => key,
            Err(reason) => {
                tracing::warn!(
                    bucket = object.bucket,
                    key = object.key,
                    reason,
                    "object ignored"
                );
                outcomes.push(IngestOutcome::Ignored {
                    key: object.key.clone(),
                    reason,
                });
                continue;
            }
        };
        let mut outcome = ingest_key(stores, key).await?;
        // S3 notifications URL-encode keys; try the decoded one when the raw one is absent.
        if let (IngestOutcome::AlreadyHandled { .. }, Some(decoded)) =
            (&outcome, &object.decoded_key)
        {
            if let Ok(decoded) = target.relative(&object.bucket, decoded) {
                outcome = ingest_key(stores, decoded).await?;
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_relative_to_the_prefix_of_the_configured_bucket() {
        let target = IngestTarget {
            bucket: Some("b".into()),
            prefix: "fraudrisk".into(),
        };
        assert_eq!(
            target.relative("b", "fraudrisk/incoming/x.csv"),
            Ok("incoming/x.csv")
        );
        assert!(target
            .relative("other", "fraudrisk/incoming/x.csv")
            .is_err());
        assert!(target.relative("b", "fraudriskx/incoming/x.csv").is_err());
        let local = IngestTarget::local();
        assert_eq!(
            local.relative("any", "fraudrisk/incoming/x.csv"),
            Ok("incoming/x.csv")
        );
        let bare = IngestTarget {
            bucket: None,
            prefix: String::new(),
        };
        assert_eq!(bare.relative("any", "incoming/x.csv"), Ok("incoming/x.csv"));
    }
}
