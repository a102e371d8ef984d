//! Connection settings: a libpq-style URL or key=value string, or the RDS-shaped secret.

use crate::config::{redact_url, SslMode};
use crate::ports::StoreError;

use super::super::secrets::DatabaseSecret;

/// How to reach the database.
#[derive(Clone)]
pub struct PostgresSettings {
    /// Host, port, user, password, database, timeouts (its own `ssl_mode` is derived from
    /// `sslmode` below).
    pub config: tokio_postgres::Config,
    pub sslmode: SslMode,
    /// Extra trusted CA certificates (PEM), e.g. the RDS bundle, for verify-ca / verify-full.
    pub ca_file: Option<std::path::PathBuf>,
    pub pool_size: usize,
    /// Shown in messages (never with a password).
    pub description: String,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("target", &self.description)
            .field("sslmode", &self.sslmode)
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PostgresSettings {
    /// From a libpq-style URL (`postgres://user:pw@host:port/db?sslmode=require`) or
    /// key=value string. Unlike tokio-postgres alone, `sslmode=verify-ca|verify-full` and
    /// `sslrootcert=PATH` are understood.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let (rest, sslmode, rootcert) = split_tls_params(url);
        let config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| StoreError::from_source("parse database URL", e))?;
        let sslmode = match sslmode {
            Some(text) => SslMode::parse(&text).ok_or_else(|| {
                StoreError::backend("parse database URL", format!("unknown sslmode {text:?}"))
            })?,
            None => SslMode::Prefer,
        };
        Ok(PostgresSettings {
            description: redact_url(url),
            config,
            sslmode,
            ca_file: rootcert.map(Into::into),
            pool_size: 4,
        })
    }

    /// From the RDS-shaped secret; `default_dbname` when the secret names none.
    pub fn from_secret(secret: &DatabaseSecret, default_dbname: Option<&str>) -> Self {
        let mut config = tokio_postgres::Config::new();
        let dbname = secret
            .dbname
            .as_deref()
            .or(default_dbname)
            .unwrap_or("postgres");
        config
            .host(&secret.host)
            .port(secret.port)
            .user(&secret.username)
            .dbname(dbname);
        if !secret.password.expose().is_empty() {
            config.password(secret.password.expose());
        }
        let sslmode = secret
            .sslmode
            .as_deref()
            .and_then(SslMode::parse)
            .unwrap_or(SslMode::Prefer);
        PostgresSettings {
            description: format!(
                "postgres://{}@{}:{}/{}",
                secret.username, secret.host, secret.port, dbname
            ),
            config,
            sslmode,
            ca_file: None,
            pool_size: 4,
        }
    }

    /// The database name.
    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL or key=value string (tokio-postgres does
/// not know the verify modes nor `sslrootcert`).
fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let mut sslmode = None;
    let mut rootcert = None;
    if url.contains("://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), None, None);
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", value)) => sslmode = Some(percent_decode(value)),
                Some(("sslrootcert", value)) => rootcert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, sslmode, rootcert)
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            if let Some(value) = token.strip_prefix("sslmode=") {
                sslmode = Some(value.trim_matches('\'').to_string());
            } else if let Some(value) = token.strip_prefix("sslrootcert=") {
                rootcert = Some(value.trim_matches('\'').to_string());
            } else {
                kept.push(token);
            }
        }
        (kept.join(" "), sslmode, rootcert)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (rest, mode, root) = split_tls_params(
            "postgres://u:p@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Frds.pem",
        );
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/rds.pem"));
        let (rest, mode, root) = split_tls_params("host=h sslmode=require user=u");
        assert_eq!(rest, "host=h user=u");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root, None);
        let (rest, mode, _) = split_tls_params("postgres://h/db");
        assert_eq!((rest.as_str(), mode), ("postgres://h/db", None));
    }

    #[test]
    fn settings_from_url_and_secret() {
        let settings =
            PostgresSettings::from_url("postgres://u:secret@h:6543/db?sslmode=require").unwrap();
        assert_eq!(settings.sslmode, SslMode::Require);
        assert_eq!(settings.dbname(), Some("db"));
        assert!(!format!("{settings:?}").contains("secret"));
        assert!(PostgresSettings::from_url("postgres://h/db?sslmode=sometimes").is_err());

        let secret = DatabaseSecret {
            host: "rds".into(),
            port: 5432,
            dbname: None,
            username: "app".into(),
            password: crate::config::Redacted::new("pw"),
            sslmode: Some("verify-full".into()),
        };
        let settings = PostgresSettings::from_secret(&secret, Some("fraudrisk"));
        assert_eq!(settings.dbname(), Some("fraudrisk"));
        assert_eq!(settings.sslmode, SslMode::VerifyFull);
        assert_eq!(settings.description, "postgres://app@rds:5432/fraudrisk");
    }
}
