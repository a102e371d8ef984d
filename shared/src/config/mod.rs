//! Typed configuration, layered: the process environment first, then an optional
//! `credentials.env` file (dotenv syntax), then built-in defaults.
//!
//! Every setting is documented in `credentials.env.example` at the workspace root. Each port
//! is configured independently: a database setting selects PostgreSQL, a bucket selects S3,
//! a tracking URI selects MLflow; whatever is not configured stays local (SQLite, folders).
//!
//! The file is read into a map, never into the process environment: nothing here mutates
//! global state, so tests can build a [`Config`] from plain pairs.
//!
//! This module is also the one place that reads the process environment: [`Settings`] for
//! the ports, [`process`] for the settings of the process itself (state folder, intervals,
//! the scheduled retrain's mode, logging).
//!
//! Layout: `settings` (the layers, the credentials file, [`Redacted`]), `database`, `aws`
//! (S3 and the SDK), `mlflow`, [`process`], [`training`] (the cost matrix, review band and
//! calibration), [`promotion`] (the promotion gate).

mod aws;
mod database;
mod mlflow;
pub mod process;
pub mod promotion;
mod settings;
pub mod training;
pub mod training_window;

use std::path::PathBuf;

use crate::BoxError;

pub use aws::{AwsConfig, S3ArtifactsConfig};
pub use database::{redact_url, DatabaseConfig, DatabaseSource, SslMode};
pub use mlflow::{MlflowConfig, MlflowCredentials};
pub use process::{
    LogSettings, ENV_AUTH_CACHE, ENV_CHAMPION_RECHECK, ENV_JOB_FUNCTION, ENV_JOB_TIMEOUT,
    ENV_LAMBDA_ENDPOINT, ENV_RETRAIN_MODE, ENV_STATE_DIR,
};
pub use promotion::{
    promotion_gate, ENV_MARGIN_BRIER, ENV_MARGIN_EXPECTED_COST, ENV_MARGIN_ROC_AUC,
    ENV_REPLAY_MAX_ROWS, ENV_REPLAY_MIN_OUTCOMES,
};
pub use settings::{Redacted, Settings, CREDENTIALS_FILE_VAR, DEFAULT_CREDENTIALS_FILE};
pub use training::{
    calibration, cost_matrix, review_below, selection_rows, ENV_CALIBRATION,
    ENV_COST_FALSE_NEGATIVE, ENV_COST_FALSE_POSITIVE, ENV_MODEL_SELECTION_ROWS, ENV_REVIEW_BELOW,
};
pub use training_window::{training_window, ENV_TRAINING_WINDOW_MONTHS, ENV_TRAINING_WINDOW_ROWS};

/// Every variable this module reads, for documentation checks and `fraudctl` listings.
pub const VARIABLES: &[&str] = &[
    CREDENTIALS_FILE_VAR,
    "FRAUDRISK_DATABASE_URL",
    "FRAUDRISK_DB_SECRET_ID",
    "FRAUDRISK_DB_NAME",
    "FRAUDRISK_DB_HOST",
    "FRAUDRISK_DB_SSLMODE",
    "FRAUDRISK_DB_CA_FILE",
    "FRAUDRISK_DB_POOL_SIZE",
    "FRAUDRISK_DB_CONNECT_TIMEOUT_SECS",
    "FRAUDRISK_BUCKET",
    "FRAUDRISK_ARTIFACT_PREFIX",
    "FRAUDRISK_S3_FORCE_PATH_STYLE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "FRAUDRISK_MLFLOW_SECRET_ID",
    "FRAUDRISK_MLFLOW_TIMEOUT_SECS",
    "FRAUDRISK_MLFLOW_MAX_TRIES",
    "FRAUDRISK_COST_FALSE_NEGATIVE",
    "FRAUDRISK_COST_FALSE_POSITIVE",
    "FRAUDRISK_REVIEW_BELOW",
    "FRAUDRISK_CALIBRATION",
    "FRAUDRISK_MODEL_SELECTION_ROWS",
    "FRAUDRISK_PROMOTION_MARGIN_ROC_AUC",
    "FRAUDRISK_PROMOTION_MARGIN_EXPECTED_COST",
    "FRAUDRISK_PROMOTION_MARGIN_BRIER",
    "FRAUDRISK_REPLAY_MIN_OUTCOMES",
    "FRAUDRISK_REPLAY_MAX_ROWS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A configuration problem, naming the variable or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The credentials file could not be read or parsed.
    #[error("cannot read the credentials file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: dotenvy::Error,
    },
    /// A variable has a value that cannot be used.
    #[error("invalid {variable}: {message}")]
    Invalid {
        variable: &'static str,
        /// The value and the rule it broke (it may quote `source`).
        message: String,
        /// The parser's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl ConfigError {
    pub(crate) fn invalid(variable: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            variable,
            message: message.into(),
            source: None,
        }
    }
}

/// The whole configuration. `None` for a port means its local adapter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub database: Option<DatabaseConfig>,
    pub artifacts: Option<S3ArtifactsConfig>,
    pub mlflow: Option<MlflowConfig>,
    pub aws: AwsConfig,
}

impl Config {
    /// From the process environment and the credentials file.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_process()?)
    }

    /// From explicit settings.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Config {
            database: database::database_config(settings)?,
            artifacts: aws::artifacts_config(settings)?,
            mlflow: mlflow::mlflow_config(settings)?,
            aws: aws::aws_config(settings)?,
        })
    }

    /// Whether any port uses a production adapter.
    pub fn any_production(&self) -> bool {
        self.database.is_some() || self.artifacts.is_some() || self.mlflow.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_means_all_local() {
        let config = Config::from_settings(&Settings::default()).unwrap();
        assert!(!config.any_production());
    }

    #[test]
    fn each_port_is_chosen_independently() {
        let config =
            Config::from_settings(&Settings::from_pairs([("FRAUDRISK_BUCKET", "b")])).unwrap();
        assert!(config.database.is_none() && config.mlflow.is_none());
        assert_eq!(config.artifacts.unwrap().prefix, "");

        let config = Config::from_settings(&Settings::from_pairs([
            ("FRAUDRISK_DB_SECRET_ID", "fraudrisk/database"),
            ("MLFLOW_TRACKING_URI", "http://mlflow:5000/"),
        ]))
        .unwrap();
        assert_eq!(
            config.database.unwrap().source,
            DatabaseSource::Secret("fraudrisk/database".into())
        );
        let mlflow = config.mlflow.unwrap();
        assert_eq!(mlflow.tracking_uri, "http://mlflow:5000");
        assert_eq!(mlflow.credentials, MlflowCredentials::None);
        assert_eq!(mlflow.max_tries, 3);
    }

    #[test]
    fn explicit_values_win_over_secret_ids() {
        let config = Config::from_settings(&Settings::from_pairs([
            ("FRAUDRISK_DATABASE_URL", "postgres://u:pw@h/db"),
            ("FRAUDRISK_DB_SECRET_ID", "s"),
            ("MLFLOW_TRACKING_URI", "https://m"),
            ("MLFLOW_TRACKING_USERNAME", "u"),
            ("MLFLOW_TRACKING_PASSWORD", "p"),
            ("FRAUDRISK_MLFLOW_SECRET_ID", "m"),
        ]))
        .unwrap();
        assert!(matches!(
            config.database.unwrap().source,
            DatabaseSource::Url(_)
        ));
        assert!(matches!(
            config.mlflow.unwrap().credentials,
            MlflowCredentials::Basic { .. }
        ));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (key, value) in [
            ("FRAUDRISK_DB_SSLMODE", "sometimes"),
            ("FRAUDRISK_DB_POOL_SIZE", "0"),
            ("FRAUDRISK_MLFLOW_MAX_TRIES", "x"),
            ("FRAUDRISK_S3_FORCE_PATH_STYLE", "perhaps"),
        ] {
            let settings = Settings::from_pairs([
                ("FRAUDRISK_DATABASE_URL", "postgres://h/db"),
                ("MLFLOW_TRACKING_URI", "http://m"),
                (key, value),
            ]);
            let error = Config::from_settings(&settings).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
        let error = Config::from_settings(&Settings::from_pairs([(
            "MLFLOW_TRACKING_URI",
            "databricks",
        )]))
        .unwrap_err();
        assert!(error.to_string().contains("MLFLOW_TRACKING_URI"));
        let error =
            Config::from_settings(&Settings::from_pairs([("FRAUDRISK_BUCKET", "s3://b/p")]))
                .unwrap_err();
        assert!(error.to_string().contains("FRAUDRISK_BUCKET"));
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let config = Config::from_settings(&Settings::from_pairs([
            ("FRAUDRISK_DATABASE_URL", "postgres://u:hunter2@h/db"),
            ("MLFLOW_TRACKING_URI", "http://m"),
            ("MLFLOW_TRACKING_USERNAME", "u"),
            ("MLFLOW_TRACKING_PASSWORD", "hunter3"),
            ("AWS_SECRET_ACCESS_KEY", "hunter4"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert_eq!(
            redact_url("host=h password=x user=u"),
            "host=h password=<redacted> user=u"
        );
    }

    #[test]
    fn every_variable_is_documented_in_the_example_file() {
        let example = include_str!("../../../credentials.env.example");
        for variable in VARIABLES {
            assert!(
                example.contains(&format!("# {variable}=")),
                "{variable} is missing from credentials.env.example"
            );
        }
        // And the example parses as a dotenv file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.env");
        std::fs::write(&path, example).unwrap();
        assert!(
            settings::read_dotenv(&path).unwrap().is_empty(),
            "everything is commented out"
        );
    }
}
