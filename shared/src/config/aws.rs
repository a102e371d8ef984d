//! AWS settings: the S3 artifact store, endpoints, region, static credentials, and the SDK
//! configuration built from them.

use std::time::Duration;

use super::{ConfigError, Redacted, Settings};

/// The S3 artifact store's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3ArtifactsConfig {
    pub bucket: String,
    /// Key prefix below which the store writes (`models/...`, `champion.json`); may be empty.
    pub prefix: String,
}

/// AWS SDK settings beyond what the SDK reads itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsConfig {
    pub region: Option<String>,
    /// Endpoint for every AWS service (S3-compatible stores, moto, LocalStack).
    pub endpoint_url: Option<String>,
    pub s3_endpoint_url: Option<String>,
    pub secrets_endpoint_url: Option<String>,
    /// Static credentials (from the file, typically); the SDK's default chain otherwise.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Redacted>,
    pub session_token: Option<Redacted>,
    /// Path-style S3 addressing; defaults to on when a custom S3 endpoint is set.
    pub s3_force_path_style: Option<bool>,
}

impl AwsConfig {
    /// The S3 endpoint: the S3-specific one, else the general one.
    pub fn s3_endpoint(&self) -> Option<&str> {
        self.s3_endpoint_url
            .as_deref()
            .or(self.endpoint_url.as_deref())
    }

    /// The Secrets Manager endpoint: the specific one, else the general one.
    pub fn secrets_endpoint(&self) -> Option<&str> {
        self.secrets_endpoint_url
            .as_deref()
            .or(self.endpoint_url.as_deref())
    }

    /// Whether S3 requests use path-style addressing.
    pub fn path_style(&self) -> bool {
        self.s3_force_path_style
            .unwrap_or_else(|| self.s3_endpoint().is_some())
    }

    /// The AWS SDK configuration: region, credentials, timeouts, and an HTTP client on
    /// rustls with ring (the same TLS stack as the rest of the crate).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        use aws_config::timeout::TimeoutConfig;
        use aws_config::{BehaviorVersion, Region};
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(90))
                    .build(),
            );
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let (Some(key), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                key.clone(),
                secret.expose().to_string(),
                self.session_token.as_ref().map(|t| t.expose().to_string()),
                None,
                "fraudrisk-config",
            ));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            // Lambda always sets AWS_REGION; elsewhere a missing region would only surface
            // as an obscure endpoint-resolution error on the first call.
            tracing::debug!("no AWS region configured; using us-east-1");
            return config
                .into_builder()
                .region(Region::new("us-east-1"))
                .build();
        }
        config
    }
}
pub(super) fn artifacts_config(
    settings: &Settings,
) -> Result<Option<S3ArtifactsConfig>, ConfigError> {
    let Some(bucket) = settings.get("FRAUDRISK_BUCKET") else {
        return Ok(None);
    };
    if bucket.contains('/') || bucket.starts_with("s3:") {
        return Err(ConfigError::invalid(
            "FRAUDRISK_BUCKET",
            format!("{bucket:?}: give the bucket name alone (the prefix goes in FRAUDRISK_ARTIFACT_PREFIX)"),
        ));
    }
    let prefix = settings
        .get("FRAUDRISK_ARTIFACT_PREFIX")
        .unwrap_or_default();
    if prefix.split('/').any(|part| part == "..") || prefix.starts_with('/') {
        return Err(ConfigError::invalid(
            "FRAUDRISK_ARTIFACT_PREFIX",
            format!("{prefix:?}: a relative key prefix without '..' segments"),
        ));
    }
    Ok(Some(S3ArtifactsConfig { bucket, prefix }))
}

pub(super) fn aws_config(settings: &Settings) -> Result<AwsConfig, ConfigError> {
    Ok(AwsConfig {
        region: settings
            .get("AWS_REGION")
            .or_else(|| settings.get("AWS_DEFAULT_REGION")),
        endpoint_url: settings.get("AWS_ENDPOINT_URL"),
        s3_endpoint_url: settings.get("AWS_ENDPOINT_URL_S3"),
        secrets_endpoint_url: settings.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        access_key_id: settings.get("AWS_ACCESS_KEY_ID"),
        secret_access_key: settings.get("AWS_SECRET_ACCESS_KEY").map(Redacted::new),
        session_token: settings.get("AWS_SESSION_TOKEN").map(Redacted::new),
        s3_force_path_style: settings.flag("FRAUDRISK_S3_FORCE_PATH_STYLE")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_follows_a_custom_endpoint_unless_set() {
        let mut aws = AwsConfig::default();
        assert!(!aws.path_style());
        aws.endpoint_url = Some("http://127.0.0.1:5100".into());
        assert!(aws.path_style());
        aws.s3_force_path_style = Some(false);
        assert!(!aws.path_style());
    }
}
