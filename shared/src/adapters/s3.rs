//! S3 as the artifact store: models, `MLmodel` files, drift reports and the champion pointer
//! under `s3://<bucket>/<prefix>/`. Works against S3-compatible stores (moto, MinIO) through a
//! custom endpoint and path-style addressing.
//!
//! The MLflow tracker reuses [`put_object`] to write run artifacts straight to the run's
//! `s3://` artifact URI.

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::local_artifacts::bounded;
use crate::config::AwsConfig;
use crate::ports::{ArtifactError, ArtifactStore, BoundedObject, HEAD_BYTES};
use crate::BoxError;

/// An S3 call that failed: a readable line (the S3 error code and message, or the whole
/// cause chain) and the SDK's error underneath.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct S3Error {
    pub message: String,
    #[source]
    pub source: BoxError,
}

impl S3Error {
    fn sdk<E, R>(error: aws_sdk_s3::error::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        S3Error {
            message: sdk_message(&error),
            source: Box::new(error),
        }
    }

    /// The artifact store's error for this failure, with this one as its source.
    fn into_artifact_error(self, operation: &'static str, key: String) -> ArtifactError {
        ArtifactError::new(operation, key, self.message.clone()).with_source(self)
    }
}

/// An S3 client for the configured region, credentials, endpoint and addressing style.
pub async fn s3_client(aws: &AwsConfig) -> aws_sdk_s3::Client {
    let sdk = aws.sdk_config().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(aws.path_style());
    if let Some(endpoint) = aws.s3_endpoint() {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Writes one object; the error text names the S3 error code and message.
pub async fn put_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> Result<(), S3Error> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map(|_| ())
        .map_err(S3Error::sdk)
}

/// Sends `GetObject`; `None` when the key does not exist (a missing bucket is an error).
async fn send_get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<GetObjectOutput>, S3Error> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => Ok(Some(output)),
        Err(error) => match error.as_service_error() {
            Some(GetObjectError::NoSuchKey(_)) => Ok(None),
            _ => Err(S3Error::sdk(error)),
        },
    }
}

/// Reads one object; `None` when the key does not exist (a missing bucket is an error).
pub async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, S3Error> {
    let Some(output) = send_get_object(client, bucket, key).await? else {
        return Ok(None);
    };
    let body = output.body.collect().await.map_err(|e| S3Error {
        message: format!("reading the body failed: {e}"),
        source: Box::new(e),
    })?;
    Ok(Some(body.into_bytes().to_vec()))
}

/// Reads one object up to `max_bytes` (see [`ArtifactStore::get_at_most`]): a larger one, by its
/// declared length or by what arrives, is read no further than its head and the connection
/// dropped.
async fn get_object_at_most(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: usize,
) -> Result<Option<BoundedObject>, S3Error> {
    let Some(output) = send_get_object(client, bucket, key).await? else {
        return Ok(None);
    };
    let declared = output
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let wanted = if declared > max_bytes as u64 {
        HEAD_BYTES
    } else {
        max_bytes.saturating_add(1)
    };
    let mut body = output.body;
    let mut bytes = Vec::new();
    while bytes.len() < wanted {
        match body.next().await {
            Some(chunk) => bytes.extend_from_slice(&chunk.map_err(|e| S3Error {
                message: format!("reading the body failed: {e}"),
                source: Box::new(e),
            })?),
            None => break,
        }
    }
    Ok(Some(bounded(bytes, declared, max_bytes)))
}

/// What S3's `x-amz-copy-source` leaves unescaped in a key: RFC 3986's unreserved characters
/// and the path separator.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Copies an object inside a bucket, server-side.
async fn copy_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    from: &str,
    to: &str,
) -> Result<(), S3Error> {
    client
        .copy_object()
        .bucket(bucket)
        .key(to)
        .copy_source(format!(
            "{}/{}",
            utf8_percent_encode(bucket, COPY_SOURCE),
            utf8_percent_encode(from, COPY_SOURCE)
        ))
        .send()
        .await
        .map(|_| ())
        .map_err(S3Error::sdk)
}

/// Lists the keys under a prefix (all pages), sorted.
pub async fn list_keys(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, S3Error> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let output = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(S3Error::sdk)?;
        keys.extend(
            output
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match output.next_continuation_token() {
            Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => break,
        }
    }
    keys.sort();
    Ok(keys)
}

/// "Code: message" for service errors, the whole error chain otherwise.
fn sdk_message<E, R>(error: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) if service.code().is_some() => format!(
            "{}: {}",
            service.code().unwrap_or_default(),
            service.message().unwrap_or("(no message)")
        ),
        _ => DisplayErrorContext(error).to_string(),
    }
}

/// Splits `s3://bucket/some/prefix` into the bucket and the prefix (without slashes at the end).
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Whether a relative key is safe: non-empty segments, no `.` or `..`, no leading slash.
pub(crate) fn valid_relative_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// Artifacts as objects in one bucket below a key prefix.
#[derive(Clone, Debug)]
pub struct S3ArtifactStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
}

impl S3ArtifactStore {
    /// A store over an existing client. `prefix` may be empty.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        S3ArtifactStore {
            client,
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix (empty, or ending with `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The client, for sharing with the MLflow tracker.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Keys below the store's prefix, relative to it, sorted.
    pub async fn list(&self) -> Result<Vec<String>, ArtifactError> {
        let keys = list_keys(&self.client, &self.bucket, &self.prefix)
            .await
            .map_err(|e| e.into_artifact_error("list", self.uri("")))?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_string))
            .collect())
    }

    fn object_key(&self, operation: &'static str, key: &str) -> Result<String, ArtifactError> {
        if valid_relative_key(key) {
            Ok(format!("{}{key}", self.prefix))
        } else {
            Err(ArtifactError::new(
                operation,
                key,
                "keys must be relative paths without '.' or '..' segments",
            ))
        }
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }
}

#[async_trait]
impl ArtifactStore for S3ArtifactStore {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ArtifactError> {
        let object_key = self.object_key("put", key)?;
        put_object(&self.client, &self.bucket, &object_key, bytes, content_type)
            .await
            .map_err(|e| e.into_artifact_error("put", self.uri(key)))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let object_key = self.object_key("get", key)?;
        get_object(&self.client, &self.bucket, &object_key)
            .await
            .map_err(|e| e.into_artifact_error("get", self.uri(key)))
    }

    async fn get_at_most(
        &self,
        key: &str,
        max_bytes: usize,
    ) -> Result<Option<BoundedObject>, ArtifactError> {
        let object_key = self.object_key("get", key)?;
        get_object_at_most(&self.client, &self.bucket, &object_key, max_bytes)
            .await
            .map_err(|e| e.into_artifact_error("get", self.uri(key)))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), ArtifactError> {
        let source = self.object_key("copy", from)?;
        let target = self.object_key("copy", to)?;
        copy_object(&self.client, &self.bucket, &source, &target)
            .await
            .map_err(|e| e.into_artifact_error("copy", self.uri(from)))
    }

    async fn delete(&self, key: &str) -> Result<(), ArtifactError> {
        let object_key = self.object_key("delete", key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| S3Error::sdk(e).into_artifact_error("delete", self.uri(key)))
    }

    fn location(&self) -> String {
        self.uri("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_s3_uri("s3://b/mlflow/1/abc/artifacts"),
            Some(("b".into(), "mlflow/1/abc/artifacts".into()))
        );
        assert_eq!(parse_s3_uri("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_uri("s3://b/"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_uri("s3:///x"), None);
        assert_eq!(parse_s3_uri("mlflow-artifacts:/x"), None);
    }

    #[test]
    fn keys_cannot_escape_the_prefix() {
        for key in ["", "/a", "a//b", "../a", "a/./b", "a/.."] {
            assert!(!valid_relative_key(key), "{key}");
        }
        assert!(valid_relative_key("models/v1/model.json"));
    }
}
