//! AWS Secrets Manager: the database secret (RDS JSON shape) and the MLflow basic-auth
//! credentials, each fetched once per process (one Lambda container) and cached.
//!
//! Local runs skip this module: `FRAUDRISK_DATABASE_URL` and `MLFLOW_TRACKING_USERNAME` /
//! `MLFLOW_TRACKING_PASSWORD` (environment or `credentials.env`) give the values directly.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Deserialize;

use crate::config::{AwsConfig, Redacted};
use crate::BoxError;

/// A secret could not be fetched or understood.
#[derive(Debug, thiserror::Error)]
#[error("secret {secret_id}: {message}")]
pub struct SecretError {
    pub secret_id: String,
    /// What failed, readable on its own (it may quote `source`).
    pub message: String,
    /// The SDK's or the JSON parser's error, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

impl SecretError {
    /// A failure described in words.
    pub fn new(secret_id: &str, message: impl Into<String>) -> Self {
        SecretError {
            secret_id: secret_id.to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// The same failure with the error underneath it.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// The database secret as RDS stores it (`engine` and other extra keys are ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseSecret {
    pub host: String,
    pub port: u16,
    /// Absent from RDS-managed secrets; the caller then supplies a default.
    pub dbname: Option<String>,
    pub username: String,
    pub password: Redacted,
    /// Not part of the RDS shape, but honoured when present.
    pub sslmode: Option<String>,
}

/// HTTP Basic credentials for the MLflow server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: Redacted,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortValue {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct RawDatabaseSecret {
    host: String,
    #[serde(default)]
    port: Option<PortValue>,
    #[serde(default, alias = "dbName", alias = "database")]
    dbname: Option<String>,
    #[serde(alias = "user")]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    sslmode: Option<String>,
}

#[derive(Deserialize)]
struct RawBasicCredentials {
    username: String,
    password: String,
}

/// Parses the RDS secret JSON shape.
pub fn parse_database_secret(secret_id: &str, text: &str) -> Result<DatabaseSecret, SecretError> {
    let raw: RawDatabaseSecret = serde_json::from_str(text).map_err(|e| {
        SecretError::new(
            secret_id,
            format!("not the RDS JSON shape (host, port, dbname, username, password): {e}"),
        )
        .with_source(e)
    })?;
    let port = match raw.port {
        None => 5432,
        Some(PortValue::Number(n)) => u16::try_from(n)
            .map_err(|_| SecretError::new(secret_id, format!("port {n} is out of range")))?,
        Some(PortValue::Text(t)) => t
            .trim()
            .parse()
            .map_err(|_| SecretError::new(secret_id, format!("port {t:?} is not a number")))?,
    };
    Ok(DatabaseSecret {
        host: raw.host,
        port,
        dbname: raw.dbname.filter(|d| !d.is_empty()),
        username: raw.username,
        password: Redacted::new(raw.password),
        sslmode: raw.sslmode.filter(|s| !s.is_empty()),
    })
}

/// Parses `{"username": ..., "password": ...}`.
pub fn parse_basic_credentials(
    secret_id: &str,
    text: &str,
) -> Result<BasicCredentials, SecretError> {
    let raw: RawBasicCredentials = serde_json::from_str(text).map_err(|e| {
        SecretError::new(
            secret_id,
            format!("expected JSON with username and password: {e}"),
        )
        .with_source(e)
    })?;
    Ok(BasicCredentials {
        username: raw.username,
        password: Redacted::new(raw.password),
    })
}

/// Secret strings already fetched by this process, by endpoint and id.
static CACHE: LazyLock<Mutex<HashMap<(String, String), Redacted>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A Secrets Manager client with a per-process cache.
#[derive(Clone, Debug)]
pub struct SecretsClient {
    client: aws_sdk_secretsmanager::Client,
    /// Part of the cache key, so tests against different endpoints never mix.
    endpoint: String,
}

impl SecretsClient {
    /// A client for the configured region, credentials and endpoint.
    pub async fn new(aws: &AwsConfig) -> Self {
        let sdk = aws.sdk_config().await;
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&sdk);
        if let Some(endpoint) = aws.secrets_endpoint() {
            builder = builder.endpoint_url(endpoint);
        }
        SecretsClient {
            client: aws_sdk_secretsmanager::Client::from_conf(builder.build()),
            endpoint: aws.secrets_endpoint().unwrap_or("aws").to_string(),
        }
    }

    /// The secret's string value, fetched once per process.
    pub async fn secret_string(&self, secret_id: &str) -> Result<String, SecretError> {
        let key = (self.endpoint.clone(), secret_id.to_string());
        if let Some(hit) = cache_get(&key) {
            return Ok(hit);
        }
        let output = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                SecretError::new(
                    secret_id,
                    format!("GetSecretValue failed: {}", DisplayErrorContext(&e)),
                )
                .with_source(e)
            })?;
        let text = output.secret_string().ok_or_else(|| {
            SecretError::new(secret_id, "the secret has no string value (binary secret?)")
        })?;
        tracing::info!(secret_id, "fetched a secret from Secrets Manager");
        if let Ok(mut cache) = CACHE.lock() {
            cache.insert(key, Redacted::new(text));
        }
        Ok(text.to_string())
    }

    /// The database secret in the RDS JSON shape.
    pub async fn database_secret(&self, secret_id: &str) -> Result<DatabaseSecret, SecretError> {
        parse_database_secret(secret_id, &self.secret_string(secret_id).await?)
    }

    /// The MLflow basic-auth credentials.
    pub async fn basic_credentials(
        &self,
        secret_id: &str,
    ) -> Result<BasicCredentials, SecretError> {
        parse_basic_credentials(secret_id, &self.secret_string(secret_id).await?)
    }
}

fn cache_get(key: &(String, String)) -> Option<String> {
    CACHE
        .lock()
        .ok()
        .and_then(|cache| cache.get(key).map(|v| v.expose().to_string()))
}

/// Forgets every cached secret (after a rotation, or in tests).
pub fn clear_cache() {
    if let Ok(mut cache) = CACHE.lock() {
        cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_shape_with_number_or_text_port() {
        let s = parse_database_secret(
            "db",
            r#"{"engine":"postgres","host":"h","port":5433,"dbname":"d","username":"u","password":"p"}"#,
        )
        .unwrap();
        assert_eq!((s.host.as_str(), s.port), ("h", 5433));
        assert_eq!(s.dbname.as_deref(), Some("d"));
        assert_eq!(s.password.expose(), "p");
        let s = parse_database_secret(
            "db",
            r#"{"host":"h","port":"6000","username":"u","password":"p","dbInstanceIdentifier":"x"}"#,
        )
        .unwrap();
        assert_eq!((s.port, s.dbname), (6000, None));
    }

    #[test]
    fn malformed_secrets_say_what_is_wrong() {
        let e = parse_database_secret("db", r#"{"host":"h"}"#).unwrap_err();
        assert!(e.to_string().contains("secret db"), "{e}");
        assert!(e.to_string().contains("username"), "{e}");
        let e =
            parse_database_secret("db", r#"{"host":"h","username":"u","port":99999}"#).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = parse_basic_credentials("m", "not json").unwrap_err();
        assert!(e.to_string().contains("username and password"), "{e}");
    }
}
