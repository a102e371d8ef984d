//! PostgreSQL store: the production adapter for records, users and the prediction log.
//!
//! - The same tables and semantics as the SQLite store (`UNIQUE (source, source_key)` with
//!   `ON CONFLICT DO NOTHING`, `absorbed_by`), in PostgreSQL types; the feature columns come
//!   from [`FEATURES`]. Migrations are embedded, versioned in `schema_migrations`, applied
//!   under a transaction-scoped advisory lock so concurrent cold starts do not race.
//! - Bulk loads stream rows with binary `COPY` into a temporary table, then insert them with
//!   `ON CONFLICT DO NOTHING`, all in one transaction.
//! - Connections come from a small pool that lives as long as the store (so a warm Lambda
//!   reuses them); a connection found broken is discarded, and a call that failed because its
//!   connection broke is retried once on a fresh one (every write here is one transaction,
//!   so a retry never half-applies).
//! - The training lock is `pg_try_advisory_lock` on a dedicated connection held until
//!   release: if the process dies, the server drops the connection and the lock with it.
//! - TLS with rustls (ring), following libpq's `sslmode`.
//!
//! Every value reaches the server as a bind parameter; the only SQL built from strings are
//! the column lists derived from the compile-time schema.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{redact_url, SslMode};
use crate::dataset::{row_hash, SourceRow};
use crate::ports::{
    LoadSummary, LockOwner, PredictionLog, PredictionLogEntry, PredictionStats, RecordCounts,
    RecordRole, RecordStore, StoreError, StoredRecord, TrainingLock, UserStore, UserSummary,
};
use crate::schema::{Applicant, LabeledRecord, FEATURES, FEATURE_COUNT};

use super::secrets::DatabaseSecret;

/// Advisory lock key serialising migrations ("fraudrisk" + 1).
const MIGRATION_LOCK_KEY: i64 = 0x6672_6175_6472_6b01;
/// Advisory lock key of the training lock ("fraudrisk" + 2). Advisory locks are per database.
const TRAINING_LOCK_KEY: i64 = 0x6672_6175_6472_6b02;

/// Pooled connections idle longer than this are replaced instead of reused: a warm Lambda
/// may have been frozen for minutes, and a connection a NAT or proxy dropped meanwhile would
/// only show it by hanging.
const MAX_IDLE: Duration = Duration::from_secs(60);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
            .map_err(|e| StoreError::backend("parse database URL", e))?;
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

/// The rustls connector for an sslmode.
fn tls_connector(
    sslmode: SslMode,
    ca_file: Option<&Path>,
) -> Result<MakeRustlsConnect, StoreError> {
    let fail = |e: &dyn std::fmt::Display| StoreError::backend("configure TLS", e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(&e))?;
    let config = match sslmode {
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(path) = ca_file {
                use rustls::pki_types::pem::PemObject;
                let certificates: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| fail(&format!("{}: {e}", path.display())))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| fail(&format!("{}: {e}", path.display())))?;
                if certificates.is_empty() {
                    return Err(fail(&format!(
                        "{}: no PEM certificates found",
                        path.display()
                    )));
                }
                for certificate in certificates {
                    roots
                        .add(certificate)
                        .map_err(|e| fail(&format!("{}: {e}", path.display())))?;
                }
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| fail(&e))?;
            let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
                if sslmode == SslMode::VerifyCa {
                    Arc::new(ChainOnlyVerifier(verifier))
                } else {
                    verifier
                };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
        // libpq's prefer/require encrypt without verifying the certificate.
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's require: encryption without authentication of the server.
#[derive(Debug)]
struct UnverifiedCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for UnverifiedCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's verify-ca: the chain must lead to a trusted CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnlyVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A PostgreSQL error as a readable line: SQLSTATE, message and detail for server errors,
/// the cause chain otherwise (tokio-postgres' own Display is often just "db error").
pub fn pg_message(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether the error means the connection is gone (so a retry on a new one may succeed).
fn is_connection_error(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        return *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || code.code().starts_with("08");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The migrations, in order. Same names and tables as the SQLite store, except the lock: an
/// advisory lock replaces SQLite's `training_lock` table, and `training_lock_owner` only
/// says who holds it (a row counts while its session holds the advisory lock).
fn migrations() -> Vec<(&'static str, String)> {
    let feature_columns: String = FEATURES
        .iter()
        .map(|f| format!("    {} INTEGER NOT NULL,\n", f.name))
        .collect();
    vec![
        (
            "0001_records",
            format!(
                "CREATE TABLE records (\n\
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
                 source TEXT NOT NULL,\n\
                 source_key TEXT NOT NULL,\n\
                 role TEXT NOT NULL CHECK (role IN ('reference', 'new')),\n\
                 creditability SMALLINT NOT NULL CHECK (creditability IN (0, 1)),\n\
                 {feature_columns}\
                 loaded_at TIMESTAMPTZ NOT NULL,\n\
                 absorbed_by BIGINT,\n\
                 UNIQUE (source, source_key));\n\
                 CREATE INDEX records_absorbed_by ON records (absorbed_by);\n\
                 CREATE INDEX records_role ON records (role);"
            ),
        ),
        (
            "0002_users",
            "CREATE TABLE users (\n\
             username TEXT PRIMARY KEY,\n\
             password_hash TEXT NOT NULL,\n\
             created_at TIMESTAMPTZ NOT NULL);"
                .to_string(),
        ),
        (
            "0003_predictions",
            "CREATE TABLE predictions (\n\
             id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
             created_at TIMESTAMPTZ NOT NULL,\n\
             model_version BIGINT NOT NULL,\n\
             probability_of_fraud DOUBLE PRECISION NOT NULL,\n\
             fraud BOOLEAN NOT NULL,\n\
             features JSONB NOT NULL,\n\
             username TEXT);\n\
             CREATE INDEX predictions_created_at ON predictions (created_at);"
                .to_string(),
        ),
        (
            "0004_training_lock_owner",
            "CREATE TABLE training_lock_owner (\n\
             id SMALLINT PRIMARY KEY CHECK (id = 1),\n\
             holder TEXT NOT NULL,\n\
             pid BIGINT NOT NULL,\n\
             host TEXT NOT NULL,\n\
             acquired_at TIMESTAMPTZ NOT NULL,\n\
             backend_pid INTEGER NOT NULL);"
                .to_string(),
        ),
        (
            // Rows keyed by content; `migrate` then fills the hash of the rows stored before.
            "0005_records_content_hash",
            "ALTER TABLE records ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';\n\
             ALTER TABLE records DROP CONSTRAINT records_source_source_key_key;\n\
             ALTER TABLE records ADD CONSTRAINT records_source_key_hash \
             UNIQUE (source, source_key, content_hash);"
                .to_string(),
        ),
    ]
}

/// Fills `content_hash` of rows stored before loads were keyed by content.
async fn backfill_content_hashes(
    transaction: &tokio_postgres::Transaction<'_>,
) -> Result<(), tokio_postgres::Error> {
    let rows = transaction
        .query(select_sql("content_hash = ''").as_str(), &[])
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored = read_stored(row)?;
        ids.push(stored.id);
        hashes.push(row_hash(&stored.record));
    }
    if !ids.is_empty() {
        transaction
            .execute(
                "UPDATE records SET content_hash = h.hash \
                 FROM unnest($1::bigint[], $2::text[]) AS h(id, hash) WHERE records.id = h.id",
                &[&ids, &hashes],
            )
            .await?;
    }
    Ok(())
}

/// The session holding the training lock and its recorded owner: the advisory lock is the
/// truth, the owner row is only believed while its session holds the lock.
const LOCK_OWNER_SQL: &str = "SELECT l.pid, COALESCE(o.holder, a.application_name, 'unknown'), \
     o.pid, o.host, COALESCE(o.acquired_at, a.backend_start, now()) \
     FROM pg_locks l \
     LEFT JOIN training_lock_owner o ON o.backend_pid = l.pid \
     LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND ((l.classid::text::bigint << 32) | l.objid::text::bigint) = $1";

fn read_lock_owner(row: &tokio_postgres::Row) -> Result<(i32, LockOwner), tokio_postgres::Error> {
    let pid: Option<i64> = row.try_get(2)?;
    Ok((
        row.try_get(0)?,
        LockOwner {
            holder: row.try_get(1)?,
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            host: row.try_get(3)?,
            acquired_at: row.try_get(4)?,
        },
    ))
}

fn feature_list() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn select_sql(condition: &str) -> String {
    format!(
        "SELECT id, creditability, absorbed_by, {} FROM records WHERE {condition} ORDER BY id",
        feature_list()
    )
}

fn read_stored(row: &tokio_postgres::Row) -> Result<StoredRecord, tokio_postgres::Error> {
    let id: i64 = row.try_get(0)?;
    let creditability: i16 = row.try_get(1)?;
    let absorbed_by: Option<i64> = row.try_get(2)?;
    let mut values = [0.0; FEATURE_COUNT];
    for (index, value) in values.iter_mut().enumerate() {
        *value = f64::from(row.try_get::<_, i32>(3 + index)?);
    }
    Ok(StoredRecord {
        id,
        record: LabeledRecord {
            applicant: Applicant(values),
            // The CHECK constraint keeps it 0 or 1.
            creditability: u8::from(creditability == 1),
        },
        // Versions are written from u32 values, so they fit.
        absorbed_by: absorbed_by.and_then(|v| u32::try_from(v).ok()),
    })
}

/// Records, users and predictions in PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    description: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.description)
            .finish()
    }
}

impl PostgresStore {
    /// Builds the pool and opens one connection to fail early on a bad address, password or
    /// TLS setting. Call `migrate` before use.
    pub async fn connect(settings: &PostgresSettings) -> Result<Self, StoreError> {
        let tls = tls_connector(settings.sslmode, settings.ca_file.as_deref())?;
        let mut config = settings.config.clone();
        config.ssl_mode(match settings.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(10));
        config.connect_timeout(connect_timeout);
        // Dead peers (a failed-over RDS instance) are noticed instead of hanging forever.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(60));
        // Unacknowledged writes to a vanished server fail after this instead of ~15 minutes.
        config.tcp_user_timeout(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("fraudrisk");
        }
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(connect_timeout))
            .wait_timeout(Some(Duration::from_secs(30)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::backend("create connection pool", e))?;
        let store = PostgresStore {
            pool,
            config,
            tls,
            description: settings.description.clone(),
        };
        drop(store.client("connect").await?);
        Ok(store)
    }

    /// Where the store points (no password).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the pooled connections are encrypted (asks the server).
    pub async fn connection_uses_tls(&self) -> Result<bool, StoreError> {
        self.run("connection_uses_tls", &(), |client, _| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                        &[],
                    )
                    .await?;
                row.try_get::<_, bool>(0)
            })
        })
        .await
    }

    async fn client(
        &self,
        operation: &'static str,
    ) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .retain(|_, metrics| metrics.last_used() < MAX_IDLE);
        self.pool.get().await.map_err(|e| {
            let message = match &e {
                deadpool_postgres::PoolError::Backend(pg) => pg_message(pg),
                other => other.to_string(),
            };
            StoreError::backend(
                operation,
                format!("cannot connect to {}: {message}", self.description),
            )
        })
    }

    /// Runs `work` on a pooled connection; if it fails because the connection broke, discards
    /// that connection and runs it once more on a fresh one.
    async fn run<A, T, F>(
        &self,
        operation: &'static str,
        arguments: &A,
        work: F,
    ) -> Result<T, StoreError>
    where
        A: ?Sized + Sync,
        T: Send,
        F: for<'c> Fn(
                &'c mut deadpool_postgres::Object,
                &'c A,
            ) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>
            + Send
            + Sync,
    {
        let mut attempt = 1;
        loop {
            let mut client = self.client(operation).await?;
            match work(&mut client, arguments).await {
                Ok(value) => return Ok(value),
                Err(error) if attempt == 1 && is_connection_error(&error) => {
                    tracing::warn!(
                        operation,
                        error = %pg_message(&error),
                        "database connection lost; retrying on a new connection"
                    );
                    // Never hand this connection out again.
                    drop(deadpool_postgres::Object::take(client));
                    attempt += 1;
                }
                Err(error) => return Err(StoreError::backend(operation, pg_message(&error))),
            }
        }
    }

    async fn select_records(
        &self,
        operation: &'static str,
        condition: &'static str,
        role: Option<&'static str>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let sql = select_sql(condition);
        self.run(operation, &(sql, role), |client, (sql, role)| {
            Box::pin(async move {
                let rows = match role {
                    Some(role) => client.query(sql.as_str(), &[role]).await?,
                    None => client.query(sql.as_str(), &[]).await?,
                };
                rows.iter().map(read_stored).collect()
            })
        })
        .await
    }
}

/// Converts the loaded rows' features to the INTEGER columns, refusing what is not an integer.
fn integer_features(row: &SourceRow) -> Result<[i32; FEATURE_COUNT], StoreError> {
    let mut out = [0i32; FEATURE_COUNT];
    for ((slot, value), feature) in out
        .iter_mut()
        .zip(row.record.applicant.0.iter())
        .zip(FEATURES.iter())
    {
        if value.fract() != 0.0 || *value < f64::from(i32::MIN) || *value > f64::from(i32::MAX) {
            return Err(StoreError::backend(
                "load_records",
                format!(
                    "row {}: {} = {value} is not an integer code",
                    row.key, feature.name
                ),
            ));
        }
        *slot = *value as i32;
    }
    Ok(out)
}

struct LoadArguments<'a> {
    source: &'a str,
    role: &'static str,
    keys: Vec<&'a str>,
    labels: Vec<i16>,
    features: Vec<[i32; FEATURE_COUNT]>,
    hashes: Vec<String>,
    insert_sql: String,
    replace_sql: String,
    create_sql: String,
    copy_sql: String,
}

/// Counts the loaded rows by kind before anything is written: unchanged (same source, key
/// and hash stored), changed (the key stored with other values only), new.
const LOAD_COUNTS_SQL: &str = "SELECT \
     COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM records r WHERE r.source = $1 \
       AND r.source_key = l.source_key AND r.content_hash = l.content_hash)), \
     COUNT(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.source = $1 \
       AND r.source_key = l.source_key AND r.content_hash = l.content_hash) \
       AND EXISTS (SELECT 1 FROM records r WHERE r.source = $1 AND r.source_key = l.source_key)) \
     FROM records_load l";

async fn load_in_transaction(
    client: &mut deadpool_postgres::Object,
    args: &LoadArguments<'_>,
) -> Result<LoadSummary, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.batch_execute(&args.create_sql).await?;
    let sink = transaction.copy_in(args.copy_sql.as_str()).await?;
    let mut types = vec![Type::INT8, Type::TEXT, Type::TEXT, Type::INT2];
    types.extend(std::iter::repeat_n(Type::INT4, FEATURE_COUNT));
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for (index, (((key, hash), label), features)) in args
        .keys
        .iter()
        .zip(args.hashes.iter())
        .zip(args.labels.iter())
        .zip(args.features.iter())
        .enumerate()
    {
        let ordinal = index as i64;
        let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(4 + FEATURE_COUNT);
        values.push(&ordinal);
        values.push(key);
        values.push(hash);
        values.push(label);
        values.extend(features.iter().map(|v| v as &(dyn ToSql + Sync)));
        writer.as_mut().write(&values).await?;
    }
    writer.as_mut().finish().await?;
    let counts = transaction
        .query_one(LOAD_COUNTS_SQL, &[&args.source])
        .await?;
    let count = |i: usize| counts.try_get::<_, i64>(i).map(|n| n.max(0) as usize);
    let (unchanged, changed) = (count(0)?, count(1)?);
    // Replacing first: a replaced row then carries the new hash and is not inserted again.
    let replaced = transaction
        .execute(args.replace_sql.as_str(), &[&args.source, &args.role])
        .await? as usize;
    let inserted = transaction
        .execute(args.insert_sql.as_str(), &[&args.source, &args.role])
        .await? as usize;
    transaction.commit().await?;
    let offered = args.keys.len();
    Ok(LoadSummary {
        offered,
        inserted,
        already_present: unchanged,
        new: offered.saturating_sub(unchanged + changed),
        changed,
        replaced,
    })
}

#[async_trait]
impl RecordStore for PostgresStore {
    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let all: Vec<(&'static str, String)> = migrations();
        self.run("migrate", &all, |client, all| {
            Box::pin(async move {
                // Fast path without DDL or locks: everything applied already (the usual
                // case on a cold start, and fine for a role without CREATE rights).
                let exists: bool = client
                    .query_one(
                        "SELECT to_regclass('schema_migrations') IS NOT NULL",
                        &[],
                    )
                    .await?
                    .try_get(0)?;
                if exists {
                    let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
                    let done: i64 = client
                        .query_one(
                            "SELECT COUNT(*) FROM schema_migrations WHERE name = ANY($1)",
                            &[&names],
                        )
                        .await?
                        .try_get(0)?;
                    if done == names.len() as i64 {
                        return Ok(Vec::new());
                    }
                }
                let transaction = client.transaction().await?;
                transaction
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
                    .await?;
                transaction
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (\
                         name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)",
                    )
                    .await?;
                let mut applied = Vec::new();
                for (name, sql) in all {
                    let done = transaction
                        .query_opt("SELECT 1 FROM schema_migrations WHERE name = $1", &[name])
                        .await?
                        .is_some();
                    if !done {
                        transaction.batch_execute(sql).await?;
                        transaction
                            .execute(
                                "INSERT INTO schema_migrations (name, applied_at) VALUES ($1, now())",
                                &[name],
                            )
                            .await?;
                        applied.push(name.to_string());
                    }
                }
                backfill_content_hashes(&transaction).await?;
                transaction.commit().await?;
                Ok(applied)
            })
        })
        .await
    }

    async fn load_records(
        &self,
        source: &str,
        role: RecordRole,
        rows: &[SourceRow],
    ) -> Result<LoadSummary, StoreError> {
        if rows.is_empty() {
            return Ok(LoadSummary::default());
        }
        let features = rows
            .iter()
            .map(integer_features)
            .collect::<Result<Vec<_>, _>>()?;
        let feature_columns = feature_list();
        let feature_types: String = FEATURES
            .iter()
            .map(|f| format!(", {} INTEGER NOT NULL", f.name))
            .collect();
        let assignments: String = FEATURES
            .iter()
            .map(|f| format!(", {0} = l.{0}", f.name))
            .collect();
        let arguments = LoadArguments {
            source,
            role: role.as_str(),
            keys: rows.iter().map(|r| r.key.as_str()).collect(),
            hashes: rows.iter().map(|r| row_hash(&r.record)).collect(),
            labels: rows
                .iter()
                .map(|r| i16::from(r.record.creditability))
                .collect(),
            features,
            create_sql: format!(
                "CREATE TEMPORARY TABLE records_load (ord BIGINT NOT NULL, source_key TEXT NOT NULL, \
                 content_hash TEXT NOT NULL, creditability SMALLINT NOT NULL{feature_types}) \
                 ON COMMIT DROP"
            ),
            copy_sql: format!(
                "COPY records_load (ord, source_key, content_hash, creditability, {feature_columns}) \
                 FROM STDIN (FORMAT binary)"
            ),
            // A changed row whose old version no model absorbed yet replaces it in place.
            replace_sql: format!(
                "UPDATE records r SET content_hash = l.content_hash, role = $2, \
                 creditability = l.creditability, loaded_at = now(){assignments} \
                 FROM records_load l \
                 WHERE r.source = $1 AND r.source_key = l.source_key \
                 AND r.absorbed_by IS NULL AND r.content_hash <> l.content_hash \
                 AND NOT EXISTS (SELECT 1 FROM records s WHERE s.source = $1 \
                   AND s.source_key = l.source_key AND s.content_hash = l.content_hash)"
            ),
            // ORDER BY keeps ids in file order, as the SQLite store assigns them.
            insert_sql: format!(
                "INSERT INTO records (source, source_key, content_hash, role, creditability, \
                 loaded_at, {feature_columns}) \
                 SELECT $1, source_key, content_hash, $2, creditability, now(), {feature_columns} \
                 FROM records_load ORDER BY ord \
                 ON CONFLICT (source, source_key, content_hash) DO NOTHING"
            ),
        };
        self.run("load_records", &arguments, |client, args| {
            Box::pin(load_in_transaction(client, args))
        })
        .await
    }

    async fn records_by_role(&self, role: RecordRole) -> Result<Vec<StoredRecord>, StoreError> {
        self.select_records("records_by_role", "role = $1", Some(role.as_str()))
            .await
    }

    async fn absorbed_records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.select_records("absorbed_records", "absorbed_by IS NOT NULL", None)
            .await
    }

    async fn pending_records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.select_records("pending_records", "absorbed_by IS NULL", None)
            .await
    }

    async fn mark_absorbed(&self, ids: &[i64], version: u32) -> Result<(), StoreError> {
        let version = i64::from(version);
        self.run(
            "mark_absorbed",
            &(ids, version),
            |client, (ids, version)| {
                Box::pin(async move {
                    client
                        .execute(
                            "UPDATE records SET absorbed_by = $1 \
                         WHERE id = ANY($2) AND absorbed_by IS NULL",
                            &[version, ids],
                        )
                        .await
                        .map(|_| ())
                })
            },
        )
        .await
    }

    async fn record_counts(&self) -> Result<RecordCounts, StoreError> {
        self.run("record_counts", &(), |client, _| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT \
                           COUNT(*) FILTER (WHERE role = 'reference'), \
                           COUNT(*) FILTER (WHERE role = 'new'), \
                           COUNT(*) FILTER (WHERE absorbed_by IS NOT NULL), \
                           COUNT(*) FILTER (WHERE absorbed_by IS NULL) \
                         FROM records",
                        &[],
                    )
                    .await?;
                let count = |i: usize| row.try_get::<_, i64>(i).map(|n| n.max(0) as usize);
                Ok(RecordCounts {
                    reference: count(0)?,
                    new: count(1)?,
                    absorbed: count(2)?,
                    pending: count(3)?,
                })
            })
        })
        .await
    }

    async fn try_lock_training(
        &self,
        holder: &str,
    ) -> Result<Option<Box<dyn TrainingLock>>, StoreError> {
        let operation = "try_lock_training";
        // A dedicated connection: the lock lives exactly as long as this session.
        let (client, connection) = self.config.connect(self.tls.clone()).await.map_err(|e| {
            StoreError::backend(
                operation,
                format!("cannot connect to {}: {}", self.description, pg_message(&e)),
            )
        })?;
        let task = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(error = %pg_message(&error), "the training lock's connection ended");
            }
        });
        let label = format!("fraudrisk training lock: {holder}");
        let owner = LockOwner::this_process(holder);
        let taken = async {
            // Shows who holds the lock in pg_stat_activity.
            client
                .execute(
                    "SELECT set_config('application_name', $1, false)",
                    &[&label],
                )
                .await?;
            let taken = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&TRAINING_LOCK_KEY])
                .await?
                .try_get::<_, bool>(0)?;
            if taken {
                // Who holds it, for `fraudctl status`; a row left by a dead session is
                // ignored (see LOCK_OWNER_SQL) and overwritten here.
                client
                    .execute(
                        "INSERT INTO training_lock_owner \
                         (id, holder, pid, host, acquired_at, backend_pid) \
                         VALUES (1, $1, $2, $3, $4, pg_backend_pid()) \
                         ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, \
                         pid = EXCLUDED.pid, host = EXCLUDED.host, \
                         acquired_at = EXCLUDED.acquired_at, backend_pid = EXCLUDED.backend_pid",
                        &[
                            &owner.holder,
                            &owner.pid.map(i64::from),
                            &owner.host,
                            &owner.acquired_at,
                        ],
                    )
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(taken)
        }
        .await
        .map_err(|e| StoreError::backend(operation, pg_message(&e)))?;
        if !taken {
            drop(client);
            task.abort();
            return Ok(None);
        }
        tracing::info!(holder, "took the training lock");
        Ok(Some(Box::new(PostgresTrainingLock { client, task })))
    }

    async fn training_lock_owner(&self) -> Result<Option<LockOwner>, StoreError> {
        self.run("training_lock_owner", &(), |client, _| {
            Box::pin(async move {
                match client
                    .query_opt(LOCK_OWNER_SQL, &[&TRAINING_LOCK_KEY])
                    .await?
                {
                    Some(row) => Ok(Some(read_lock_owner(&row)?.1)),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    async fn force_unlock_training(&self) -> Result<Option<LockOwner>, StoreError> {
        // An advisory lock belongs to its session: ending that session is the only way to
        // take it away (needs pg_signal_backend or the same role).
        self.run("force_unlock_training", &(), |client, _| {
            Box::pin(async move {
                let Some(row) = client
                    .query_opt(LOCK_OWNER_SQL, &[&TRAINING_LOCK_KEY])
                    .await?
                else {
                    return Ok(None);
                };
                let (backend_pid, owner) = read_lock_owner(&row)?;
                client
                    .execute("SELECT pg_terminate_backend($1)", &[&backend_pid])
                    .await?;
                client
                    .execute(
                        "DELETE FROM training_lock_owner WHERE backend_pid = $1",
                        &[&backend_pid],
                    )
                    .await?;
                Ok(Some(owner))
            })
        })
        .await
    }
}

/// The training lock: an advisory lock held by a session of its own.
struct PostgresTrainingLock {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

#[async_trait]
impl TrainingLock for PostgresTrainingLock {
    async fn confirm_held(&self) -> Result<(), StoreError> {
        // A session-level advisory lock lasts as long as its session: a live session holds it.
        self.client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::backend(
                    "confirm_training_lock",
                    format!(
                        "the training lock's session was lost ({}); not promoting",
                        pg_message(&e)
                    ),
                )
            })
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        let operation = "release_training_lock";
        // The owner row goes first, while the lock still keeps others from writing theirs.
        if let Err(error) = self
            .client
            .execute(
                "DELETE FROM training_lock_owner WHERE backend_pid = pg_backend_pid()",
                &[],
            )
            .await
        {
            tracing::warn!(error = %pg_message(&error), "could not clear the lock's owner row");
        }
        let result = self
            .client
            .query_one("SELECT pg_advisory_unlock($1)", &[&TRAINING_LOCK_KEY])
            .await;
        // Closing the session releases the lock in any case.
        drop(self.client);
        let _ = self.task.await;
        match result {
            Ok(row) => match row.try_get::<_, bool>(0) {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::backend(
                    operation,
                    "the lock was no longer held (its session was reset during training)",
                )),
                Err(e) => Err(StoreError::backend(operation, pg_message(&e))),
            },
            Err(error) => Err(StoreError::backend(
                operation,
                format!(
                    "the lock's connection was lost during training, so the lock lapsed early \
                     and another training may have overlapped: {}",
                    pg_message(&error)
                ),
            )),
        }
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn add_user(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        let inserted = self
            .run(
                "add_user",
                &(username, password_hash),
                |client, (username, hash)| {
                    Box::pin(async move {
                        client
                            .execute(
                                "INSERT INTO users (username, password_hash, created_at) \
                                 VALUES ($1, $2, now()) ON CONFLICT (username) DO NOTHING",
                                &[username, hash],
                            )
                            .await
                    })
                },
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("the user exists already".to_string()));
        }
        Ok(())
    }

    async fn password_hash(&self, username: &str) -> Result<Option<String>, StoreError> {
        self.run("password_hash", username, |client, username| {
            Box::pin(async move {
                client
                    .query_opt(
                        "SELECT password_hash FROM users WHERE username = $1",
                        &[&username],
                    )
                    .await?
                    .map(|row| row.try_get::<_, String>(0))
                    .transpose()
            })
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        self.run("list_users", &(), |client, _| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT username, created_at FROM users ORDER BY username",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(UserSummary {
                            username: row.try_get(0)?,
                            created_at: row.try_get(1)?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        self.run("remove_user", username, |client, username| {
            Box::pin(async move {
                client
                    .execute("DELETE FROM users WHERE username = $1", &[&username])
                    .await
                    .map(|n| n > 0)
            })
        })
        .await
    }
}

struct PredictionColumns {
    created_at: Vec<DateTime<Utc>>,
    model_version: Vec<i64>,
    probability: Vec<f64>,
    fraud: Vec<bool>,
    features: Vec<serde_json::Value>,
    username: Vec<Option<String>>,
}

#[async_trait]
impl PredictionLog for PostgresStore {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: arrays unnested server-side.
        let columns = PredictionColumns {
            created_at: entries.iter().map(|e| e.created_at).collect(),
            model_version: entries.iter().map(|e| i64::from(e.model_version)).collect(),
            probability: entries.iter().map(|e| e.probability_of_fraud).collect(),
            fraud: entries.iter().map(|e| e.fraud).collect(),
            features: entries.iter().map(|e| e.features.clone()).collect(),
            username: entries.iter().map(|e| e.username.clone()).collect(),
        };
        self.run("log_predictions", &columns, |client, c| {
            Box::pin(async move {
                client
                    .execute(
                        "INSERT INTO predictions \
                         (created_at, model_version, probability_of_fraud, fraud, features, username) \
                         SELECT * FROM UNNEST($1::TIMESTAMPTZ[], $2::BIGINT[], \
                           $3::DOUBLE PRECISION[], $4::BOOLEAN[], $5::JSONB[], $6::TEXT[])",
                        &[
                            &c.created_at,
                            &c.model_version,
                            &c.probability,
                            &c.fraud,
                            &c.features,
                            &c.username,
                        ],
                    )
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    async fn prediction_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError> {
        self.run("prediction_stats", &since, |client, since| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT COUNT(*), COUNT(*) FILTER (WHERE fraud), \
                           COALESCE(AVG(probability_of_fraud), 0)::DOUBLE PRECISION \
                         FROM predictions \
                         WHERE $1::TIMESTAMPTZ IS NULL OR created_at >= $1::TIMESTAMPTZ",
                        &[since],
                    )
                    .await?;
                Ok(PredictionStats {
                    count: row.try_get::<_, i64>(0)?.max(0) as u64,
                    fraud_count: row.try_get::<_, i64>(1)?.max(0) as u64,
                    mean_probability_of_fraud: row.try_get(2)?,
                })
            })
        })
        .await
    }
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

    #[test]
    fn migrations_have_every_feature_column() {
        let all = migrations();
        for feature in FEATURES.iter() {
            assert!(all[0]
                .1
                .contains(&format!("{} INTEGER NOT NULL", feature.name)));
        }
        let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "0001_records",
                "0002_users",
                "0003_predictions",
                "0004_training_lock_owner",
                "0005_records_content_hash"
            ]
        );
    }

    #[test]
    fn non_integer_features_are_refused() {
        let mut row = SourceRow {
            key: "k".into(),
            record: LabeledRecord {
                applicant: Applicant([1.0; FEATURE_COUNT]),
                creditability: 1,
            },
        };
        assert!(integer_features(&row).is_ok());
        row.record.applicant.0[3] = 1.5;
        let error = integer_features(&row).unwrap_err().to_string();
        assert!(error.contains(FEATURES[3].name), "{error}");
    }
}
