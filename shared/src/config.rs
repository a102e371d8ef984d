//! Typed configuration, layered: the process environment first, then an optional
//! `credentials.env` file (dotenv syntax), then built-in defaults.
//!
//! Every setting is documented in `credentials.env.example` at the workspace root. Each port
//! is configured independently: a database setting selects PostgreSQL, a bucket selects S3,
//! a tracking URI selects MLflow; whatever is not configured stays local (SQLite, folders).
//!
//! The file is read into a map, never into the process environment: nothing here mutates
//! global state, so tests can build a [`Config`] from plain pairs.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Names the credentials file explicitly (then it must exist).
pub const CREDENTIALS_FILE_VAR: &str = "FRAUDRISK_CREDENTIALS_FILE";
/// Read from the working directory when present and [`CREDENTIALS_FILE_VAR`] is unset.
pub const DEFAULT_CREDENTIALS_FILE: &str = "credentials.env";

/// Every variable this module reads, for documentation checks and `fraudctl` listings.
pub const VARIABLES: &[&str] = &[
    CREDENTIALS_FILE_VAR,
    "FRAUDRISK_DATABASE_URL",
    "FRAUDRISK_DB_SECRET_ID",
    "FRAUDRISK_DB_NAME",
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
    #[error("cannot read the credentials file {path}: {message}")]
    File { path: PathBuf, message: String },
    /// A variable has a value that cannot be used.
    #[error("invalid {variable}: {message}")]
    Invalid {
        variable: &'static str,
        message: String,
    },
}

impl ConfigError {
    fn invalid(variable: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            variable,
            message: message.into(),
        }
    }
}

/// A secret value that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Redacted(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The raw settings: environment values win over the file's.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    env: HashMap<String, String>,
    file: HashMap<String, String>,
    file_path: Option<PathBuf>,
}

impl Settings {
    /// The process environment plus the credentials file: the one named by
    /// `FRAUDRISK_CREDENTIALS_FILE` (which must exist), else `./credentials.env` if present.
    pub fn from_process() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let named = env
            .get(CREDENTIALS_FILE_VAR)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        let file_path = match named {
            Some(path) => Some(path),
            None => {
                let default = PathBuf::from(DEFAULT_CREDENTIALS_FILE);
                default.is_file().then_some(default)
            }
        };
        let file = match &file_path {
            Some(path) => read_dotenv(path)?,
            None => HashMap::new(),
        };
        Ok(Settings {
            env,
            file,
            file_path,
        })
    }

    /// Settings from one dotenv file alone, without the process environment (`export`
    /// prefixes are accepted, so the env file of `scripts/services.sh` reads too).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Ok(Settings {
            env: HashMap::new(),
            file: read_dotenv(path)?,
            file_path: Some(path.to_path_buf()),
        })
    }

    /// Settings from explicit pairs only (no environment, no file): for tests and tools.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Settings {
            env: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            file: HashMap::new(),
            file_path: None,
        }
    }

    /// A non-empty value, environment first, then the file.
    pub fn get(&self, key: &str) -> Option<String> {
        [&self.env, &self.file]
            .into_iter()
            .filter_map(|map| map.get(key))
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Sets or replaces a value (as if it came from the environment).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.env.insert(key.into(), value.into());
    }

    /// Removes a value from both layers.
    pub fn unset(&mut self, key: &str) {
        self.env.remove(key);
        self.file.remove(key);
    }

    /// The credentials file that was read, if any.
    pub fn file_path(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }

    fn parse<T: std::str::FromStr>(&self, key: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ConfigError::invalid(key, format!("{v:?}: {e}")))
            })
            .transpose()
    }

    fn flag(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("{v:?} is not true or false"),
                )),
            })
            .transpose()
    }
}

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let error = |e: dotenvy::Error| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut map = HashMap::new();
    for item in dotenvy::from_path_iter(path).map_err(error)? {
        let (key, value) = item.map_err(error)?;
        map.insert(key, value);
    }
    Ok(map)
}

/// How the database connection uses TLS (libpq's `sslmode` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS always, the certificate unverified (libpq's meaning; what RDS needs at minimum).
    Require,
    /// TLS always, the certificate chain verified, the host name not.
    VerifyCa,
    /// TLS always, chain and host name verified.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "disable" => Some(SslMode::Disable),
            // libpq's `allow` tries plain first; TLS-first is the safer reading.
            "allow" | "prefer" => Some(SslMode::Prefer),
            "require" => Some(SslMode::Require),
            "verify-ca" => Some(SslMode::VerifyCa),
            "verify-full" => Some(SslMode::VerifyFull),
            _ => None,
        }
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the database connection settings come from.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// A libpq-style URL or key=value string (may carry a password).
    Url(Redacted),
    /// A Secrets Manager secret id in the RDS JSON shape.
    Secret(String),
}

impl fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseSource::Url(url) => write!(f, "Url({})", redact_url(url.expose())),
            DatabaseSource::Secret(id) => write!(f, "Secret({id:?})"),
        }
    }
}

/// A connection URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:<redacted>@{host}");
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|token| {
            if token.starts_with("password=") {
                "password=<redacted>"
            } else {
                token
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// PostgreSQL settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub source: DatabaseSource,
    /// Overrides the URL's or secret's `sslmode`.
    pub sslmode: Option<SslMode>,
    /// Database name when the secret has no `dbname` (RDS-managed secrets often don't).
    pub default_dbname: Option<String>,
    /// PEM file of extra trusted CAs (e.g. the RDS CA bundle) for verify-ca / verify-full.
    pub ca_file: Option<PathBuf>,
    /// Connections kept by one process (a Lambda container serves one request at a time).
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

/// The S3 artifact store's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3ArtifactsConfig {
    pub bucket: String,
    /// Key prefix below which the store writes (`models/...`, `champion.json`); may be empty.
    pub prefix: String,
}

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
            database: database_config(settings)?,
            artifacts: artifacts_config(settings)?,
            mlflow: mlflow_config(settings)?,
            aws: aws_config(settings)?,
        })
    }

    /// Whether any port uses a production adapter.
    pub fn any_production(&self) -> bool {
        self.database.is_some() || self.artifacts.is_some() || self.mlflow.is_some()
    }
}

fn database_config(settings: &Settings) -> Result<Option<DatabaseConfig>, ConfigError> {
    // An explicit URL wins over a secret id: it is the more specific, local setting.
    let source = match (
        settings.get("FRAUDRISK_DATABASE_URL"),
        settings.get("FRAUDRISK_DB_SECRET_ID"),
    ) {
        (Some(url), _) => DatabaseSource::Url(Redacted::new(url)),
        (None, Some(id)) => DatabaseSource::Secret(id),
        (None, None) => return Ok(None),
    };
    let sslmode = settings
        .get("FRAUDRISK_DB_SSLMODE")
        .map(|v| {
            SslMode::parse(&v).ok_or_else(|| {
                ConfigError::invalid(
                    "FRAUDRISK_DB_SSLMODE",
                    format!("{v:?}: use disable, prefer, require, verify-ca or verify-full"),
                )
            })
        })
        .transpose()?;
    let pool_size = settings
        .parse::<usize>("FRAUDRISK_DB_POOL_SIZE")?
        .unwrap_or(4);
    if pool_size == 0 {
        return Err(ConfigError::invalid(
            "FRAUDRISK_DB_POOL_SIZE",
            "must be at least 1",
        ));
    }
    let connect_timeout = settings
        .parse::<u64>("FRAUDRISK_DB_CONNECT_TIMEOUT_SECS")?
        .unwrap_or(10);
    Ok(Some(DatabaseConfig {
        source,
        sslmode,
        default_dbname: settings.get("FRAUDRISK_DB_NAME"),
        ca_file: settings.get("FRAUDRISK_DB_CA_FILE").map(PathBuf::from),
        pool_size,
        connect_timeout: Duration::from_secs(connect_timeout.max(1)),
    }))
}

fn artifacts_config(settings: &Settings) -> Result<Option<S3ArtifactsConfig>, ConfigError> {
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

fn mlflow_config(settings: &Settings) -> Result<Option<MlflowConfig>, ConfigError> {
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

fn aws_config(settings: &Settings) -> Result<AwsConfig, ConfigError> {
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
    fn the_file_is_read_but_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.env");
        std::fs::write(
            &path,
            "# comment\nFRAUDRISK_BUCKET=from-file\nFRAUDRISK_ARTIFACT_PREFIX=\"p/q\"\n",
        )
        .unwrap();
        let mut settings = Settings {
            file: read_dotenv(&path).unwrap(),
            file_path: Some(path),
            ..Settings::default()
        };
        assert_eq!(
            settings.get("FRAUDRISK_BUCKET").as_deref(),
            Some("from-file")
        );
        settings.set("FRAUDRISK_BUCKET", "from-env");
        let artifacts = Config::from_settings(&settings).unwrap().artifacts.unwrap();
        assert_eq!(artifacts.bucket, "from-env");
        assert_eq!(artifacts.prefix, "p/q");
        assert!(read_dotenv(&dir.path().join("missing.env")).is_err());
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
        let example = include_str!("../../credentials.env.example");
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
            read_dotenv(&path).unwrap().is_empty(),
            "everything is commented out"
        );
    }

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
