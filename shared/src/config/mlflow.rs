//! MLflow settings: the tracking server, how the client authenticates, timeouts and tries.

use std::time::Duration;

use super::{ConfigError, Redacted, Settings};

/// How the MLflow client authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MlflowCredentials {
    /// No authentication.
    None,
    /// HTTP Basic auth with these values.
    Basic {
        username: String,
        password: Redacted,
    },
    /// HTTP Basic auth with `{"username", "password"}` from this Secrets Manager secret.
    Secret(String),
}

/// MLflow tracking server settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlflowConfig {
    /// `http://` or `https://` base URL of the tracking server.
    pub tracking_uri: String,
    pub credentials: MlflowCredentials,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per call (1 = no retry).
    pub max_tries: u32,
}

pub(super) fn mlflow_config(settings: &Settings) -> Result<Option<MlflowConfig>, ConfigError> {
    let Some(uri) = settings.get("MLFLOW_TRACKING_URI") else {
        return Ok(None);
    };
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(ConfigError::invalid(
            "MLFLOW_TRACKING_URI",
            format!("{uri:?}: the REST client needs an http:// or https:// tracking server URL"),
        ));
    }
    // Explicit values win over a secret id, as for the database.
    let credentials = match (
        settings.get("MLFLOW_TRACKING_USERNAME"),
        settings.get("MLFLOW_TRACKING_PASSWORD"),
        settings.get("FRAUDRISK_MLFLOW_SECRET_ID"),
    ) {
        (Some(username), Some(password), _) => MlflowCredentials::Basic {
            username,
            password: Redacted::new(password),
        },
        (Some(_), None, None) | (None, Some(_), None) => {
            return Err(ConfigError::invalid(
                "MLFLOW_TRACKING_USERNAME",
                "set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or neither",
            ))
        }
        (_, _, Some(id)) => MlflowCredentials::Secret(id),
        (None, None, None) => MlflowCredentials::None,
    };
    let timeout = settings
        .parse::<u64>("FRAUDRISK_MLFLOW_TIMEOUT_SECS")?
        .unwrap_or(30);
    let max_tries = settings
        .parse::<u32>("FRAUDRISK_MLFLOW_MAX_TRIES")?
        .unwrap_or(3);
    if max_tries == 0 {
        return Err(ConfigError::invalid(
            "FRAUDRISK_MLFLOW_MAX_TRIES",
            "must be at least 1",
        ));
    }
    Ok(Some(MlflowConfig {
        tracking_uri: uri.trim_end_matches('/').to_string(),
        credentials,
        timeout: Duration::from_secs(timeout.max(1)),
        max_tries,
    }))
}
