//! The connection pool: a few connections that live as long as the store (so a warm Lambda
//! reuses them), replaced when idle too long, and one retry on a fresh connection when a
//! call failed because its connection broke (every write is one transaction, so a retry
//! never half-applies).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::ports::{Reworded, StoreError};

use super::{tls, PostgresSettings, PostgresStore};

/// Pooled connections idle longer than this are replaced instead of reused: a warm Lambda
/// may have been frozen for minutes, and a connection a NAT or proxy dropped meanwhile would
/// only show it by hanging.
const MAX_IDLE: Duration = Duration::from_secs(60);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The session settings of every connection, and the connect timeout.
pub(super) fn session_config(settings: &PostgresSettings) -> (tokio_postgres::Config, Duration) {
    let mut config = settings.config.clone();
    config.ssl_mode(tls::session_ssl_mode(settings.sslmode));
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
    (config, connect_timeout)
}

/// The pool over `config`; no connection is opened yet.
pub(super) fn build(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    pool_size: usize,
    connect_timeout: Duration,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(connect_timeout))
        .wait_timeout(Some(Duration::from_secs(30)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| StoreError::from_source("create connection pool", e))
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

/// The store's error for a failed call, readable ([`pg_message`]) and keeping the driver's
/// error as its source.
pub(super) fn pg_error(operation: &'static str, error: tokio_postgres::Error) -> StoreError {
    let (message, source) = reworded(error);
    StoreError::backend_source(operation, message, source)
}

/// [`pg_message`] of the error, and the error beneath those words.
pub(super) fn reworded(error: tokio_postgres::Error) -> (String, Reworded) {
    let message = pg_message(&error);
    (message.clone(), Reworded::new(message, error))
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

impl PostgresStore {
    pub(super) async fn client(
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
            StoreError::backend_source(
                operation,
                format!("cannot connect to {}: {message}", self.description),
                Reworded::new(message, e),
            )
        })
    }

    /// Runs `work` on a pooled connection; if it fails because the connection broke, discards
    /// that connection and runs it once more on a fresh one.
    pub(super) async fn run<A, T, F>(
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
                Err(error) => return Err(pg_error(operation, error)),
            }
        }
    }
}
