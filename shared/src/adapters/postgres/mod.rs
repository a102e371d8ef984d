//! PostgreSQL store: the production adapter for records, users and the prediction log.
//!
//! - The same tables and semantics as the SQLite store (`UNIQUE (source, source_key)` with
//!   `ON CONFLICT DO NOTHING`), in PostgreSQL types, except that which version absorbed a row
//!   is kept in a narrow `absorptions` table (cheap to fill a million at once) rather than in
//!   a column of `records`; the feature columns come
//!   from [`FEATURES`](crate::schema::FEATURES). Migrations are embedded, versioned in
//!   `schema_migrations`, applied under a transaction-scoped advisory lock so concurrent cold
//!   starts do not race (`migrations`).
//! - Bulk loads stream rows with binary `COPY` into a temporary table, then insert them with
//!   `ON CONFLICT DO NOTHING`, all in one transaction (`records`).
//! - Connections come from a small pool that lives as long as the store (so a warm Lambda
//!   reuses them); a connection found broken is discarded, and a call that failed because its
//!   connection broke is retried once on a fresh one (every write here is one transaction,
//!   so a retry never half-applies) (`pool`).
//! - The training lock is `pg_try_advisory_lock` on a dedicated connection held until
//!   release: if the process dies, the server drops the connection and the lock with it
//!   (`lock`).
//! - TLS with rustls (ring), following libpq's `sslmode` (`tls`); connection settings from a
//!   URL or the RDS secret (`settings`); users and the prediction log (`users`,
//!   `predictions`).
//!
//! Every value reaches the server as a bind parameter; the only SQL built from strings are
//! the column lists derived from the compile-time schema.

mod jobs;
mod lock;
mod migrations;
mod monitor_window;
mod outcomes;
mod pool;
mod predictions;
mod records;
mod settings;
mod tls;
mod users;

use deadpool_postgres::Pool;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::ports::StoreError;

pub use outcomes::STATE_SQL as OUTCOME_STATE_SQL;
pub use pool::pg_message;
pub use settings::PostgresSettings;

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
        let tls = tls::connector(settings.sslmode, settings.ca_file.as_deref())?;
        let (config, connect_timeout) = pool::session_config(settings);
        let pool = pool::build(&config, &tls, settings.pool_size, connect_timeout)?;
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
}
