//! Artifacts: straight to S3 when the artifact URI is `s3://...` (the server never sees the
//! bytes), through the server's `mlflow-artifacts` proxy when it is `mlflow-artifacts:/...`.

use reqwest::Method;

use crate::adapters::s3::{parse_s3_uri, put_object, valid_relative_key};
use crate::ports::TrackerError;

use super::client::{tracker_error, Body, Retry};
use super::MlflowTracker;

impl MlflowTracker {
    /// Stores a file below an artifact URI: straight to S3 for `s3://...`, through the
    /// server's proxy for `mlflow-artifacts:/...`.
    pub(super) async fn put_artifact(
        &self,
        artifact_uri: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        if !valid_relative_key(path) {
            return Err(tracker_error(
                "log-artifact",
                format!("invalid artifact path {path:?}"),
            ));
        }
        let uri = artifact_uri.trim_end_matches('/');
        if let Some((bucket, prefix)) = parse_s3_uri(uri) {
            let call = "log-artifact (S3 put)";
            let client = self.s3.as_ref().ok_or_else(|| {
                tracker_error(
                    call,
                    format!(
                        "the artifact URI is {uri} but no S3 client is configured \
                         (set FRAUDRISK_BUCKET / the AWS settings)"
                    ),
                )
            })?;
            let key = if prefix.is_empty() {
                path.to_string()
            } else {
                format!("{prefix}/{path}")
            };
            put_object(client, &bucket, &key, bytes, content_type_of(path))
                .await
                .map_err(|e| {
                    tracker_error(call, format!("s3://{bucket}/{key}: {}", e.message))
                        .with_source(e)
                })
        } else if uri.starts_with("mlflow-artifacts:") {
            self.put_artifact_via_proxy(uri, path, bytes).await
        } else {
            Err(tracker_error(
                "log-artifact",
                format!(
                    "the artifact URI {uri} is neither s3:// nor mlflow-artifacts:/; \
                     start the server with --serve-artifacts or an s3:// artifact root"
                ),
            ))
        }
    }

    async fn put_artifact_via_proxy(
        &self,
        artifact_uri: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), TrackerError> {
        let call = "mlflow-artifacts/artifacts";
        // mlflow-artifacts:/<path> or mlflow-artifacts://<host:port>/<path>; the proxy lives
        // on the tracking server either way.
        let rest = artifact_uri
            .strip_prefix("mlflow-artifacts:")
            .unwrap_or_default();
        let rest = match rest.strip_prefix("//") {
            Some(with_authority) => with_authority
                .split_once('/')
                .map(|(_, p)| p)
                .unwrap_or_default(),
            None => rest.trim_start_matches('/'),
        };
        let mut url = self
            .url("api/2.0/mlflow-artifacts/artifacts")
            .map_err(|e| e.into_tracker_error(call))?;
        {
            let mut segments = url.path_segments_mut().map_err(|_| {
                tracker_error(call, format!("cannot build a URL below {}", self.base))
            })?;
            segments.pop_if_empty();
            segments.extend(rest.split('/').filter(|s| !s.is_empty()));
            segments.extend(path.split('/'));
        }
        self.send(Method::PUT, url, &[], Body::Bytes(bytes), Retry::Idempotent)
            .await
            .map(|_| ())
            .map_err(|e| e.into_tracker_error(call))
    }
}

fn content_type_of(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("json") => "application/json",
        Some("py") => crate::model::pyfunc::PYFUNC_CONTENT_TYPE,
        Some("txt") => "text/plain; charset=utf-8",
        Some("html") => "text/html",
        Some("yaml" | "yml") => "application/yaml",
        _ if path.ends_with("MLmodel") => "application/yaml",
        _ => "application/octet-stream",
    }
}
