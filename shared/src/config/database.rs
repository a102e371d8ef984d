//! PostgreSQL settings: where the connection comes from (a URL or a secret), TLS, the pool.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Redacted, Settings};

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
    /// Host to connect to instead of the secret's, with the secret's credentials (an RDS
    /// Proxy endpoint: many Lambda containers share its connection pool).
    pub host_override: Option<String>,
    /// PEM file of extra trusted CAs (e.g. the RDS CA bundle) for verify-ca / verify-full.
    pub ca_file: Option<PathBuf>,
    /// Connections kept by one process (a Lambda container serves one request at a time).
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

pub(super) fn database_config(settings: &Settings) -> Result<Option<DatabaseConfig>, ConfigError> {
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
        host_override: settings
            .get("FRAUDRISK_DB_HOST")
            .filter(|h| !h.trim().is_empty()),
        ca_file: settings.get("FRAUDRISK_DB_CA_FILE").map(PathBuf::from),
        pool_size,
        connect_timeout: Duration::from_secs(connect_timeout.max(1)),
    }))
}
